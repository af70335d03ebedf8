"""Stable split assignment: a key's place in [0, 1) under a seed, the same on every machine and Python.

A corpus puts a row in a split by comparing `share(seed, key)` with the split's fraction, where the key is what
must not straddle two splits (a film, a text). Python's `hash` is salted per process, so a sha256 is used.
"""

from __future__ import annotations

import hashlib


def share(seed: int, key: str) -> float:
    """`key`'s place in [0, 1) under `seed`."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16) / 16**12
