"""`training.init_from`: start a run from the weights of one checkpoint or of several (e.g. shipped single-task
models into one multi-task model).

- A weight is copied where the model has the same name and shape. Two sources holding the same weight with
  different values is an error naming both: which one should win is not ours to guess.
- LoRA matrices are stacked, not overwritten. Each source's rank-r update B·A is placed in its own slice of the
  model's ranks (A's rows, B's columns), B rescaled from the source's alpha/r to the model's, so the model starts
  from the sum of the sources' updates: with one source exactly that source's model, with several what task
  arithmetic calls adding task vectors. Slices no source fills keep their fresh init (B = 0: no update yet, and
  free capacity for the fine-tune). The model's rank must cover the sum of the sources' ranks on every module.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import yaml

from multimodal.checkpoint import CheckpointError, _read_tensors, _stored_shapes
from multimodal.model import MultimodalModel

ADAPTER = "default"  # peft's adapter name in our models


def _lora_layers(model: MultimodalModel) -> dict[str, tuple[int, float]]:
    """Module name -> (rank, scaling) of every LoRA-wrapped layer (peft's LoraLayer) in `model`."""
    return {name: (module.r[ADAPTER], module.scaling[ADAPTER]) for name, module in model.named_modules()
            if hasattr(module, "lora_A") and ADAPTER in getattr(module, "r", {})}


@functools.lru_cache(maxsize=16)
def _training_settings(directory: Path) -> dict:
    return (yaml.safe_load((directory / "config.yaml").read_text()) or {}).get("training") or {}


def _lora_scaling(directory: Path, key: str) -> float:
    """alpha / r of the LoRA that `directory`'s config gave the component holding weight `key`."""
    component = {"backbone": "backbone", "adapters": "adapters", "heads": "heads"}.get(key.split(".")[0])
    if key.startswith("encoders."):
        component = f"{key.split('.')[1]}_encoder"
    setting = _training_settings(directory).get(component) or {}
    if "lora_r" not in setting or "lora_alpha" not in setting:
        raise CheckpointError(f"'{directory}': config.yaml gives no training.{component}.lora_r / lora_alpha "
                              f"for its LoRA weight {key}")
    return float(setting["lora_alpha"]) / float(setting["lora_r"])


def _split_lora_key(key: str) -> tuple[str, str] | None:
    """'x.q_proj.lora_A.default.weight' -> ('x.q_proj', 'A'); None for a weight that is not a LoRA matrix."""
    for part in ("A", "B"):
        marker = f".lora_{part}.{ADAPTER}.weight"
        if key.endswith(marker):
            return key[: -len(marker)], part
    return None


def init_from(model: MultimodalModel, directories: str | Path | list[str | Path]) -> list[str]:
    """Copy the weights of the checkpoint(s) in `directories` into `model` (module docstring); returns the names
    of the model's weights that received some. A source that fits nothing is an error."""
    sources = [Path(d) for d in ([directories] if isinstance(directories, (str, Path)) else directories)]
    if not sources:
        raise ValueError("init_from needs at least one checkpoint")
    repeated = sorted({str(d) for d in sources if sources.count(d) > 1})
    if repeated:  # its LoRA update would be stacked twice, i.e. doubled
        raise ValueError(f"init_from names {', '.join(repeated)} more than once")
    own = model.state_dict()
    layers = _lora_layers(model)
    taken: dict[str, Path] = {}  # plain weight -> the source it came from
    filled: dict[str, int] = {}  # LoRA layer -> ranks filled so far
    updates: dict[str, torch.Tensor] = {}
    for source in sources:
        shapes = _stored_shapes(source)
        stored = _read_tensors(source)
        fits = 0
        lora = sorted({split[0] for k in shapes if (split := _split_lora_key(k)) and split[0] in layers})
        for layer in lora:
            fits += _stack(layer, source, stored, own, layers[layer], filled, updates)
        for key, shape in sorted(shapes.items()):
            if _split_lora_key(key) or key not in own or tuple(own[key].shape) != shape:
                continue
            if key in taken:
                if torch.equal(updates[key], stored[key]):  # e.g. the same random backbone in both: no choice to make
                    continue
                raise CheckpointError(f"both '{taken[key]}' and '{source}' hold the weight {key}, differently: "
                                      "init_from cannot choose between them")
            taken[key], updates[key], fits = source, stored[key], fits + 1
        if not fits:
            raise CheckpointError(f"'{source}': none of its {len(shapes)} weights fits this model")
    model.load_state_dict(updates, strict=False)
    return sorted(updates)


def _stack(layer: str, source: Path, stored: dict[str, torch.Tensor], own: dict[str, torch.Tensor],
           rank_scaling: tuple[int, float], filled: dict[str, int], updates: dict[str, torch.Tensor]) -> int:
    """Place `source`'s LoRA pair of `layer` in the next free ranks of the model's; returns 1 (it fitted)."""
    key_a, key_b = f"{layer}.lora_A.{ADAPTER}.weight", f"{layer}.lora_B.{ADAPTER}.weight"
    if key_a not in stored or key_b not in stored:
        raise CheckpointError(f"'{source}': {layer} has only half of its LoRA pair (lora_A and lora_B)")
    a, b = stored[key_a], stored[key_b]  # (r, in), (out, r)
    rank, scaling = rank_scaling
    start, r = filled.get(layer, 0), a.shape[0]
    if start + r > rank:
        raise CheckpointError(f"'{source}': its LoRA on {layer} needs ranks {start}..{start + r - 1}, the model has "
                              f"{rank}: raise the component's lora_r to the sum of the sources' ranks")
    if a.shape[1] != own[key_a].shape[1] or b.shape[0] != own[key_b].shape[0]:
        raise CheckpointError(f"'{source}': its LoRA on {layer} is for a layer of another size")
    new_a = updates.get(key_a, own[key_a]).clone()
    new_b = updates.get(key_b, own[key_b]).clone()
    new_a[start: start + r] = a.to(new_a.dtype)
    new_b[:, start: start + r] = b.to(new_b.dtype) * (_lora_scaling(source, key_a) / scaling)
    updates[key_a], updates[key_b], filled[layer] = new_a, new_b, start + r
    return 1
