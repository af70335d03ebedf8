"""Checkpoints: safetensors weights + the YAML config + the backbone's HF config and tokenizer.

Layout of a checkpoint dir:
    config.yaml          the full `Config` the model was built from
    checkpoint.json      format ("full" | "adapter"), the pretrained parts it attaches to, stored keys, and the
                         sha256 of model.safetensors and of any extra file (trainer_state.pt), checked on reading
    backbone/            the backbone's HF config.json and tokenizer files (placeholders included)
    model.safetensors    full: every weight      | adapter: only what `trainable.stored_keys` names
A full checkpoint rebuilds without any pretrained download; an adapter checkpoint loads the pretrained
parts named in checkpoint.json first. Nothing is unpickled and no remote code runs.

A save writes a temporary sibling dir, flushes it to the disk and renames it into place, so a crash, a kill -9
or a full disk never leaves half a checkpoint: the one before stays whole and loads (`recover`). A damaged
checkpoint is a `CheckpointError` naming the folder or the file, never a library's traceback.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from multimodal.config import Config, from_dict, parse_yaml, to_dict
from multimodal.model import MultimodalModel, PretrainedPartsError
from multimodal.trainable import stored_keys

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
HASHES = "sha256"  # checkpoint.json: file name -> the sha256 it had when saved
FULL_BELOW_BYTES = 1 << 20  # a save that fails with less free space than this ran out of it
RUN_LOCK = ".lock"  # in a training run's output folder: who is writing it
META_TYPES = {"format_version": int, "attaches_to": dict, "stored_keys": (list, type(None)), HASHES: dict}


class CheckpointError(ValueError):
    """A checkpoint dir that is missing, incomplete, corrupt or does not match its config; or a save that failed."""


class AttachesToError(CheckpointError, PretrainedPartsError):
    """An adapter-only checkpoint loaded onto other pretrained parts than those it was trained on."""


def save(model: MultimodalModel, directory: str | Path, adapter_only: bool = False, extra: dict | None = None,
         dtype: torch.dtype | None = None) -> Path:
    """Write a checkpoint dir atomically; `extra` maps file names to writers `fn(path)` (e.g. trainer state).

    `dtype` (adapter-only): store floating-point weights in this type (shipped models: bf16); loading casts
    them back to the model's own type. A full disk is a `CheckpointError` naming `directory`; whatever was there
    before is unchanged."""
    directory = Path(directory)
    if dtype is not None and not adapter_only:
        raise ValueError("dtype applies to adapter-only checkpoints")
    with staging(directory) as tmp:
        try:
            _write(model, tmp, adapter_only, extra or {}, dtype)
            replace_dir(tmp, directory)
        except Exception as e:
            if _disk_full(e, directory.parent):
                raise CheckpointError(f"cannot save '{directory}': the disk is full ({type(e).__name__}: {e}); "
                                      "what was there before is unchanged: free some space and try again") from e
            raise
    return directory


def _write(model: MultimodalModel, folder: Path, adapter_only: bool, extra: dict, dtype: torch.dtype | None) -> None:
    """A checkpoint's files in `folder`; checkpoint.json last, with the sha256 of the weights and the extras."""
    keys = stored_keys(model) if adapter_only else None
    (folder / "config.yaml").write_text(yaml.safe_dump(to_dict(model.config), sort_keys=False))
    model.backbone.config.save_pretrained(folder / "backbone")
    model.tokenizer.save_pretrained(folder / "backbone")
    if adapter_only:
        state = model.state_dict()
        cast = lambda t: t.to(dtype) if dtype is not None and t.is_floating_point() else t  # noqa: E731
        save_file({k: cast(state[k].detach()).contiguous().clone() for k in keys}, folder / WEIGHTS)
    else:
        save_model(model, str(folder / WEIGHTS))  # handles tied weights (LM head = embeddings)
    for name, write in extra.items():
        write(folder / name)
    meta = {
        "format_version": FORMAT_VERSION,
        "format": "adapter" if adapter_only else "full",
        "attaches_to": model.pretrained_parts if adapter_only else {},
        "stored_keys": keys,
        HASHES: {name: sha256(folder / name) for name in (WEIGHTS, *extra)},
    }
    (folder / "checkpoint.json").write_text(json.dumps(meta, indent=2))


def sha256(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _disk_full(error: Exception, folder: Path) -> bool:
    """Whether a failed write ran out of space: the OS said so (also inside safetensors' message), or the disk
    has next to nothing left (torch.save then reports only 'unexpected pos')."""
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "os error 28" in str(error):
        return True
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW_BYTES
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------------
# Writing a dir safely: a locked temporary sibling, flushed to the disk, renamed into place


@contextlib.contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A new empty dir beside `target` to write it in (`.NAME.tmp-XXXXXXXX`), locked (flock) while it is written
    and removed at the end unless `replace_dir` moved it into place. Temporary dirs of `target` that no process
    holds (their writer was killed: the kernel dropped its lock) are removed first; those of a live writer stay."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        with _flocked(stale, wait=False) as abandoned:
            if abandoned:
                shutil.rmtree(stale, ignore_errors=True)
    while True:
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        with _flocked(tmp, wait=True) as ours:  # waits only while another save's clean-up looks at it
            if ours:  # not removed by that clean-up in the meantime
                try:
                    yield tmp
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                return


@contextlib.contextmanager
def _flocked(folder: Path, wait: bool) -> Iterator[bool]:
    """Hold an exclusive flock on `folder`: True when held and the folder still exists."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        yield False
        return
    try:
        yield os.fstat(fd).st_nlink > 0  # a removed dir has no links left
    finally:
        os.close(fd)


def replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target` durably: its files are flushed to the disk first, the rename after. An existing
    target is moved aside first (`.NAME.old-*`, see `recover`) and removed only afterwards, with any left over
    by an earlier save that was killed between the two renames."""
    _fsync(new, *new.rglob("*"))
    if target.exists():
        os.replace(target, target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(new, target)
    _fsync(target.parent)
    for aside in target.parent.glob(f".{target.name}.old-*"):
        shutil.rmtree(aside, ignore_errors=True)


def _fsync(*paths: Path) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
    try:
        text = (directory / "config.yaml").read_text()
        config: Config = from_dict(Config, parse_yaml(text, "config.yaml"))  # bounded: no YAML bomb
    except (yaml.YAMLError, ValueError) as e:  # ConfigError, or bytes that are not text
        raise CheckpointError(f"'{directory}': config.yaml is not a valid config: {e}") from None
    shapes = _stored_shapes(directory)  # the weights file checked before the (slower) build
    try:
        if meta["format"] == "full":  # every weight is in the file: skip the pretrained downloads
            model = build(config, pretrained=False, backbone_dir=directory / "backbone")
        else:
            model = build(config, pretrained=True)
    except Exception as e:  # a config.yaml edited or cut into one whose parts refuse it (timm, transformers)
        raise CheckpointError(f"'{directory}': its config.yaml builds no model ({type(e).__name__}: {e})") from e
    _load_weights(model, directory, meta, shapes)
    return model.eval()


def load_weights(model: MultimodalModel, directory: str | Path) -> None:
    """Put a checkpoint's weights into an already built model of the same config (used by --resume)."""
    directory = Path(directory)
    _load_weights(model, directory, _read_meta(directory), _stored_shapes(directory))


def _load_weights(model: MultimodalModel, directory: Path, meta: dict, shapes: dict[str, tuple[int, ...]]) -> None:
    format = meta["format"]
    if format == "adapter":  # its weights were trained on the pretrained parts it names: the model must have those
        try:
            model.check_attaches_to(meta.get("attaches_to") or {}, str(directory))
        except PretrainedPartsError as e:
            raise AttachesToError(str(e)) from None
    own = model.state_dict()
    wrong = [f"{k} {list(shape)} (the config's {list(own[k].shape)})" for k, shape in shapes.items()
             if k in own and shape != own[k].shape]
    if wrong:
        raise CheckpointError(f"'{directory}': stored weights do not match the config: shapes of {wrong[:3]}")
    if format == "full":
        try:
            missing, unexpected = load_model(model, str(directory / WEIGHTS), strict=False)  # knows tied weights
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"'{directory / WEIGHTS}' is not a readable safetensors file: {e}") from None
        missing, unexpected = sorted(missing), sorted(unexpected)  # `missing` comes back as a set
    else:
        expected = set(stored_keys(model))
        missing, unexpected = sorted(expected - set(shapes)), sorted(set(shapes) - expected)
        if not (missing or unexpected):
            model.load_state_dict(_read_tensors(directory), strict=False)
    if missing or unexpected:
        raise CheckpointError(f"'{directory}': stored weights do not match the config: "
                              f"missing {missing[:5]}, unexpected {unexpected[:5]}")


def _stored_shapes(directory: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the weights stored in `directory`, read from the file's header (after its hash check)."""
    path = verified(directory, WEIGHTS)
    try:
        with safe_open(path, "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"'{path}' is not a readable safetensors file: {e}") from None


def _read_tensors(directory: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(directory / WEIGHTS)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"'{directory / WEIGHTS}' is not a readable safetensors file: {e}") from None


def verified(directory: str | Path, name: str) -> Path:
    """`directory / name`, after checking it against the sha256 checkpoint.json recorded when it was saved
    (checkpoints saved before hashes were recorded have none: their files are not checked)."""
    directory = Path(directory)
    path = directory / name
    recorded = _read_meta(directory).get(HASHES, {}).get(name)
    if recorded is not None and (actual := sha256(path)) != recorded:
        raise CheckpointError(f"'{path}' is not the file that was saved: sha256 expected {recorded} (recorded in "
                              f"checkpoint.json), got {actual}. The file is corrupt or was changed")
    return path


def _read_meta(directory: Path) -> dict:
    for name in ("config.yaml", "checkpoint.json", WEIGHTS, "backbone/config.json"):
        if not (directory / name).is_file():
            raise CheckpointError(f"'{directory}' is not a multimodal checkpoint: {name} is missing")
    try:
        meta = json.loads((directory / "checkpoint.json").read_text())
    except ValueError as e:  # not JSON, or not text
        raise CheckpointError(f"'{directory}': checkpoint.json is unreadable: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") not in ("full", "adapter"):
        raise CheckpointError(f"'{directory}': checkpoint.json names no format (\"full\" or \"adapter\")")
    wrong = [k for k, kind in META_TYPES.items() if k in meta and not isinstance(meta[k], kind)]
    if wrong or not all(isinstance(v, str) for v in meta.get(HASHES, {}).values()):
        raise CheckpointError(f"'{directory}': checkpoint.json has values of the wrong type: {wrong or [HASHES]}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"'{directory}' was written by a newer version (format {meta['format_version']})")
    return meta


# ---------------------------------------------------------------------------------------------------------
# One training per output folder


@contextlib.contextmanager
def hold_run_dir(folder: str | Path) -> Iterator[None]:
    """Hold a training run's output folder for this process: an exclusive flock on FOLDER/.lock, which names the
    holder (pid and host). A second holder is refused with that name. The kernel drops the lock when the process
    ends, however it ends, so a killed run never blocks the next."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / RUN_LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid, host = (f.read().split() + ["?", "?"])[:2]
            raise ValueError(f"'{folder}' is being written by another training (pid {pid} on {host}); wait for it "
                             "to end, or choose another --output") from None
        f.truncate(0)
        f.write(f"{os.getpid()} {socket.gethostname()}\n")
        f.flush()
        yield
