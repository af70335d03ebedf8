"""One resolver for every `--model` and `mm.load`: a shipped name, a run dir, a checkpoint dir or a backbone.

In order:
1. a path to a checkpoint dir, or to a training run dir (which stands for its `best/`, else `last/`);
2. the name of a shipped model (`multimodal models` lists them), checked against its recorded hashes;
   `training.init_from` takes the same three (`checkpoint_dir`);
3. with `backbone_ok` (zero-shot label scoring), any backbone name: a preset, a hub name or an HF dir;
4. nothing given: the task's default shipped model (`shipped.DEFAULT_MODELS`).
Anything else is an error that names the input and lists the shipped models.

A model loaded by name carries its manifest's decoding settings in `model.decoding`; `decoding_settings`
fills the settings a caller left as None from them, so the default call gives the card's figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multimodal import shipped
from multimodal.checkpoint import CheckpointError, recover

CHECKPOINT_FILE = "checkpoint.json"


def is_checkpoint_path(path: str | Path) -> bool:
    """A checkpoint dir, or a run dir holding best/ or last/."""
    path = Path(path)
    return any((recover(d) / CHECKPOINT_FILE).is_file() for d in (path, path / "best", path / "last"))


def checkpoint_dir(name_or_dir: str | Path) -> Path:
    """The checkpoint dir that a checkpoint dir, a run dir (its best/, else last/) or a shipped name stands for
    (`training.init_from` takes all three); anything else comes back as it is, for the loader to reject."""
    path = Path(name_or_dir)
    if is_checkpoint_path(path):
        return next(recover(d) for d in (path, path / "best", path / "last") if (recover(d) / CHECKPOINT_FILE).is_file())
    if str(name_or_dir) in shipped.names():
        return shipped.verified_dir(str(name_or_dir))
    return path


def load(name_or_dir: str | Path | None = None, task: str | None = None, backbone_ok: bool = False):
    """The model that `name_or_dir` names (module docstring), in eval mode."""
    from multimodal import checkpoint

    if name_or_dir is None or str(name_or_dir) == "":
        if task not in shipped.DEFAULT_MODELS:
            raise ValueError(f"no model given, and task {task!r} has no default shipped model: pass --model")
        name_or_dir = default_model(task)
    text = str(name_or_dir)
    if is_checkpoint_path(text) or text in shipped.names():
        model = checkpoint.load(checkpoint_dir(text))
        if not is_checkpoint_path(text):  # a shipped model: decode as its card says
            model.decoding = shipped.decoding_of(text)
    elif backbone_ok:
        from multimodal.classify import frozen_backbone_model

        model = frozen_backbone_model(text)
    elif Path(text).exists():
        model = checkpoint.load(text)  # not a checkpoint: the error names the file it lacks
    else:
        known = ", ".join(shipped.names()) or "none yet"
        raise CheckpointError(f"model '{text}' is neither a checkpoint dir, a run dir nor a shipped model "
                              f"(shipped: {known})")
    return model


def default_model(task: str) -> str:
    name = shipped.DEFAULT_MODELS[task]
    if name not in shipped.names():
        raise ValueError(f"`{task}` without --model uses the shipped model '{name}', which is not shipped yet "
                         f"(shipped: {', '.join(shipped.names()) or 'none'}); pass --model DIR (a trained checkpoint)")
    return name


def decoding_settings(model, task: str, **given: Any) -> dict[str, Any]:
    """The settings to decode with: each one `given`, else the model's stored one for `task`; a setting that is
    neither is left out, so the decoding function's own default applies."""
    stored = {k: v for k, v in (getattr(model, "decoding", {}) or {}).items() if k in shipped.DECODING_KEYS.get(task, ())}
    return {k: v if v is not None else stored[k] for k, v in given.items() if v is not None or k in stored}
