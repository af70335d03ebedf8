"""Typed, nested configuration: dataclass defaults <- YAML file <- `a.b=value` overrides.

Every component has one dataclass. `load_config` reads a YAML file from `configs/`, applies command-line
style overrides, and checks every key and type against the dataclasses: an unknown key or a wrong type is
a `ConfigError` that names the key and lists what is valid.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from encoders import AudioEncoderConfig, VisionEncoderConfig
from encoders.augment import AudioAugmentConfig
from tasks.head_config import ClassifyHeadConfig, TagHeadConfig

TrainMode = Literal["frozen", "lora", "full"]


class ConfigError(ValueError):
    """A configuration key, value or file that does not fit the dataclasses."""


MAX_CONFIG_BYTES = 1 << 20  # a config is a few kB: a larger file is something else (e.g. a data file)
MAX_DEPTH = 32  # nesting levels (ours have 6); deeper YAML is refused before Python's recursion limit is met
MAX_VALUES = 100_000  # values once YAML aliases are expanded: "billion laughs" are refused, never copied out


@dataclass
class AdapterConfig:
    """Token reduction then projection from an encoder's width to the LM's width."""

    reduction: Literal["none", "pixel_shuffle", "stack"] = "none"
    factor: int = 1  # pixel shuffle: r (r*r tokens merge); stack: k consecutive frames merge
    projector: Literal["linear", "mlp", "swiglu"] = "mlp"
    hidden_dim: int = 0  # MLP width; 0 = the LM's width
    norm: Literal["none", "layernorm", "rmsnorm"] = "layernorm"  # applied to the reduced features
    # After the projector (as in Ultravox): RMSNorm whose gain starts at the RMS of the LM's token embeddings, so
    # the tokens stay at the scale of the text around them. In our stage-2 speech run it held the scale but the
    # tokens still collapsed to one direction (README), so it is off by default.
    out_norm: Literal["none", "rmsnorm"] = "none"


@dataclass
class EncodersConfig:
    image: Optional[VisionEncoderConfig] = None  # null = no image input
    audio: Optional[AudioEncoderConfig] = None  # null = no audio input


@dataclass
class AdaptersConfig:
    image: AdapterConfig = field(default_factory=lambda: AdapterConfig(reduction="pixel_shuffle", factor=2))
    audio: AdapterConfig = field(default_factory=lambda: AdapterConfig(reduction="stack", factor=5))


@dataclass
class HeadsConfig:
    ctc: bool = False  # a CTC head on the audio encoder: stage-1 speech training and a fast decoder
    # What the CTC head predicts: characters (tasks/ctc.py), or espeak-ng phones (tasks/phonemes.py), which
    # need a lexicon to become words (the search gives each word its pronunciations).
    ctc_units: Literal["chars", "phonemes"] = "chars"
    ctc_layers: int = 0  # transformer layers in the CTC head before its classifier (tasks/ctc_head.py); 0: linear
    ctc_shared: bool = False  # the audio adapter reads the CTC head's layers' output (needs ctc_layers >= 1)
    # Phone targets in one espeak-ng accent for every clip ("en-us"), or "" for each row's own (its `voice`).
    ctc_phone_accent: str = ""
    classify: Optional[ClassifyHeadConfig] = None  # a classifier on pooled backbone states (task classify_head)
    tag: Optional[TagHeadConfig] = None  # a BIO token tagger for named entities (task ner)


@dataclass
class BackboneConfig:
    """A Hugging Face language model, by hub name, local dir, or a preset of `multimodal.backbone`."""

    name: str = "smollm2-135m-instruct"
    kind: Literal["causal", "encoder"] = "causal"  # decoder LM (generation) or encoder LM (BERT family)
    pretrained: bool = True  # False = random init from the named model's config (+ overrides)
    overrides: dict[str, Any] = field(default_factory=dict)  # HF config fields, e.g. {num_hidden_layers: 2}


@dataclass
class ComponentTraining:
    """How one component trains: frozen, LoRA (through peft) or fully, at its own learning rate."""

    mode: TrainMode = "full"
    lr: float = 1e-4
    lora_r: int = 8
    lora_alpha: int = 16
    # 0 by default: dropout on LoRA's inputs draws a Bernoulli mask per adapted layer, ~8 % of a LoRA training
    # step on CPU (profiled; BENCHMARKS.md). Set it when the data is small enough to need the regularisation.
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    # Parameters whose names contain one of these stay frozen whatever the mode (e.g. [embeddings] keeps a fully
    # fine-tuned encoder's word table as pretrained: an adapter-only checkpoint then stores half of MiniLM).
    freeze: list[str] = field(default_factory=list)


@dataclass
class TrainingConfig:
    image_encoder: ComponentTraining = field(default_factory=lambda: ComponentTraining(mode="frozen"))
    audio_encoder: ComponentTraining = field(default_factory=lambda: ComponentTraining(mode="full", lr=1e-3))
    adapters: ComponentTraining = field(default_factory=lambda: ComponentTraining(mode="full", lr=3e-3))
    backbone: ComponentTraining = field(default_factory=lambda: ComponentTraining(mode="lora", lr=2e-4))
    heads: ComponentTraining = field(default_factory=lambda: ComponentTraining(mode="full", lr=1e-3))
    lm_loss_weight: float = 1.0  # 0 skips the LM entirely (e.g. CTC-only encoder training)
    ctc_loss_weight: float = 0.0  # needs heads.ctc
    eval_decoder: Literal["lm", "ctc"] = "lm"  # how evaluation transcribes audio
    # A checkpoint dir, run dir or shipped model whose weights (matching names and shapes) start this run, or a list
    # of them: their LoRA updates are stacked in the model's ranks (multimodal/warm_start.py)
    init_from: str | list[str] = ""
    batch_size: int = 16
    grad_accum_steps: int = 1
    max_steps: int = 1000
    # > 0: train this many passes over the training rows instead of max_steps (the step count then follows the
    # data: rows, batch size, accumulation and processes), with warmup at most a tenth of the steps. Single-task,
    # non-streamed data only: a mixture or a stream has no epoch length to count from.
    epochs: float = 0.0
    # > 0: stop once this many evaluations in a row found no better best/ (a plateau); needs eval data
    early_stop_patience: int = 0
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    seed: int = 0
    log_every: int = 10  # steps between metric lines in metrics.jsonl
    eval_every: int = 200  # steps between evaluations (and `best/` checkpoints); 0 = only at the end
    save_every: int = 200  # steps between `last/` checkpoints (resume points); 0 = only at the end
    save_adapter_only: bool = True  # checkpoints store what trained and name the pretrained parts
    gradient_checkpointing: bool = False  # recompute backbone activations in backward: less memory, more time
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"  # auto = bf16 autocast on GPU, fp32 on CPU (train.py)


@dataclass
class TaskData:
    """One task of a multi-task mixture (`data.mixture`): its data and its share of the micro-batches."""

    task: str = ""  # a name in tasks.registry.TASKS
    train: str | list[str] = ""  # same forms as data.train
    eval: str | list[str] = ""  # same forms as data.eval; "" = this task is not evaluated
    weight: float = 1.0  # a micro-batch holds this task with probability weight / (sum of the weights)
    name: str = ""  # metric prefix (`eval_<name>_<metric>`); "" = the task's name. Unique in the mixture
    eval_max_examples: int = -1  # -1 = data.eval_max_examples


@dataclass
class DataConfig:
    task: str = "caption"  # a name in tasks.registry.TASKS: caption, transcribe, classify
    train: str | list[str] = ""  # folder with metadata.jsonl/csv, a JSONL/CSV file, a saved datasets dir, or a list
    eval: str | list[str] = ""  # of them (a mixture: rows of every source, concatenated)
    max_text_tokens: int = 128  # longer targets are cut
    on_bad_rows: Literal["error", "skip"] = "error"  # skip = warn and leave bad rows out
    # A file_name that is a symlink to a file outside its folder is a bad row, unless this is true (a subset of a
    # bigger corpus made of links); a link that stays inside the folder is always fine.
    follow_symlinks: bool = False
    num_workers: int = 2  # DataLoader worker processes that decode and tokenize (streaming: at most 1)
    streaming: bool = False  # read training rows as they are consumed (sets larger than memory or disk)
    augment: AudioAugmentConfig = field(default_factory=AudioAugmentConfig)  # training audio only
    eval_max_examples: int = 200  # evaluation uses at most this many examples (0 = all)
    # Multi-task training (multimodal/mixture.py): when set, task/train/eval above are unused and each
    # micro-batch holds one of these tasks, drawn by weight.
    mixture: list[TaskData] = field(default_factory=list)


@dataclass
class Config:
    encoders: EncodersConfig = field(default_factory=EncodersConfig)
    adapters: AdaptersConfig = field(default_factory=AdaptersConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)


# ---------------------------------------------------------------------------------------------------------
# Loading, overriding and checking


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults <- the YAML file at `path` (if any) <- overrides like `backbone.name=gpt2`."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file '{path}' holds {path.stat().st_size:,} bytes; a config is a few kB "
                              f"(at most {MAX_CONFIG_BYTES:,})")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file '{path}' is not UTF-8 text ({e})") from None
        data = parse_yaml(text, f"config file '{path}'") or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file '{path}' must hold a mapping at the top, got {type(data).__name__}")
    for item in overrides:
        apply_override(data, item, Config)
        check_size(data, f"override '{item}'")  # `a.b.c...` keys nest too
    return from_dict(Config, data)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stopping at MAX_DEPTH levels as it composes them (it recurses once a level)."""

    depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise ConfigError(f"nests deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def parse_yaml(text: str, what: str) -> Any:
    """YAML text -> plain data, within MAX_DEPTH levels and MAX_VALUES values; a ConfigError naming `what` (the
    file or the override) otherwise, or when it is not YAML."""
    try:
        data = yaml.load(text, Loader=_BoundedLoader)
    except ConfigError as e:
        raise ConfigError(f"{what} {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} is not valid YAML: {e}") from None
    check_size(data, what)
    return data


def check_size(data: Any, what: str) -> None:
    """Walk `data` as its readers will, aliases expanded: a ConfigError naming `what` past MAX_DEPTH levels or
    MAX_VALUES values (a YAML alias can repeat a list a billion times, or hold itself)."""
    stack, n_values = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        n_values += 1
        if depth > MAX_DEPTH:
            raise ConfigError(f"{what} nests deeper than {MAX_DEPTH} levels")
        if n_values > MAX_VALUES:
            raise ConfigError(f"{what} holds more than {MAX_VALUES:,} values once its YAML aliases are expanded")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)


def apply_override(data: dict[str, Any], item: str, schema: type | None = None) -> None:
    """Set `a.b.c=value` in a nested dict; the value is parsed as YAML (`3`, `1e-3`, `[a, b]`, `null`).
    With `schema` (a config dataclass), a key it lacks is an error that names the whole key."""
    key, sep, raw = item.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{item}' must look like section.key=value")
    if schema is not None:
        _check_key(schema, key.split("."), item)
    value = parse_yaml(raw, f"override '{item}'") if raw.strip() else ""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _check_key(schema: type, parts: list[str], item: str) -> None:
    """Walk `parts` down the dataclass fields; keys under a mapping or untyped field are free."""
    tp: Any = schema
    for i, part in enumerate(parts):
        if typing.get_origin(tp) in (typing.Union, types.UnionType):  # Optional[SomeConfig]
            inner = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
            tp = inner[0] if len(inner) == 1 else tp
        if not dataclasses.is_dataclass(tp):
            return
        if part not in {f.name for f in dataclasses.fields(tp)}:
            where = ".".join(parts[:i])
            raise ConfigError(f"unknown config key '{'.'.join(parts)}' in override '{item}': '{'.'.join(parts[: i + 1])}' "
                              f"is not a key; valid keys {'of ' + repr(where) if where else 'at the top'}: {_field_names(tp)}")
        tp = typing.get_type_hints(tp)[part]


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass `cls` from plain data, checking every key and value against the field types."""
    if not isinstance(data, dict):
        raise ConfigError(f"'{where or 'config'}' must be a mapping of {_field_names(cls)}, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown config key '{name}'; valid keys here: {_field_names(cls)}")
    hints = typing.get_type_hints(cls)
    values = {k: _convert(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    try:
        return cls(**values)
    except ValueError as e:  # the dataclass's own check of its values (__post_init__)
        raise ConfigError(f"'{where or 'config'}': {e}") from None


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _field_names(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


_YAML_BOOL_WORDS = {False: ("no", "off", "false"), True: ("yes", "on", "true")}


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"'{where}' may not be null")
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]) and isinstance(value, dict):
            return from_dict(inner[0], value, where)
        errors = []
        for option in inner:  # `str | list[str]`: the first type the value fits
            try:
                return _convert(option, value, where)
            except ConfigError as e:
                errors.append(e)
        inside = [e for e in errors if not str(e).startswith(f"'{where}' ")]  # e.g. a bad list item
        if len(errors) == 1 or inside:
            raise (inside or errors)[0]
        kinds = " or ".join(str(t) if typing.get_args(t) else t.__name__ for t in inner)  # "str or list[str]"
        raise ConfigError(f"'{where}' must be {kinds}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is Literal:
        if isinstance(value, bool):  # YAML 1.1 reads a bare no/off as false, yes/on as true
            value = next((w for w in _YAML_BOOL_WORDS[value] if w in args), value)
        if value not in args:
            read = " (YAML reads a bare yes/no/on/off as a boolean)" if isinstance(value, bool) else ""
            raise ConfigError(f"'{where}' is {value!r}{read}; valid values: {', '.join(map(str, args))}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{where}' must be a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{where}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{where}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{where}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{where}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{where}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"'{where}': unsupported field type {tp!r}")  # a bug in a dataclass, not in the YAML
