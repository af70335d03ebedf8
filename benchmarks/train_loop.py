"""Training throughput of the library's loop against a bare forward/backward loop, and data loading.

Same model, same batches, same optimizer, in one run (the machine is noisy; compare within a run):
  data      the DataLoader alone (decode + preprocess + tokenize in `--workers` processes), samples/s
  bare      a plain `loss.backward(); opt.step()` loop over pre-collated batches in memory
  ours      `multimodal.train.train` on the same data (progress bar, logging, accumulation, clipping)
The loop's overhead is ours/bare - 1 on the step time (goal <= 5 %).

    .venv/bin/python benchmarks/train_loop.py configs/tiny.yaml --steps 30
    .venv/bin/python benchmarks/train_loop.py configs/default.yaml --steps 10 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multimodal.build import build  # noqa: E402
from peak_memory import peak_rss_gb  # noqa: E402
from multimodal.config import load_config  # noqa: E402
from multimodal.data import Collator, LengthGroupedBatches, TaskDataset, load_rows  # noqa: E402
from multimodal.processor import Processor  # noqa: E402
from multimodal.train import train  # noqa: E402
from multimodal.trainable import parameter_groups  # noqa: E402
from tasks import get_task  # noqa: E402
from tests.multimodal.corpora import image_folder  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--image-size", type=int, default=224, help="side of the generated images")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    overrides = [f"training.batch_size={args.batch_size}", f"data.num_workers={args.workers}", "data.task=caption",
                 "training.log_every=5", "training.save_every=0", "training.eval_every=0", "training.warmup_steps=0",
                 f"training.max_steps={args.steps}"]
    config = load_config(args.config, overrides)
    data = image_folder(tmp / "images", n=args.batch_size * 8, size=args.image_size)
    task = get_task("caption")

    # data loading alone
    model = build(config)
    rows = load_rows(data, task)
    sampler = LengthGroupedBatches(rows["length"], args.batch_size, seed=0)
    loader = torch.utils.data.DataLoader(TaskDataset(rows, task), batch_sampler=sampler,
                                         collate_fn=Collator(Processor(model)), num_workers=args.workers)
    t = time.perf_counter()
    batches = [b for b in loader]
    data_rate = len(rows) / (time.perf_counter() - t)

    # bare loop on the same batches, in memory
    for b in batches:
        b.pop("references")
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01))
    model.train()
    times = []
    for i in range(args.steps + 1):
        batch = batches[i % len(batches)]
        t = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([q for q in model.parameters() if q.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:  # the first step warms up
            times.append(time.perf_counter() - t)
    bare_step = sum(times) / len(times)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)
    del model, optimizer, batches

    # our loop
    train(config, tmp / "run", train_data=data, progress=False)
    logged = [json.loads(line) for line in (tmp / "run/metrics.jsonl").read_text().splitlines()]
    windows = [r for r in logged if "samples_per_s" in r][1:]  # drop the warm-up window
    ours_rate = sum(r["samples_per_s"] for r in windows) / len(windows)
    ours_tokens = sum(r["tokens_per_s"] for r in windows) / len(windows)
    ours_step = args.batch_size / ours_rate
    peak = peak_rss_gb()
    print(f"config {args.config}  batch {args.batch_size}  images {args.image_size}px  workers {args.workers}  "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'':<22}{'samples/s':>10}{'tokens/s':>10}{'s/step':>9}")
    print(f"{'data loading alone':<22}{data_rate:>10.1f}")
    print(f"{'bare fwd/bwd loop':<22}{args.batch_size / bare_step:>10.1f}{tokens / bare_step:>10.0f}{bare_step:>9.3f}")
    print(f"{'multimodal.train':<22}{ours_rate:>10.1f}{ours_tokens:>10.0f}{ours_step:>9.3f}")
    print(f"loop overhead (ours/bare - 1): {ours_step / bare_step - 1:+.1%};  data/model throughput: "
          f"{data_rate / (args.batch_size / bare_step):.1f}x;  peak RSS (whole benchmark): {peak:.2f} GB")


if __name__ == "__main__":
    main()
