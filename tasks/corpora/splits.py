"""Stable split assignment: a key's place in [0, 1) under a seed, the same on every machine and Python.

A corpus puts a row in a split by comparing `share(seed, key)` with the split's fraction, where the key is what
must not straddle two splits (a film, a text). Python's `hash` is salted per process, so a sha256 is used.
`write_splits` writes the splits as JSONL files; `package_data_file` finds a data file in an installed package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any


def share(seed: int, key: str) -> float:
    """`key`'s place in [0, 1) under `seed`."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16) / 16**12


def write_splits(out: str | Path, splits: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Write each split's rows as `OUT/NAME.jsonl` (the validation split as `eval.jsonl`), each file atomically
    (a temporary file renamed into place); returns {file stem: rows}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, rows in splits.items():
        file = out / f"{'eval' if name == 'validation' else name}.jsonl"
        tmp = file.with_name(file.name + ".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, file)
        written[file.stem] = rows
    return written


def package_data_file(package: str, file: str) -> Path | None:
    """`file` inside the installed Python package `package`, found without importing it (a data-only package's
    imports may be heavy or broken); None when the package or the file is missing."""
    spec = importlib.util.find_spec(package)
    path = Path(spec.submodule_search_locations[0]) / file if spec and spec.submodule_search_locations else None
    return path if path is not None and path.is_file() else None
