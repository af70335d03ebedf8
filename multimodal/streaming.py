"""Streaming data (data.streaming=true): rows are read as training consumes them, never all at once.

For sets larger than memory or disk cache. A `datasets.IterableDataset` over JSONL/CSV or a media folder's
metadata file, shuffled through a buffer in an order fixed by (seed, epoch), split between DDP ranks by
`datasets.distributed.split_dataset_by_node`. Rows are checked as they arrive: a bad row is a `DataError`
naming it, or (data.on_bad_rows=skip) a warning. A resumed run skips the examples this rank already
consumed in the epoch (`skip` reads but does not decode them).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from multimodal.data import METADATA_FILES, DataError, check_row, decode_media
from tasks import Task

log = logging.getLogger(__name__)
SHUFFLE_BUFFER = 1000  # rows held for shuffling


def open_stream(source: str | Path, task: Task):
    """(IterableDataset of raw rows, base dir for relative file names)."""
    import datasets

    if isinstance(source, (list, tuple)):
        raise DataError(f"data.streaming reads one source, got a list of {len(source)}: set data.streaming=false "
                        "to mix them, or write their rows into one metadata file")
    path = Path(source)
    if path.is_dir():
        meta = next((path / m for m in METADATA_FILES if (path / m).is_file()), None)
        if meta is None:
            raise DataError(f"folder '{path}' has no {' or '.join(METADATA_FILES)} (file_name + text or label)")
        path, base = meta, path
    elif path.is_file():
        base = path.parent
    else:
        raise DataError(f"data path '{path}' does not exist")
    kind = {".jsonl": "json", ".json": "json", ".csv": "csv"}.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"data file '{path}' must be .jsonl, .json or .csv")
    try:
        stream = datasets.load_dataset(kind, data_files=str(path), split="train", streaming=True)
    except Exception as e:  # noqa: BLE001 - datasets raises many kinds for a malformed file
        raise DataError(f"cannot read data file '{path}': {e}") from None
    return stream, base


class StreamingTaskDataset(torch.utils.data.IterableDataset):
    """One rank's shuffled stream of task examples for one epoch, from example `start` on."""

    def __init__(self, source: str | Path, task: Task, seed: int, on_bad_rows: str, rank: int = 0, world_size: int = 1,
                 augment: Any = None, follow_symlinks: bool = False):
        self.source, self.task, self.seed, self.on_bad_rows = source, task, seed, on_bad_rows
        self.augment, self.follow_symlinks = augment, follow_symlinks  # data.follow_symlinks (multimodal/data.py)
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0
        open_stream(source, task)  # fail now, not in a worker, on a missing or malformed source

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from datasets.distributed import split_dataset_by_node

        stream, base = open_stream(self.source, self.task)
        stream = split_dataset_by_node(stream, self.rank, self.world_size)
        stream = stream.shuffle(seed=self.seed, buffer_size=SHUFFLE_BUFFER)
        stream.set_epoch(self.epoch)
        media = self.task.input_column if self.task.modality != "text" else None
        for i, row in enumerate(stream.skip(self.start), start=self.start):
            if media and media not in row and "file_name" in row:
                row[media] = row.pop("file_name")
            missing = [c for c in self.task.required_columns if c not in row]
            problem = (f"missing column(s) {missing}" if missing
                       else check_row(row, self.task, base, self.follow_symlinks)[0])
            if problem:
                message = f"'{self.source}': bad row (epoch {self.epoch}, example {i} of rank {self.rank}): {problem}"
                if self.on_bad_rows != "skip":
                    raise DataError(message + ". Fix it, or set data.on_bad_rows=skip to leave such rows out")
                log.warning("%s; skipped", message)
                continue
            if media:
                row[media] = decode_media(str((base / row[media]).resolve()), self.task.modality)
                if self.task.modality == "audio" and self.augment is not None and self.augment.enabled:
                    from encoders.augment import augment

                    rng = np.random.default_rng([self.seed, self.epoch, self.rank, i])  # exact on resume
                    row[media] = augment(row[media], self.augment, rng)
            example = self.task.example(row)
            example["reference"] = str(row[self.task.target_column]).strip()
            yield example
