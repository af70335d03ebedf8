"""Output folders of the corpus generators: regenerate our own splits, never delete anything else."""

from __future__ import annotations

import shutil
from pathlib import Path

METADATA = "metadata.jsonl"


def clear_split(folder: Path, media_suffix: str) -> None:
    """Remove a split folder written earlier by a generator; refuse one holding files a generator never writes."""
    folder = Path(folder)
    if folder.exists():
        foreign = [p for p in folder.iterdir() if p.name != METADATA and p.suffix != media_suffix]
        if foreign or not folder.is_dir():
            raise ValueError(
                f"'{folder}' holds files this generator did not write (e.g. '{foreign[0].name if foreign else folder}'); "
                "choose another --out"
            )
        shutil.rmtree(folder)
