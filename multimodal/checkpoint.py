"""Checkpoints: safetensors weights + the YAML config + the backbone's HF config and tokenizer.

Layout of a checkpoint dir:
    config.yaml          the full `Config` the model was built from
    checkpoint.json      format ("full" | "adapter"), the pretrained parts it attaches to, stored keys
    backbone/            the backbone's HF config.json and tokenizer files (placeholders included)
    model.safetensors    full: every weight      | adapter: only what `trainable.stored_keys` names
A full checkpoint rebuilds without any pretrained download; an adapter checkpoint loads the pretrained
parts named in checkpoint.json first. Nothing is unpickled and no remote code runs. A save writes a
temporary sibling dir and renames it into place, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, load_model, save_file, save_model

from multimodal.config import Config, from_dict, to_dict
from multimodal.model import MultimodalModel
from multimodal.trainable import stored_keys

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint dir that is missing, incomplete or does not match its config."""


def save(model: MultimodalModel, directory: str | Path, adapter_only: bool = False, extra: dict | None = None,
         dtype: torch.dtype | None = None) -> Path:
    """Write a checkpoint dir atomically; `extra` maps file names to writers `fn(path)` (e.g. trainer state).

    `dtype` (adapter-only): store floating-point weights in this type (shipped models: bf16); loading casts
    them back to the model's own type."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        keys = stored_keys(model) if adapter_only else None
        (tmp / "config.yaml").write_text(yaml.safe_dump(to_dict(model.config), sort_keys=False))
        meta = {
            "format_version": FORMAT_VERSION,
            "format": "adapter" if adapter_only else "full",
            "attaches_to": model.pretrained_parts if adapter_only else {},
            "stored_keys": keys,
        }
        (tmp / "checkpoint.json").write_text(json.dumps(meta, indent=2))
        model.backbone.config.save_pretrained(tmp / "backbone")
        model.tokenizer.save_pretrained(tmp / "backbone")
        if dtype is not None and not adapter_only:
            raise ValueError("dtype applies to adapter-only checkpoints")
        if adapter_only:
            state = model.state_dict()
            cast = lambda t: t.to(dtype) if dtype is not None and t.is_floating_point() else t  # noqa: E731
            save_file({k: cast(state[k].detach()).contiguous().clone() for k in keys}, tmp / WEIGHTS)
        else:
            save_model(model, str(tmp / WEIGHTS))  # handles tied weights (LM head = embeddings)
        for name, write in (extra or {}).items():
            write(tmp / name)
        replace_dir(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`; an existing target is moved aside first and removed only afterwards."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover(directory: str | Path) -> Path:
    """`directory`, or, if a crash struck between the two renames of a save, the previous checkpoint that
    was moved aside (`.NAME.old-*`, always complete). Temporary dirs may be partial and are never used."""
    directory = Path(directory)
    if directory.exists():
        return directory
    aside = sorted(directory.parent.glob(f".{directory.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if aside and (aside[-1] / "checkpoint.json").is_file():
        log.warning("'%s' is missing; using the previous checkpoint '%s' (a save was interrupted)", directory, aside[-1])
        return aside[-1]
    return directory


def load(directory: str | Path) -> MultimodalModel:
    """The model saved in `directory` (by `model.save` or the training loop), in eval mode. A training run's
    dir (`runs/demo`) stands for its `best/` checkpoint, or `last/` when it has no best."""
    from multimodal.build import build

    directory = recover(directory)
    if not (directory / "checkpoint.json").is_file():
        directory = next((recover(directory / sub) for sub in ("best", "last")
                          if (recover(directory / sub) / "checkpoint.json").is_file()), directory)
    meta = _read_meta(directory)
    config: Config = from_dict(Config, yaml.safe_load((directory / "config.yaml").read_text()))
    if meta["format"] == "full":  # every weight is in the file: skip the pretrained downloads
        model = build(config, pretrained=False, backbone_dir=directory / "backbone")
    else:
        model = build(config, pretrained=True)
    load_weights(model, directory)
    return model.eval()


def load_weights(model: MultimodalModel, directory: str | Path) -> None:
    """Put a checkpoint's weights into an already built model of the same config (used by --resume)."""
    directory = Path(directory)
    meta = _read_meta(directory)
    if meta["format"] == "full":
        missing, unexpected = load_model(model, str(directory / WEIGHTS), strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"'{directory}': weights do not match the config: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        return
    state = load_file(directory / WEIGHTS)
    expected = set(stored_keys(model))
    if set(state) != expected:
        raise CheckpointError(
            f"'{directory}': stored weights do not match the config: "
            f"missing {sorted(expected - set(state))[:5]}, unexpected {sorted(set(state) - expected)[:5]}"
        )
    model.load_state_dict(state, strict=False)


def _read_meta(directory: Path) -> dict:
    for name in ("config.yaml", "checkpoint.json", WEIGHTS, "backbone/config.json"):
        if not (directory / name).is_file():
            raise CheckpointError(f"'{directory}' is not a multimodal checkpoint: {name} is missing")
    meta = json.loads((directory / "checkpoint.json").read_text())
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"'{directory}' was written by a newer version (format {meta['format_version']})")
    return meta


def init_from(model: MultimodalModel, directory: str | Path) -> list[str]:
    """Copy a checkpoint's weights into `model` wherever name and shape match (e.g. a stage-1 encoder into a
    stage-2 model); returns the names copied. A checkpoint that matches nothing is an error."""
    directory = Path(directory)
    _read_meta(directory)
    stored = load_file(directory / WEIGHTS)
    own = model.state_dict()
    matched = {k: v for k, v in stored.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise CheckpointError(f"'{directory}': none of its {len(stored)} weights fits this model")
    model.load_state_dict(matched, strict=False)
    return sorted(matched)
