"""Accuracy against the number of labelled examples: the transfer curve of the three families, with and without
pretraining, beside zero-shot labels.

For each training-set size n (a seeded random sample of the corpus's training split; `all` = the whole split)
the two trained methods run the library's own training loop (configs/classify.yaml, configs/classify_minilm.yaml)
for min(--max-steps, max(--min-steps, --epochs * n / batch)) steps and are scored on the first --eval-n rows of
the evaluation split. The label set is the corpus's (all labels), so a sample that misses a label still trains.
Zero-shot scores each label's likelihood under SmolLM2-Instruct after a prompt listing the labels: it uses no
examples, so it is one flat line. `in-context` (optional) puts min(n, --max-shots) of the sample in the prompt.
Methods: `smollm2-lora` (GPT family), `minilm` (BERT family), `roberta` (RoBERTa family, --roberta names the hub
model or dir; skipped with its error where the weights are not on this machine), and `minilm-scratch`: MiniLM's
architecture from random weights, trained the same way, so the gap to `minilm` is what pretraining gives.
With --score-split test the points are scored on test.jsonl of --data (the final weights: nothing is chosen on it).

    python benchmarks/few_shot.py --corpus emoji                       # the full benchmark (long on a CPU)
    python benchmarks/few_shot.py --data ~/.cache/multimodal/data/rotten_tomatoes --score-split test \
        --sizes 10,100,1000,all --methods minilm,minilm-scratch,zero-shot --max-steps 600 --eval-n 0 \
        --out benchmarks/results/transfer_curve_rt.png                # the transfer curve on film critics
    python benchmarks/few_shot.py --corpus emoji --sizes 8 --max-steps 2 --eval-n 16   # a smoke run, ~1 min

Prints a table, writes benchmarks/results/few_shot.png and few_shot.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TRAINED = {"smollm2-lora": "configs/classify.yaml", "minilm": "configs/classify_minilm.yaml",
           "minilm-scratch": "configs/classify_minilm.yaml", "roberta": "configs/classify_minilm.yaml"}
METHODS = (*TRAINED, "zero-shot", "in-context")
DEFAULT_METHODS = "smollm2-lora,minilm,zero-shot"
ROBERTA_DEFAULT = "FacebookAI/roberta-base"


def method_overrides(method: str, args) -> list[str]:
    """What turns a method's config into that method: random weights, or another backbone of the same kind."""
    if method == "minilm-scratch":
        return ["backbone.pretrained=false"]
    if method == "roberta":
        return [f"backbone.name={args.roberta}"]
    return []


def parse_caps(items: list[str]) -> dict[str, int]:
    """--max-n METHOD=N items -> {METHOD: N}; a malformed item or an unknown method is an error naming it."""
    caps = {}
    for item in items:
        method, _, n = item.partition("=")
        if method not in METHODS or not n.isdigit():
            raise ValueError(f"--max-n takes METHOD=N with METHOD one of {', '.join(METHODS)}, got {item!r}")
        caps[method] = int(n)
    return caps


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def corpus_splits(corpus: str, data: Path | None, work: Path, split: str = "eval") -> tuple[list[dict], list[dict]]:
    """(training rows, scored rows): the scored rows from eval.jsonl, or test.jsonl with split="test"."""
    if data is None:
        from tasks.corpora.text_classes import generate_text_corpus

        data = work / f"{corpus}_data"
        generate_text_corpus(corpus, data, max_per_label=300)
    for name in ("train.jsonl", f"{split}.jsonl"):
        if not (data / name).is_file():
            raise SystemExit(f"few_shot: {data / name} is missing")
    return read_jsonl(data / "train.jsonl"), read_jsonl(data / f"{split}.jsonl")


def train_and_score(method: str, sample: list[dict], eval_path: Path, labels: list[str], args, work: Path) -> dict:
    from multimodal.config import load_config
    from multimodal.train import train

    config = load_config(ROOT / TRAINED[method])
    batch = config.training.batch_size
    steps = min(args.max_steps, max(args.min_steps, math.ceil(args.epochs * len(sample) / batch)))
    overrides = [f"heads.classify.labels={json.dumps(labels)}", f"training.max_steps={steps}", "training.epochs=0",
                 f"training.warmup_steps={min(config.training.warmup_steps, max(steps // 10, 0))}",
                 "training.eval_every=0", "training.save_every=0", "training.early_stop_patience=0",
                 f"data.eval_max_examples={args.eval_n}",
                 f"training.seed={args.seed}", f"training.batch_size={min(batch, len(sample))}",
                 *method_overrides(method, args)]
    config = load_config(ROOT / TRAINED[method], overrides)
    run = work / f"{method}_{len(sample)}"
    train_path = write_jsonl(work / f"train_{len(sample)}.jsonl", sample)
    start = time.perf_counter()
    summary = train(config, run, train_data=train_path, eval_data=eval_path, progress=False)
    return {"accuracy": summary["eval"]["accuracy"], "macro_f1": summary["eval"]["macro_f1"], "steps": steps,
            "seconds": time.perf_counter() - start}


def likelihood_score(model, sample: list[dict], evaluation: list[dict], labels: list[str], shots: int) -> dict:
    from tasks.metrics import accuracy, macro_f1

    chosen = [(r["text"], r["label"]) for r in sample[:shots]]
    start = time.perf_counter()
    predictions = model.classify([r["text"] for r in evaluation], labels=labels, shots=chosen, batch_size=8)
    gold, predicted = [r["label"] for r in evaluation], [p.label for p in predictions]
    return {"accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted), "steps": 0,
            "seconds": time.perf_counter() - start}


def plot(results: list[dict], sizes: list[int], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(r["method"] for r in results):
        points = sorted((r["n"], r["accuracy"]) for r in results if r["method"] == method)
        if method == "zero-shot":
            ax.axhline(points[0][1], linestyle="--", color="gray", label="zero-shot (SmolLM2 labels)")
        else:
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel("accuracy (held-out)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", choices=["emoji", "fortunes"], default="emoji")
    p.add_argument("--data", type=Path, help="a dir with train.jsonl / eval.jsonl (default: generate the corpus)")
    p.add_argument("--sizes", default="8,32,128,512,all", help="comma-separated training-set sizes; `all` = every row")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated, of {', '.join(METHODS)}")
    p.add_argument("--max-steps", type=int, default=300, help="optimizer steps per trained run at most")
    p.add_argument("--min-steps", type=int, default=20, help="optimizer steps per trained run at least")
    p.add_argument("--epochs", type=float, default=10.0, help="passes over the sample, within the step bounds")
    p.add_argument("--eval-n", type=int, default=300, help="scored rows (the first of the split; 0 = all)")
    p.add_argument("--score-split", choices=["eval", "test"], default="eval", help="the split of --data scored")
    p.add_argument("--roberta", default=ROBERTA_DEFAULT, help="the RoBERTa-family model of `roberta` (hub name or dir)")
    p.add_argument("--max-shots", type=int, default=8, help="in-context: examples in the prompt at most")
    p.add_argument("--max-n", action="append", default=[], metavar="METHOD=N",
                   help="train METHOD only on sizes up to N (a slow method on a CPU); repeatable")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, help="keep the runs here (default: a temporary dir)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/few_shot.png")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown method(s) {unknown}; valid: {', '.join(METHODS)}")
    try:
        caps = parse_caps(args.max_n)
    except ValueError as error:
        p.error(str(error))

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.score_split == "test" and args.data is None:
            p.error("--score-split test needs --data (a folder with test.jsonl)")
        train_rows, eval_rows = corpus_splits(args.corpus, args.data, work, args.score_split)
        labels = sorted({r["label"] for r in train_rows + eval_rows})
        evaluation = eval_rows[: args.eval_n] if args.eval_n > 0 else eval_rows
        eval_path = write_jsonl(work / "eval.jsonl", evaluation)
        sizes = sorted({len(train_rows) if s.strip() == "all" else min(int(s), len(train_rows)) for s in args.sizes.split(",")})
        shuffled = random.Random(args.seed).sample(train_rows, len(train_rows))  # nested samples: 8 within 32 within ...
        print(f"{args.data or args.corpus}: {len(train_rows)} training rows, {len(evaluation)} {args.score_split} rows, {len(labels)} labels; sizes {sizes}")
        results: list[dict] = []
        lm = None
        for method in methods:
            for n in sizes if method != "zero-shot" else sizes[:1]:
                if n > caps.get(method, n):
                    continue
                sample = shuffled[:n]
                if method in TRAINED:
                    try:
                        scores = train_and_score(method, sample, eval_path, labels, args, work)
                    except OSError as error:  # weights not on this machine (offline): say so, go on
                        print(f"  {method:<13} skipped: {str(error).splitlines()[0]}", flush=True)
                        break
                else:
                    if lm is None:
                        from multimodal.classify import ZERO_SHOT_DEFAULT
                        from multimodal.resolve import load

                        lm = load(ZERO_SHOT_DEFAULT, backbone_ok=True)
                    shots = 0 if method == "zero-shot" else min(n, args.max_shots)
                    scores = likelihood_score(lm, sample, evaluation, labels, shots)
                results.append({"method": method, "n": n if method != "zero-shot" else 0, **scores})
                r = results[-1]
                print(f"  {method:<13} n={r['n']:<5} accuracy {r['accuracy']:.3f}  macro-F1 {r['macro_f1']:.3f}  "
                      f"({r['steps']} steps, {r['seconds']:.0f} s)", flush=True)

    print(f"\n{'method':<13} " + " ".join(f"{'n=' + str(n):>8}" for n in sizes))
    for method in dict.fromkeys(r["method"] for r in results):
        by_n = {r["n"]: r["accuracy"] for r in results if r["method"] == method}
        cells = [by_n.get(0 if method == "zero-shot" else n) for n in sizes]
        print(f"{method:<13} " + " ".join(f"{c:>8.3f}" if c is not None else f"{'-':>8}" for c in cells))
    name = args.data.name if args.data else args.corpus
    plot(results, sizes, args.out, f"{name}: accuracy vs labelled examples ({len(evaluation)} {args.score_split} texts)")
    args.out.with_suffix(".json").write_text(json.dumps({"corpus": str(args.data or args.corpus), "labels": labels, "eval_n": len(evaluation),
                                                         "args": {k: str(v) for k, v in vars(args).items()},
                                                         "results": results}, indent=2))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
