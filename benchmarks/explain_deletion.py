"""Do the explanations mean something? A deletion test of the word attributions of a text classifier.

    python benchmarks/explain_deletion.py [--model sentiment-en] [--n 100] [--draws 5] [--steps 32] [--json F]

For N snippets of the Rotten Tomatoes test split (unseen films; a seeded sample), the model's prediction is
explained (`model.explain`: integrated gradients to the predicted label's probability). Then, for k = 1, 2, 3,
the k words with the largest attributions are removed from the text, and, separately, k words drawn at random
(`--draws` draws per text), and the text is classified again. Reported for each k: the mean drop in the
predicted label's probability after removing the top-k words, after removing k random words, and the paired
difference, each with a 95 % percentile bootstrap interval over texts; and the share of texts whose label
flips. Both removals draw from the same words: those with a letter or digit (punctuation is never removed),
among the words the model saw; texts with fewer than 4 such words are left out. Also the time per explanation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
KS = (1, 2, 3)
MIN_WORDS = max(KS) + 1  # a text keeps at least one candidate word after the largest removal
BOOTSTRAP_RESAMPLES = 10_000


def without(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with the character spans removed, spaces collapsed."""
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    return " ".join(text.split())


def interval(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95 % percentile bootstrap interval over the values (texts)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (BOOTSTRAP_RESAMPLES, len(values)))].mean(1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sentiment-en", help="shipped model name or checkpoint dir (a classify head)")
    p.add_argument("--n", type=int, default=100, help="test snippets (default: %(default)s)")
    p.add_argument("--draws", type=int, default=5, help="random removals per text and k (default: %(default)s)")
    p.add_argument("--steps", type=int, default=None, help="integration steps (default: multimodal.explain's)")
    p.add_argument("--batch-size", type=int, default=4, help="texts explained together (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args()

    import torch

    import multimodal as mm
    from tasks.corpora.reviews import rotten_tomatoes

    test = rotten_tomatoes()["test"]
    rng = random.Random(args.seed)
    texts = [test[i]["text"] for i in rng.sample(range(len(test)), min(args.n, len(test)))]
    model = mm.load(args.model)
    start = time.perf_counter()
    model.classify(texts, batch_size=32)
    classify_s = (time.perf_counter() - start) / len(texts)
    start = time.perf_counter()
    explanations = model.explain(texts, task="classify", steps=args.steps, batch_size=args.batch_size)
    explain_s = (time.perf_counter() - start) / len(texts)

    kept, variants = [], []  # variants: (text index, kind, k, text without the words)
    for e in explanations:
        words = [w for w in e.words if any(c.isalnum() for c in w.word)]
        if len(words) < MIN_WORDS:
            continue
        kept.append(e)
        ranked = sorted(words, key=lambda w: -w.attribution)
        for k in KS:
            variants.append((len(kept) - 1, "top", k, without(e.text, [(w.start, w.end) for w in ranked[:k]])))
            for _ in range(args.draws):
                drawn = rng.sample(words, k)
                variants.append((len(kept) - 1, "random", k, without(e.text, [(w.start, w.end) for w in drawn])))
    after = model.classify([v[3] for v in variants], batch_size=32)
    drops = {(kind, k): [[] for _ in kept] for kind in ("top", "random") for k in KS}
    flips = {(kind, k): [[] for _ in kept] for kind in ("top", "random") for k in KS}
    for (i, kind, k, _), prediction in zip(variants, after):
        drops[kind, k][i].append(kept[i].score - prediction.probabilities[kept[i].label])
        flips[kind, k][i].append(prediction.label != kept[i].label)

    deltas = np.array([abs(e.convergence_delta) for e in explanations])
    print(f"{args.model}: {len(kept)} of {len(texts)} Rotten Tomatoes test snippets (>= {MIN_WORDS} words), "
          f"{args.draws} random draws per text and k; torch threads {torch.get_num_threads()}")
    print(f"time per text: explanation {explain_s:.3f} s (batch {args.batch_size}), classification alone "
          f"{classify_s * 1000:.1f} ms; |convergence delta| median {np.median(deltas):.1e}, max {deltas.max():.1e}")
    print("mean drop in P(predicted label) when words are removed [95 % bootstrap interval over texts]; label flips")
    print(f"{'k':<3} {'top-k attributed':<28} {'k random':<28} {'top - random':<28} flips top / random")
    figures = {"model": args.model, "n_texts": len(kept), "n_sampled": len(texts), "draws": args.draws,
               "steps": args.steps, "explain_s_per_text": explain_s, "classify_s_per_text": classify_s,
               "torch_threads": torch.get_num_threads(), "convergence_delta_abs_median": float(np.median(deltas)),
               "convergence_delta_abs_max": float(deltas.max()), "k": {}}
    for k in KS:
        top = np.array([np.mean(d) for d in drops["top", k]])
        rand = np.array([np.mean(d) for d in drops["random", k]])  # each text's mean over its draws
        row = {"top": interval(top), "random": interval(rand), "difference": interval(top - rand),
               "flips_top": float(np.mean([np.mean(f) for f in flips["top", k]])),
               "flips_random": float(np.mean([np.mean(f) for f in flips["random", k]]))}
        figures["k"][k] = row
        cells = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in (row["top"], row["random"], row["difference"])]
        print(f"{k:<3} {cells[0]:<28} {cells[1]:<28} {cells[2]:<28} {row['flips_top']:.2f} / {row['flips_random']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
