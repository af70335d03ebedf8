"""Text classification corpora that exist offline: emoji names -> Unicode group, fortune quotes -> topic.

- `emoji`: the CLDR name of every base emoji ("red apple", "dog face", "flag: Japan") labelled with its
  Unicode group ("Food & Drink", "Animals & Nature", ...; 9 groups), from `emoji_names.emoji_table`.
  Skin-tone and hair-style variants are left out (their names only add "medium skin tone").
- `fortunes`: quotes from Debian's `fortunes` files, labelled with the file's topic (`FORTUNE_TOPICS`). Each
  quote is cut at its attribution line (`sentences._entries`), whitespace is collapsed, and quotes with
  non-ASCII or control characters (overstruck text) or outside 3-80 words are left out. At most
  `max_per_label` quotes per topic (the first by a hash of the text), so no topic swamps the rest.

The split is stratified and stable: within each label, texts are ordered by a hash of their text and the first
`eval_fraction` go to evaluation. A text found under two labels is dropped. Same files, same corpus.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

from tasks.corpora.emoji_names import emoji_table
from tasks.corpora.sentences import FORTUNE_DIR, FORTUNE_PACKAGE, MissingSentenceSource, _entries

CORPORA = ("emoji", "fortunes")
FORTUNE_TOPICS = ("computers", "education", "food", "law", "love", "politics", "science", "sports", "startrek", "work")
MIN_WORDS, MAX_WORDS = 3, 80


def emoji_rows() -> list[tuple[str, str]]:
    """(name, group) of every base emoji."""
    return [(e.name, e.group) for e in emoji_table() if not e.is_variant]


def clean_quote(entry: str) -> str | None:
    text = " ".join(entry.split())
    if not text.isascii() or any(ord(c) < 32 for c in entry.replace("\t", " ").replace("\n", " ")):
        return None
    return text if MIN_WORDS <= len(text.split()) <= MAX_WORDS else None


def fortune_rows(fortune_dir: Path = FORTUNE_DIR, topics: tuple[str, ...] = FORTUNE_TOPICS) -> list[tuple[str, str]]:
    """(quote, topic) of every usable quote in the topics' fortune files."""
    rows = []
    for topic in topics:
        path = Path(fortune_dir) / topic
        if not path.is_file():
            raise MissingSentenceSource(f"{path} not found: install the Debian package `{FORTUNE_PACKAGE}` "
                                        f"(apt-get install -y {FORTUNE_PACKAGE}, or `make setup`)")
        rows += [(q, topic) for q in map(clean_quote, _entries(path.read_text(encoding="latin-1"))) if q]
    return rows


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def split_rows(rows: list[tuple[str, str]], eval_fraction: float, max_per_label: int = 0) -> dict[str, list[dict]]:
    """Stratified, hash-ordered train/eval split of (text, label) rows; texts under two labels are dropped."""
    if not 0 < eval_fraction < 1:
        raise ValueError(f"eval fraction must be between 0 and 1, got {eval_fraction}")
    labels_of: dict[str, set[str]] = defaultdict(set)
    for text, label in rows:
        labels_of[text].add(label)
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, labels in labels_of.items():
        if len(labels) == 1:
            by_label[next(iter(labels))].append(text)
    out: dict[str, list[dict]] = {"train": [], "eval": []}
    for label in sorted(by_label):
        texts = sorted(by_label[label], key=_hash)
        if max_per_label:
            texts = texts[:max_per_label]
        n_eval = max(1, round(eval_fraction * len(texts)))
        out["eval"] += [{"text": t, "label": label} for t in texts[:n_eval]]
        out["train"] += [{"text": t, "label": label} for t in texts[n_eval:]]
    for split in out.values():
        split.sort(key=lambda r: _hash(r["label"] + r["text"]))  # labels interleaved
    return out


def generate_text_corpus(corpus: str, out: Path, eval_fraction: float = 0.15, max_per_label: int = 0) -> dict[str, dict[str, int]]:
    """Write `out/train.jsonl` and `out/eval.jsonl` (`text,label`); returns rows per label per split."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown text corpus '{corpus}'; valid: {', '.join(CORPORA)}")
    rows = emoji_rows() if corpus == "emoji" else fortune_rows()
    splits = split_rows(rows, eval_fraction, max_per_label)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict[str, int]] = {}
    for name, split in splits.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in split)
        counts: dict[str, int] = defaultdict(int)
        for row in split:
            counts[row["label"]] += 1
        summary[name] = dict(sorted(counts.items()))
    return summary
