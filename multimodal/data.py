"""The data layer: the ecosystem's formats in, checked rows out, decoded and batched for a task.

Accepted sources (`load_rows`):
- a folder of images or audio files with `metadata.jsonl` or `metadata.csv` (`file_name` + `text` or
  `label`): the Hugging Face imagefolder / audiofolder convention;
- a JSONL / JSON / CSV file with `text,label` (text tasks) or `file_name,...` (paths relative to the file);
- a `datasets.Dataset` / `DatasetDict`, or a folder written by `Dataset.save_to_disk`;
- a list of any of these: a mixture, their rows concatenated (e.g. two caption corpora).
Every row is checked on load: missing column, empty text or NaN, a mapping where text belongs, a `file_name`
that is missing, unreadable, escapes its folder or (unless data.follow_symlinks) is a symlink to a file outside
it. Bad rows are one `DataError` listing them, or (data.on_bad_rows=skip) a warning. A file `datasets` cannot
read (not UTF-8, malformed) is a `DataError` naming it.
"""

from __future__ import annotations

import codecs
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from tasks import Task

log = logging.getLogger(__name__)

METADATA_FILES = ("metadata.jsonl", "metadata.csv")
MAX_LISTED_ROWS = 10  # bad rows shown in one error
UTF8_CHECK_BYTES = 1 << 20  # data files are checked to be UTF-8 this many bytes at a time
BUCKET_BATCHES = 50  # length bucketing sorts within windows of this many batches


class DataError(ValueError):
    """A data source that cannot be used as it is; the message names the source and the bad rows."""


# ---------------------------------------------------------------------------------------------------------
# Loading and checking


def load_rows(source: Any, task: Task, on_bad_rows: str = "error", split: str = "train", follow_symlinks: bool = False):
    """A checked `datasets.Dataset` with the task's columns; media columns hold absolute paths or objects.

    A list of sources is a mixture: each is loaded and checked on its own, then their rows are concatenated.
    `follow_symlinks` (data.follow_symlinks) accepts a `file_name` that is a symlink to a file outside its folder.
    """
    import datasets

    if isinstance(source, (list, tuple)):
        return _load_mixture(source, task, on_bad_rows, split, follow_symlinks)
    if isinstance(source, datasets.DatasetDict):
        source = _pick_split(source, split, "the DatasetDict")
    if isinstance(source, datasets.Dataset):
        rows, base = source, None
    else:
        rows, base = _read_path(Path(source), split)
    try:
        rows = task.prepare_rows(rows, _name(source))  # e.g. NER `text,entities` -> `tokens,tags`
    except ValueError as e:  # tasks do not know DataError
        raise DataError(str(e) if _name(source) in str(e) else f"{_name(source)}: {e}") from None
    media = task.input_column if task.modality != "text" else None
    if media and media not in rows.column_names and "file_name" in rows.column_names:
        rows = rows.rename_column("file_name", media)
    missing = [c for c in task.required_columns if c not in rows.column_names]
    if missing:
        hint = " (a media folder needs 'file_name' in its metadata)" if media in missing else ""
        raise DataError(
            f"{_name(source)}: missing column(s) {missing} for task '{task.name}'{hint}; "
            f"found columns: {rows.column_names}"
        )
    bad: list[tuple[int, str]] = []
    keep: list[int] = []
    lengths: list[float] = []
    for i, row in enumerate(rows.select_columns(list(task.required_columns))):
        problem, length = check_row(row, task, base, follow_symlinks)
        if problem:
            bad.append((i, problem))
        else:
            keep.append(i)
            lengths.append(length)
    if bad:
        listed = "; ".join(f"row {i}: {p}" for i, p in bad[:MAX_LISTED_ROWS])
        more = f" (and {len(bad) - MAX_LISTED_ROWS} more)" if len(bad) > MAX_LISTED_ROWS else ""
        message = f"{_name(source)}: {len(bad)} bad row(s) of {len(rows)}: {listed}{more}"
        if on_bad_rows != "skip":
            raise DataError(message + ". Fix them, or set data.on_bad_rows=skip to leave them out")
        log.warning("%s; skipped", message)
    if not keep:
        raise DataError(f"{_name(source)}: no usable rows for task '{task.name}'")
    rows = rows.select(keep) if bad else rows
    if media and base is not None:  # absolute paths, so workers and checkpoints need no base dir
        rows = rows.map(lambda r: {media: str((base / r[media]).resolve())}, desc="resolving paths")
    return rows.add_column("length", lengths)


def _load_mixture(sources: list | tuple, task: Task, on_bad_rows: str, split: str, follow_symlinks: bool):
    import datasets

    if not sources:
        raise DataError("the list of data sources is empty")
    parts = [load_rows(s, task, on_bad_rows, split, follow_symlinks) for s in sources]
    # Sources may carry different extra columns: keep the task's and those all of them have with one type (e.g.
    # `voice`, which phone CTC targets read), so the parts concatenate.
    required = [*task.required_columns, "length"]
    columns = [c for c in parts[0].column_names if c in required or all(
        c in part.column_names and part.features[c] == parts[0].features[c] for part in parts)]
    parts = [part.select_columns(columns) for part in parts]
    if len(parts) == 1:
        return parts[0]
    try:
        rows = datasets.concatenate_datasets(parts)
    except ValueError as e:  # e.g. file paths in one source, decoded images in another
        names = ", ".join(_name(s) for s in sources)
        raise DataError(f"cannot mix the data sources {names}: {e}") from None
    # Round-robin order, so the first N rows (evaluation's max_examples) sample every source.
    starts = np.cumsum([0] + [len(p) for p in parts])
    order = [int(starts[j]) + k for k in range(max(map(len, parts))) for j, p in enumerate(parts) if k < len(p)]
    return rows.select(order)


def _name(source: Any) -> str:
    return f"'{source}'" if isinstance(source, (str, os.PathLike)) else "the dataset"


def _pick_split(dd, split: str, what: str):
    for name in (split, *(("validation", "test") if split != "train" else ())):
        if name in dd:
            return dd[name]
    raise DataError(f"{what} has no '{split}' split; splits: {list(dd)}")


def _read_path(path: Path, split: str):
    import datasets

    if not path.exists():
        raise DataError(f"data path '{path}' does not exist")
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            try:
                loaded = datasets.load_from_disk(str(path))
            except Exception as e:  # noqa: BLE001 - a damaged save raises many kinds
                raise DataError(f"cannot read the saved dataset '{path}': {e}") from None
            return (_pick_split(loaded, split, f"'{path}'") if isinstance(loaded, datasets.DatasetDict) else loaded), None
        meta = next((path / m for m in METADATA_FILES if (path / m).is_file()), None)
        if meta is None:
            raise DataError(f"folder '{path}' has no {' or '.join(METADATA_FILES)} (file_name + text or label)")
        return _read_table(meta), path
    return _read_table(path), path.parent


def _read_table(path: Path):
    import datasets

    kind = {".jsonl": "json", ".json": "json", ".csv": "csv"}.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"data file '{path}' must be .jsonl, .json or .csv")
    _check_utf8(path)  # pyarrow reads invalid UTF-8 into strings that fail later, in whichever row touches them
    try:
        return datasets.load_dataset(kind, data_files=str(path), split="train")
    except Exception as e:  # datasets raises many kinds for a malformed file
        cause = f" ({e.__cause__})" if e.__cause__ else ""  # e.g. pyarrow's parse error under DatasetGenerationError
        raise DataError(f"cannot read data file '{path}': {e or type(e).__name__}{cause}") from None


def _check_utf8(path: Path) -> None:
    """A DataError naming `path` and the line where it stops being UTF-8, or if it is empty."""
    if path.stat().st_size == 0:
        raise DataError(f"data file '{path}' is empty")
    decoder, line = codecs.getincrementaldecoder("utf-8")(), 1
    with open(path, "rb") as f:
        while chunk := f.read(UTF8_CHECK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                line += chunk.count(b"\n", 0, max(e.start, 0))
                raise DataError(f"data file '{path}' is not UTF-8 text (line {line}: {e.reason})") from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            raise DataError(f"data file '{path}' is not UTF-8 text (it ends inside a character: {e.reason})") from None


def check_row(row: dict[str, Any], task: Task, base: Path | None, follow_symlinks: bool = False) -> tuple[str, float]:
    """(problem or "", length used for bucketing) for one row; `base` is the folder its file names are in."""
    target = row[task.target_column]
    if _is_empty(target):
        return f"empty '{task.target_column}'", 0.0
    if problem := _not_text(target, task.target_column, lists=bool(task.head)):
        return problem, 0.0
    if task.modality == "text":
        text = row[task.input_column]
        if _is_empty(text):
            return f"empty '{task.input_column}'", 0.0
        if problem := _not_text(text, task.input_column, lists=bool(task.head)):
            return problem, 0.0
        return task.check(row), float(len(str(text)))
    value = row[task.input_column]
    if base is not None and value is not None and not isinstance(value, str):
        return f"file_name {value!r} is not a file name (a {type(value).__name__})", 0.0
    if not isinstance(value, (str, os.PathLike)):  # a `datasets` Image or Audio value
        return ("", 1.0) if value is not None else (f"empty '{task.input_column}'", 0.0)
    if not str(value).strip():
        return "empty 'file_name'", 0.0
    if "\0" in str(value):  # no file has one; os calls raise ValueError on it
        return f"file_name {str(value)!r} holds a NUL character", 0.0
    file = Path(value) if base is None else base / value
    if base is not None and (problem := _leaves_folder(value, file, base, follow_symlinks)):
        return problem, 0.0
    if not file.is_file():
        return f"file '{value}' does not exist", 0.0
    try:
        return "", _probe(file, task.modality)
    except Exception as e:  # any reader failure means the file cannot be used
        return f"file '{value}' is unreadable ({type(e).__name__}: {e})", 0.0


def _is_empty(value: Any) -> bool:
    return (value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip()
            or (isinstance(value, list) and not value))


def _not_text(value: Any, column: str, lists: bool) -> str:
    """Why a text or label value cannot be read ("" when it can): a mapping never; a list only where a head reads
    it (multi-label, NER tokens and tags): the LM reads and writes text."""
    if isinstance(value, dict) or (isinstance(value, list) and not lists):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return f"'{column}' holds a {type(value).__name__}, not text: {shown}"
    return ""


def _leaves_folder(value: str, file: Path, base: Path, follow_symlinks: bool) -> str:
    """Why `file` (file_name `value`) is not a file of the folder `base` ("" when it is)."""
    # '../x' or an absolute name leaves the folder whatever is on disk
    if not Path(os.path.normpath(file)).is_relative_to(os.path.normpath(base)):
        return f"file_name '{value}' escapes the folder '{base}'"
    # a symlink (the file, or a folder on its way) to a place outside: followed only when the user says so
    target = Path(os.path.realpath(file))
    if not follow_symlinks and not target.is_relative_to(os.path.realpath(base)):
        return (f"file_name '{value}' is a symlink to '{target}', outside the folder '{base}' (set "
                f"data.follow_symlinks=true to follow links out of the folder)")
    return ""


def _probe(file: Path, modality: str) -> float:
    """Read only the header: image -> 1.0; audio -> duration in seconds."""
    if modality == "image":
        from encoders.image_io import probe_image

        probe_image(file)
        return 1.0
    import soundfile

    try:
        info = soundfile.info(str(file))
        if info.frames == 0:
            raise ValueError("no audio samples")
        return info.frames / info.samplerate
    except RuntimeError:  # not a soundfile format (mp3, m4a...): ffmpeg through torchcodec
        from torchcodec.decoders import AudioDecoder

        duration = AudioDecoder(str(file)).metadata.duration_seconds
        if not duration:
            raise ValueError("no audio samples") from None
        return float(duration)


# ---------------------------------------------------------------------------------------------------------
# Decoding and batching


class TaskDataset(torch.utils.data.Dataset):
    """Rows -> task examples with decoded media (runs in DataLoader workers).

    With `augment` (training), audio is augmented by an RNG seeded from (seed, epoch, row): the same example
    in the same epoch is always augmented the same way, so a resumed run sees what an uninterrupted one
    would. The epoch comes encoded in the index (`epoch * len(rows) + row`, see LengthGroupedBatches).
    """

    def __init__(self, rows, task: Task, with_target: bool = True, augment: Any = None, seed: int = 0):
        self.rows, self.task, self.with_target = rows, task, with_target
        self.augment, self.seed = augment, seed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        epoch, index = divmod(index, len(self.rows))
        row = dict(self.rows[index])
        if self.task.modality != "text":
            media = decode_media(row[self.task.input_column], self.task.modality)
            if self.task.modality == "audio" and self.augment is not None and self.augment.enabled:
                from encoders.augment import augment

                media = augment(media, self.augment, np.random.default_rng([self.seed, epoch, index]))
            row[self.task.input_column] = media
        example = self.task.example(row, with_target=self.with_target)
        example["reference"] = str(row[self.task.target_column]).strip()
        return example


def decode_media(value: Any, modality: str) -> Any:
    """A path, a `datasets` Image/Audio value or an array -> PIL image / 16 kHz waveform."""
    from encoders import load_audio, load_image

    if modality == "image":
        return load_image(value)
    if isinstance(value, dict) and "array" in value:  # datasets' decoded audio dict
        return load_audio(np.asarray(value["array"]), value["sampling_rate"])
    if hasattr(value, "get_all_samples"):  # datasets >= 4 decodes audio into a torchcodec AudioDecoder
        samples = value.get_all_samples()
        return load_audio(samples.data, samples.sample_rate)
    return load_audio(value)


@dataclass
class Collator:
    """Examples -> a padded model batch (the processor tokenizes with the task's prompt)."""

    processor: Any  # multimodal.processor.Processor
    padding_side: str = "right"

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        from multimodal.processor import Example

        batch = self.processor(
            [Example(e["prompt"], e["target"], e["images"], e["audios"], e.get("voice")) for e in examples],
            self.padding_side
        )
        batch["references"] = [e["reference"] for e in examples]
        return batch


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Batches of similar length in a random order fixed by (seed, epoch); one rank's share under DDP.

    `start` skips batches already trained in this epoch, so a resumed run sees exactly the batches an
    uninterrupted run would have seen next.
    """

    def __init__(self, lengths: list[float], batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 epoch_coded: bool = False):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.epoch_coded = epoch_coded  # yield epoch * n + i, so the dataset knows the epoch (augmentation)
        self.epoch, self.start = 0, 0

    def batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        window = self.batch_size * BUCKET_BATCHES
        batches = []
        for w in range(0, len(order), window):
            chunk = order[w : w + window]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]  # longest first within the window
            batches += [chunk[b : b + self.batch_size].tolist() for b in range(0, len(chunk), self.batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        per_rank = len(batches) // self.world_size
        if per_rank == 0:
            raise DataError(
                f"{len(self.lengths)} examples make {len(batches)} batch(es) of {self.batch_size}, fewer than "
                f"the {self.world_size} processes; lower training.batch_size"
            )
        return batches[self.rank : per_rank * self.world_size : self.world_size]

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[list[int]]:
        offset = self.epoch * len(self.lengths) if self.epoch_coded else 0
        for batch in self.batches(self.epoch)[self.start :]:
            yield [offset + i for i in batch]

    def __len__(self) -> int:
        return len(self.batches(self.epoch)) - self.start


def collator_for(model, task: Task, max_text_tokens: int):
    """The batcher of a task: a head task's labels batch, or the LM prompt format."""
    if task.head:
        from multimodal.text_heads import HeadCollator

        return HeadCollator.for_model(model, task)
    from multimodal.processor import Processor

    return Collator(Processor(model, max_text_tokens))


def task_loader(model, task: Task, rows, config, seed: int, rank: int, world: int):
    """(DataLoader, its LengthGroupedBatches) over one task's checked rows on this rank, in an order fixed by
    `seed` and the epoch."""
    tc, dc = config.training, config.data
    sampler = LengthGroupedBatches(rows["length"], tc.batch_size, seed, rank, world, epoch_coded=True)
    loader = torch.utils.data.DataLoader(
        TaskDataset(rows, task, augment=dc.augment, seed=tc.seed),
        batch_sampler=sampler,
        collate_fn=collator_for(model, task, dc.max_text_tokens),
        num_workers=dc.num_workers,
        persistent_workers=dc.num_workers > 0,  # the batch sampler runs in this process: workers can persist
        # Its own generator: a new iterator must not draw from the global RNG (dropout), or a resumed run
        # (which starts an iterator mid-epoch) would diverge from an uninterrupted one.
        generator=torch.Generator().manual_seed(seed),
    )
    return loader, sampler
