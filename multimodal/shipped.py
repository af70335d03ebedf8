"""Shipped models: the project's own trained checkpoints, inside the package, loaded by name.

Each lives in `multimodal/shipped/NAME/` and travels with `pip install .` (package data):
    README.md          the model card (Hugging Face layout: task, parts, data, recipe, figures, limits, licences)
    manifest.json      name, task, the decoding settings its figures need, the headline test metric with its
                       95 % interval, the commit that shipped it, and the sha256 and size of every file below
    config.yaml, checkpoint.json, backbone/, model.safetensors
                       an adapter-only checkpoint (multimodal/checkpoint.py), weights in bf16: only what was
                       trained; the pretrained parts it attaches to come from their packages
    decoding/          files the decoding settings name (a speech model's word list and n-gram LM), if any
Every recorded file is hashed at load; a missing or changed file is a `ShippedModelError` naming the model and
the file, never a silent random init. All shipped weights together stay within `BUDGET_BYTES`, and a model is
replaced only when its headline test metric improves, so the repository's history stays small.

`ship` writes such a folder from a trained checkpoint: it stores the trained weights in bf16, scores that
bf16 model on the test split (a split no choice was made on) with a bootstrap interval, and records it all. It
writes in a temporary folder renamed into place (`checkpoint.replace_dir`): a ship that fails or is killed
leaves the shipped model as it was.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from multimodal.checkpoint import CheckpointError, recover, replace_dir, sha256, staging

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
MANIFEST = "manifest.json"
CARD = "README.md"
BUDGET_BYTES = 80 * 1000**2  # every shipped weight and decoding file together (the 80 MB)
DECODING_FILES = ("lexicon", "lm")  # decoding settings that name a file: shipped inside the model, under DECODING_DIR
DECODING_DIR = "decoding"
WEIGHT_SUFFIXES = (".safetensors",)
# The model each command uses when no --model is given. A task whose model is not shipped yet says so by name.
DEFAULT_MODELS: dict[str, str] = {
    "classify": "sentiment-en",
    "transcribe": "speech-en",
    "caption": "caption-en",
    "tag": "entities-en",
}
# Decoding settings a manifest may carry, by the task that reads them (the names of the CLI flags).
DECODING_KEYS = {"transcribe": ("decoder", "lexicon", "lm", "rescore"), "caption": ("num_beams", "max_new_tokens")}


class ShippedModelError(CheckpointError):
    """A shipped model that is unknown, incomplete or altered."""


@dataclass
class Manifest:
    name: str
    task: str  # the registry task it was trained and scored on (tasks/registry.py)
    headline: dict[str, Any]  # {metric, value, low, high, split, n_examples, command}
    files: dict[str, dict[str, Any]]  # relative path -> {sha256, bytes}
    decoding: dict[str, Any]  # settings the card's figures were measured with (DECODING_KEYS)
    commit: str = ""  # the repository commit `ship` ran at ("+dirty" when the tree had changes)

    @property
    def weight_bytes(self) -> int:
        return sum(f["bytes"] for path, f in self.files.items()
                   if path.endswith(WEIGHT_SUFFIXES) or path.startswith(f"{DECODING_DIR}/"))


def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else SHIPPED_DIR


def _folder(name: str, root: Path | None) -> Path:
    """Shipped model `name`'s folder, or the previous one if a `ship` was killed between its two renames."""
    return recover(_root(root) / name)


def names(root: Path | None = None) -> list[str]:
    root = _root(root)
    if not root.is_dir():
        return []
    found = {p.name for p in root.iterdir() if not p.name.startswith(".")}  # not a ship's temporary dirs
    found |= {p.name[1:].rsplit(".old-", 1)[0] for p in root.glob(".*.old-*")}  # moved aside by a killed ship
    return sorted(n for n in found if (_folder(n, root) / MANIFEST).is_file())


def read_manifest(name: str, root: Path | None = None) -> Manifest:
    path = _folder(name, root) / MANIFEST
    if not path.is_file():
        known = ", ".join(names(root)) or "none yet"
        raise ShippedModelError(f"no shipped model named '{name}' (shipped: {known})")
    try:
        return Manifest(**json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise ShippedModelError(f"shipped model '{name}': {path} is unreadable ({e})") from None


def verified_dir(name: str, root: Path | None = None) -> Path:
    """The folder of shipped model `name`, after checking every recorded file's size and sha256."""
    manifest = read_manifest(name, root)
    folder = _folder(name, root)
    for rel, recorded in manifest.files.items():
        path = folder / rel
        if not path.is_file():
            raise ShippedModelError(f"shipped model '{name}': file {rel} is missing; reinstall the package "
                                    f"or rebuild the model (see its {CARD})")
        if path.stat().st_size != recorded["bytes"] or sha256(path) != recorded["sha256"]:
            raise ShippedModelError(f"shipped model '{name}': file {rel} does not match its recorded sha256 "
                                    f"(changed or corrupt); reinstall the package or rebuild the model")
    return folder


def decoding_of(name: str, root: Path | None = None) -> dict[str, Any]:
    """Shipped model `name`'s decoding settings, with the files it ships (lexicon, lm) as paths in its folder."""
    return _in_folder(read_manifest(name, root).decoding, _folder(name, root))


def _in_folder(decoding: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Decoding settings as stored (files as `decoding/NAME`) with those files as paths under `folder`."""
    return {k: str(folder / v) if k in DECODING_FILES and isinstance(v, str) and v.startswith(f"{DECODING_DIR}/") else v
            for k, v in decoding.items()}


def total_weight_bytes(root: Path | None = None) -> int:
    return sum(read_manifest(n, root).weight_bytes for n in names(root))


def describe(root: Path | None = None) -> list[dict[str, Any]]:
    """One row per shipped model for `multimodal models`: name, task, size, headline metric, default for."""
    defaults = {model: command for command, model in DEFAULT_MODELS.items()}
    rows = []
    for name in names(root):
        m = read_manifest(name, root)
        h = m.headline
        rows.append({"name": name, "task": m.task, "default_for": defaults.get(name, ""),
                     "weights_mb": round(m.weight_bytes / 1000**2, 2),
                     "metric": f"{h['metric']} {h['value']:.3f} [{h['low']:.3f}, {h['high']:.3f}] ({h['split']}, n={h['n_examples']})",
                     "card": str(_root(root) / name / CARD)})
    return rows


# ---------------------------------------------------------------------------------------------------------
# Writing a shipped model


def _commit() -> str:
    try:
        repo = Path(__file__).resolve().parents[1]
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return ""  # an installed package has no repository


def _portable(text: str) -> str:
    """Paths under the home folder written with ~, so a manifest reads the same on every machine."""
    return text.replace(str(Path.home()), "~")


def _better(new: dict[str, Any], old: dict[str, Any]) -> bool:
    from tasks.metrics import HIGHER_IS_BETTER

    if new["metric"] != old["metric"]:
        return True  # a different measure: nothing to compare
    return new["value"] > old["value"] if HIGHER_IS_BETTER.get(new["metric"], True) else new["value"] < old["value"]


def ship(checkpoint: str | Path, name: str, test_data: Any, card: str | Path | None = None,
         decoding: dict[str, Any] | None = None, root: Path | None = None, force: bool = False,
         batch_size: int = 16, command: str = "", settings: list[str] | tuple[str, ...] = ()) -> Manifest:
    """Write shipped model `name` from a trained checkpoint (dir or run dir) and return its manifest.

    The trained weights are stored in bf16; that bf16 model is scored on `test_data` with the task's metrics and
    a 95 % bootstrap interval. An existing model of that name is replaced only when the headline metric improves
    (`force` overrides), and only while all shipped weights stay within BUDGET_BYTES. `settings` are config
    overrides ("encoders.image.tag_words=everyday") the shipped model keeps: settings read at run time, never
    ones that change its weights.
    """
    from multimodal.checkpoint import load, save
    from multimodal.data import load_rows
    from multimodal.evaluate import evaluate
    from tasks import get_task

    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"shipped model name {name!r} must be a plain folder name such as 'sentiment-en'")
    root = _root(root)
    model = load(checkpoint)
    if settings:
        from multimodal.config import Config, apply_override, from_dict, to_dict

        data = to_dict(model.config)
        for item in settings:
            apply_override(data, item, Config)
        model.config = from_dict(Config, data)
    task = get_task(model.config.data.task)
    unknown = set(decoding or {}) - set(DECODING_KEYS.get(task.name, ()))
    if unknown:
        raise ValueError(f"decoding settings {sorted(unknown)} do not apply to task '{task.name}' "
                         f"(it takes: {', '.join(DECODING_KEYS.get(task.name, ())) or 'none'})")
    with staging(root / name) as tmp:  # a killed or failed ship leaves the shipped model as it was
        save(model, tmp / "model", adapter_only=True, dtype=torch.bfloat16)
        try:
            shipped = load(tmp / "model")  # the bf16 weights are what users get: score those
        except CheckpointError as e:
            if not settings:
                raise
            raise ValueError(f"the settings {list(settings)} change the model's weights, not only how it runs: "
                             f"{e}") from None
        stored = dict(decoding or {})
        for key in DECODING_FILES:  # a word list or n-gram LM the settings name travels inside the model
            if isinstance(stored.get(key), str) and stored[key]:
                source = Path(stored[key]).expanduser()
                if not source.is_file():
                    raise ValueError(f"decoding setting {key}={stored[key]}: no such file")
                (tmp / "model" / DECODING_DIR).mkdir(exist_ok=True)
                shutil.copyfile(source, tmp / "model" / DECODING_DIR / source.name)
                stored[key] = f"{DECODING_DIR}/{source.name}"
        shipped.decoding = _in_folder(stored, tmp / "model")
        rows = load_rows(test_data, task, split="test")
        metrics = evaluate(shipped, rows, task, batch_size=batch_size, progress=True, intervals=True,
                           **_evaluate_settings(task.name, shipped.decoding))
        metric = task.metrics[0]
        headline = {"metric": metric, "value": metrics[metric], "low": metrics[f"{metric}_low"],
                    "high": metrics[f"{metric}_high"], "split": _portable(str(test_data)),
                    "n_examples": metrics["n_examples"], "command": _portable(command), "all": {k: v for k, v in metrics.items() if isinstance(v, (int, float))}}
        old = read_manifest(name, root) if name in names(root) else None
        if old is not None and not force and not _better(headline, old.headline):
            raise ValueError(f"shipped model '{name}' already has {metric} {old.headline['value']:.4f}; the new one has "
                             f"{headline['value']:.4f}: a model is replaced only when it improves (force=True overrides)")
        folder = tmp / "model"
        if card is not None:
            shutil.copyfile(card, folder / CARD)
        elif old is not None and (_folder(name, root) / CARD).is_file():
            shutil.copyfile(_folder(name, root) / CARD, folder / CARD)
        files = {str(p.relative_to(folder)): {"sha256": sha256(p), "bytes": p.stat().st_size}
                 for p in sorted(folder.rglob("*")) if p.is_file() and p.name != CARD}
        manifest = Manifest(name=name, task=task.name, headline=headline, files=files, decoding=stored,
                            commit=_commit())
        others = sum(read_manifest(n, root).weight_bytes for n in names(root) if n != name)
        if others + manifest.weight_bytes > BUDGET_BYTES:
            raise ValueError(f"shipping '{name}' ({manifest.weight_bytes / 1e6:.1f} MB of weights) would bring the "
                             f"shipped models to {(others + manifest.weight_bytes) / 1e6:.1f} MB, over the "
                             f"{BUDGET_BYTES / 1e6:.0f} MB budget")
        (folder / MANIFEST).write_text(json.dumps(manifest.__dict__, indent=2) + "\n")
        replace_dir(folder, root / name)
    return manifest


def _evaluate_settings(task: str, decoding: dict[str, Any]) -> dict[str, Any]:
    """The decoding settings `evaluate` takes (it has no beam setting: captions are scored greedy)."""
    return {k: v for k, v in decoding.items() if k in ("decoder", "lexicon", "lm", "rescore")} if task == "transcribe" else {}
