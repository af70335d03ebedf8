"""The one cache folder of the library: converted weights, joined voice models, features, lexicons."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$MULTIMODAL_CACHE`, default `~/.cache/multimodal`; read on each call, so a test can point it elsewhere."""
    return Path(os.environ.get("MULTIMODAL_CACHE", Path.home() / ".cache" / "multimodal"))
