"""A sentiment model against classic baselines on the same test split, side by side, with 95 % intervals.

    python benchmarks/sentiment_baselines.py --data ~/.cache/multimodal/data/rotten_tomatoes [--model sentiment-en]
    python benchmarks/sentiment_baselines.py --data ~/.cache/multimodal/data/amazon --labels positive=great,negative=other

Rows: always the training split's majority label; VADER's compound score (no training; positive at >= 0,
when `vaderSentiment` is installed); TF-IDF word 1-2-grams + logistic regression (scikit-learn, C chosen on
the eval split); the model (default: the shipped `sentiment-en`). Accuracy and macro-F1 on test.jsonl, each with
its bootstrap interval; --json writes them. `--labels positive=A,negative=B` names the data's own labels for the
two that VADER and a positive / negative model give (Amazon's great / other): such a model is then scored as it
transfers, untrained on that data; a model trained on the data's own labels is scored as it is. --model repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
C_GRID = (0.3, 1.0, 3.0, 10.0)


def read(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def tfidf_predictions(train, evaluation, test) -> tuple[list[str], float]:
    """Predictions on test of TF-IDF + logistic regression whose C scored best on the eval split; and that C."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform(train[0])
    fits = {c: LogisticRegression(C=c, max_iter=2000).fit(x_train, train[1]) for c in C_GRID}
    x_eval = vectorizer.transform(evaluation[0])
    best = max(C_GRID, key=lambda c: (fits[c].predict(x_eval) == evaluation[1]).mean())
    return list(fits[best].predict(vectorizer.transform(test[0]))), best


def vader_predictions(texts: list[str]) -> list[str] | None:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return None
    analyzer = SentimentIntensityAnalyzer()
    return ["positive" if analyzer.polarity_scores(t)["compound"] >= 0 else "negative" for t in texts]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="folder with train.jsonl, eval.jsonl, test.jsonl "
                   "(multimodal data sentiment --out DIR)")
    p.add_argument("--model", action="append", help="shipped model name or checkpoint dir (repeatable; "
                   "default: sentiment-en)")
    p.add_argument("--labels", default="positive=positive,negative=negative",
                   help="the data's labels for positive and negative (default: %(default)s)")
    p.add_argument("--json", type=Path, help="write the table here")
    args = p.parse_args()
    try:
        mapping = dict(item.split("=", 1) for item in args.labels.split(","))
        assert set(mapping) == {"positive", "negative"}
    except (ValueError, AssertionError):
        p.error(f"--labels takes positive=A,negative=B, got {args.labels!r}")

    from collections import Counter

    import multimodal as mm
    from tasks.metrics import METRICS, bootstrap_interval

    train, evaluation, test = (read(args.data / f"{s}.jsonl") for s in ("train", "eval", "test"))
    rows = {}
    majority = Counter(train[1]).most_common(1)[0][0]
    rows["majority label"] = [majority] * len(test[1])
    vader = vader_predictions(test[0])
    if vader is not None:
        rows["VADER (no training)"] = [mapping[label] for label in vader]
    tfidf, c = tfidf_predictions(train, evaluation, test)
    rows[f"TF-IDF 1-2-grams + logistic regression (C={c})"] = tfidf
    speeds = {}
    for name in args.model or ["sentiment-en"]:
        model = mm.load(name)
        start = time.perf_counter()
        rows[name] = [mapping.get(p.label, p.label) for p in model.classify(test[0], batch_size=32)]
        speeds[name] = len(test[1]) / (time.perf_counter() - start)
    table = []
    print(f"test split: {len(test[1])} texts of {args.data}; inference " +
          ", ".join(f"{name} {speed:.0f} texts/s" for name, speed in speeds.items()))
    print(f"{'method':<52} {'accuracy [95 % interval]':<28} macro-F1")
    for name, predictions in rows.items():
        record = {"method": name} | ({"texts_per_s": speeds[name]} if name in speeds else {})
        for metric in ("accuracy", "macro_f1"):
            low, high = bootstrap_interval(metric, test[1], predictions)
            record.update({metric: METRICS[metric](test[1], predictions), f"{metric}_low": low, f"{metric}_high": high})
        table.append(record)
        print(f"{name:<52} {record['accuracy']:.3f} [{record['accuracy_low']:.3f}, {record['accuracy_high']:.3f}]"
              f"       {record['macro_f1']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
