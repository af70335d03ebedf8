"""Inference throughput of text classification and tagging: texts per second, batched, on this machine.

    python benchmarks/text_speed.py --model runs/cls/best --data data/emoji_text/eval.jsonl
    python benchmarks/text_speed.py --model runs/ner/best --data data/ner/eval.jsonl --tag
    python benchmarks/text_speed.py --model smollm2-135m-instruct --data data/emoji_text/eval.jsonl --zero-shot

Reads the `text` column of --data (the first --n rows), warms up on one batch, then times the rest.
`--zero-shot` scores the data's own labels by likelihood (`multimodal classify --labels`).
`--random-arch roberta-base` times a family whose weights are not on this machine: RoBERTa-base's architecture
(12 layers, width 768, 125 M parameters) with random weights and SmolLM2's byte-level BPE tokenizer, behind the
same mean-pooled classification head. Speed only: its predictions mean nothing.

    python benchmarks/text_speed.py --random-arch roberta-base --data ~/.cache/multimodal/data/rotten_tomatoes/test.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def random_roberta(directory: Path):
    """A classifier on RoBERTa-base's architecture with random weights (no RoBERTa weights exist offline)."""
    from transformers import AutoTokenizer, RobertaConfig

    import multimodal as mm
    from multimodal.backbone import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("smollm2-135m-instruct"))  # the tokenizer only, no weights
    tokenizer.save_pretrained(directory)
    RobertaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id).save_pretrained(directory)  # the defaults are RoBERTa-base's
    return mm.build(ROOT / "configs/classify_minilm.yaml", [f"backbone.name={directory}", "backbone.pretrained=false",
                                                            'heads.classify.labels=["negative","positive"]'])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint dir (or, with --zero-shot, a causal LM name)")
    p.add_argument("--random-arch", choices=["roberta-base"], help="time this architecture with random weights")
    p.add_argument("--data", required=True, type=Path, help="JSONL with `text` (and `label` for --zero-shot)")
    p.add_argument("--n", type=int, default=256, help="texts timed")
    p.add_argument("--batch-size", type=int, default=16)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--tag", action="store_true", help="time model.tag instead of model.classify")
    mode.add_argument("--zero-shot", action="store_true", help="time label likelihood over the data's labels")
    args = p.parse_args()
    if (args.model is None) == (args.random_arch is None):
        p.error("give --model or --random-arch")

    import torch

    from multimodal.resolve import load

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [r["text"] for r in rows][: args.n + args.batch_size]
    labels = sorted({r["label"] for r in rows}) if args.zero_shot else None
    if args.random_arch:
        with tempfile.TemporaryDirectory() as tmp:  # the built model holds its weights; the dir is only read once
            model = random_roberta(Path(tmp))
    else:
        model = load(args.model, backbone_ok=True)
    run = (lambda batch: model.tag(batch, batch_size=args.batch_size)) if args.tag else (
        lambda batch: model.classify(batch, labels=labels, batch_size=args.batch_size))
    run(texts[: args.batch_size])  # warm-up
    timed = texts[args.batch_size :] or texts
    start = time.perf_counter()
    run(timed)
    seconds = time.perf_counter() - start
    what = "tag" if args.tag else "zero-shot classify" if args.zero_shot else "classify"
    print(f"{what}: {len(timed)} texts in {seconds:.1f} s = {len(timed) / seconds:.1f} texts/s "
          f"(batch {args.batch_size}, {torch.get_num_threads()} threads, mean {sum(map(len, timed)) / len(timed):.0f} chars)")


if __name__ == "__main__":
    main()
