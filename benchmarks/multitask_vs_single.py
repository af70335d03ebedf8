"""The multi-task demo model against one single-task model per task at equal per-task budget (issue 7).

1. The demo's corpora (`runs/synthetic/data`, written by the demo when absent) and its config (configs/multitask_synthetic.yaml).
2. The multi-task model: trained into OUTPUT/multi, or an already trained run reused with `--multi DIR`
   (its saved config, steps and seed are then the reference).
3. One model per task of the mixture, trained into OUTPUT/<task> from the multi-task run's own saved config
   with `data.mixture` cut to that task, and nothing else changed but the length: each gets exactly the
   micro-batches of its task that the mixture drew (`mixture.draw_task` over the run's steps and micro-batches,
   the same seed), so ceil(draws / grad_accum_steps) steps; warm-up and evaluation interval scaled by the
   same factor. Batch size, learning rates, cosine shape, seed, head labels and architecture (hence the
   initial weights) are the multi-task run's. The batch order of a task differs: a mixture seeds task i's
   order with seed + i, a run of one task with seed.
4. Every model scored on the same held-out sets with the demo's own metrics (`demo.heldout_metrics`: same n,
   same decoder), the checkpoint the demo would load (best/, else last/). Relative difference =
   (multi - single) / |single|, sign-flipped for error rates, so negative always means the multi-task model is
   worse; "within 10 %" = not worse by more than 10 % (the goal of issue 7); "n/a" when single is 0.

    python benchmarks/multitask_vs_single.py --multi runs/synthetic     # reuse `multimodal demo --config configs/multitask_synthetic.yaml --output runs/synthetic`
    python benchmarks/multitask_vs_single.py                            # train the multi-task run as well
    python benchmarks/multitask_vs_single.py --max-steps 30 --n 16      # the whole comparison scaled down

Finished runs in OUTPUT are reused (a run cut short resumes), so a second call only prints the table.
Prints the table with each run's training wall time; writes benchmarks/results/multitask_vs_single.json.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_JSON = ROOT / "benchmarks/results/multitask_vs_single.json"
GOAL = 0.10  # the multi-task model may be at most 10 % (relative) worse than the single-task one
LOWER_IS_BETTER = {"WER", "CER"}  # metric names of demo.heldout_metrics' rows; every other one is higher-is-better
TIMING_FILE = "benchmark_timing.json"  # the wall time of a run trained here, so a reused run still reports it


# ---------------------------------------------------------------------------------------------------------
# Equal per-task budget


def task_budget(config) -> dict[str, int]:
    """Mixture entry name -> the micro-batches of that task the mixture draws in `config`'s training run."""
    import numpy as np

    from multimodal.mixture import check_mixture, draw_task

    names = check_mixture(config.data.mixture)
    weights = np.array([e.weight for e in config.data.mixture], dtype=np.float64)
    probabilities = weights / weights.sum()  # as multimodal.mixture.Mixture
    tc = config.training
    drawn = [draw_task(probabilities, tc.seed, step, k)
             for step in range(tc.max_steps) for k in range(tc.grad_accum_steps)]
    counts = np.bincount(drawn, minlength=len(names))
    return {name: int(c) for name, c in zip(names, counts)}


def single_task_config(config, name: str, micro_batches: int):
    """`config` with its mixture cut to the entry `name`, trained for `micro_batches` micro-batches: steps,
    warm-up and evaluation interval scaled by the same factor; everything else unchanged."""
    if micro_batches < 1:
        raise ValueError(f"the mixture drew no '{name}' micro-batch in {config.training.max_steps} steps: "
                         "raise --max-steps")
    single = copy.deepcopy(config)
    single.data.mixture = [e for e in single.data.mixture if (e.name or e.task) == name]
    tc = single.training
    steps = math.ceil(micro_batches / tc.grad_accum_steps)
    scale = steps / config.training.max_steps
    tc.warmup_steps = round(tc.warmup_steps * scale)
    tc.eval_every = max(1, round(tc.eval_every * scale)) if tc.eval_every else 0
    tc.max_steps = steps
    return single


# ---------------------------------------------------------------------------------------------------------
# Runs


def finished_config_path(run_dir: Path) -> Path:
    """The saved config of the finished run in `run_dir`."""
    from multimodal.checkpoint import recover
    from multimodal.demo import run_state

    state = run_state(run_dir)
    if state is None or state[0] < state[1]:
        where = "no run" if state is None else f"a run at step {state[0]} of {state[1]}"
        raise ValueError(f"'{run_dir}' holds {where}; --multi needs a finished multi-task run (e.g. runs/synthetic)")
    return recover(run_dir / "last") / "config.yaml"


def train_run(config, output: Path) -> dict[str, Any]:
    """Train `config` into `output`, or reuse/resume the same run there; its steps and training wall time."""
    from multimodal.checkpoint import recover
    from multimodal.config import load_config, to_dict
    from multimodal.demo import train_or_reuse

    saved = recover(output / "last") / "config.yaml"
    resumed = saved.is_file()  # a run is there: finished (reused) or cut short (resumed)
    if resumed:
        before = load_config(saved)
        for part in ("training", "data"):
            if to_dict(getattr(before, part)) != to_dict(getattr(config, part)):
                raise ValueError(f"'{output}' holds a run with another {part} config; delete it to retrain")
    start = time.perf_counter()
    trained = train_or_reuse(config, output, progress=True)
    timing = output / TIMING_FILE
    if trained:
        timing.write_text(json.dumps({"wall_s": time.perf_counter() - start, "resumed": resumed}))
    return {"dir": str(output), "steps": config.training.max_steps, **run_timing(output, config)}


def run_timing(run_dir: Path, config) -> dict[str, Any]:
    """{"wall_s", "timed"}: measured when this script trained the run, else the training steps' time summed
    from metrics.jsonl (evaluation and saving left out)."""
    timing = run_dir / TIMING_FILE
    if timing.is_file():
        saved = json.loads(timing.read_text())
        return {"wall_s": saved["wall_s"], "timed": "resumed here" if saved["resumed"] else "here"}
    tc, seconds, previous = config.training, 0.0, 0
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("samples_per_s"):
            seconds += (record["step"] - previous) * tc.grad_accum_steps * tc.batch_size / record["samples_per_s"]
            previous = record["step"]
    return {"wall_s": seconds, "timed": "from metrics.jsonl"}


def score_run(run_dir: Path, data_dir: Path, n: int, decoder: str) -> list[dict[str, Any]]:
    """The demo's held-out table for the checkpoint the demo would load (cached next to the run)."""
    import multimodal as mm
    from multimodal.checkpoint import recover
    from multimodal.demo import DATA_SIZES, cached_metrics

    checkpoint = next(d for d in (recover(run_dir / "best"), recover(run_dir / "last"))
                      if (d / "checkpoint.json").is_file())
    sizes = dataclasses.replace(DATA_SIZES["full"], heldout_examples=n)  # the cache's key: n examples a set
    model = mm.load(checkpoint)
    model.config.training.eval_decoder = decoder  # every model transcribes with the same decoder
    return cached_metrics(model, checkpoint, data_dir, sizes)


# ---------------------------------------------------------------------------------------------------------
# Comparison


def relative_difference(metric: str, single: float, multi: float) -> float | None:
    """(multi - single) / |single|, negated for error rates: negative = the multi-task model is worse.
    None when single is 0."""
    if single == 0:
        return None
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return sign * (multi - single) / abs(single)


def within_goal(metric: str, single: float, multi: float) -> bool:
    """The multi-task model is not worse than the single-task one by more than GOAL (relative); with
    single == 0, not worse at all."""
    difference = relative_difference(metric, single, multi)
    if difference is None:
        return (multi <= single) if metric in LOWER_IS_BETTER else (multi >= single)
    return difference >= -GOAL - 1e-12


def compare(multi_table: list[dict[str, Any]], single_table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, held-out set, metric) of the multi-task table, beside the single-task value."""
    single = {(r["task"], r["set"], r["metric"]): r["value"] for r in single_table}
    rows = []
    for r in multi_table:
        s = single[(r["task"], r["set"], r["metric"])]
        rows.append({"task": r["task"], "set": r["set"], "metric": r["metric"],
                     "higher_is_better": r["metric"] not in LOWER_IS_BETTER, "single": s, "multi": r["value"],
                     "relative_difference": relative_difference(r["metric"], s, r["value"]),
                     "within_10pct": within_goal(r["metric"], s, r["value"])})
    return rows


def format_comparison(rows: list[dict[str, Any]]) -> str:
    def value(v: float, metric: str) -> str:
        return f"{v:.3f}" if metric in ("CIDEr-D", "BLEU-4") else f"{v:.1%}"

    def difference(d: float | None) -> str:
        return "n/a" if d is None else f"{d:+.1%} ({'worse' if d < 0 else 'better' if d > 0 else 'equal'})"

    cells = [("task", "held-out set", "metric", "single-task", "multi-task", "multi vs single", "within 10 %")]
    cells += [(r["task"], r["set"], r["metric"] + ("" if r["higher_is_better"] else " (lower is better)"),
               value(r["single"], r["metric"]), value(r["multi"], r["metric"]),
               difference(r["relative_difference"]), "yes" if r["within_10pct"] else "no") for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


# ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides (without --multi)")
    p.add_argument("--config", default="configs/multitask_synthetic.yaml", help="multi-task config (default: %(default)s)")
    p.add_argument("--multi", type=Path, help="a finished multi-task run to reuse (e.g. runs/synthetic), not trained here")
    p.add_argument("--max-steps", type=int, help="the multi-task run's optimizer steps; the single-task runs follow")
    p.add_argument("--data", choices=["full", "small"], default="full", help="demo corpus sizes (default: %(default)s)")
    p.add_argument("--data-dir", type=Path, help="demo corpora (default: runs/synthetic/data; --data small: OUTPUT/data)")
    p.add_argument("--n", type=int, help="examples per caption/speech held-out set (default: the demo's, 64 for "
                   "full data; 0 = all); classification scores every eval text")
    p.add_argument("--output-dir", type=Path, default=Path("runs/multitask_vs_single"), help="default: %(default)s")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file (default: %(default)s)")
    args = p.parse_args(argv)

    import datasets

    from multimodal.demo import DATA_SIZES, demo_config, make_data

    datasets.disable_progress_bars()  # the training bar is the one to watch
    sizes = DATA_SIZES[args.data]
    if args.data_dir is None:  # small corpora never overwrite the demo's own
        args.data_dir = Path("runs/synthetic/data") if args.data == "full" else args.output_dir / "data"
    n = sizes.heldout_examples if args.n is None else args.n
    print(f"1. demo corpora in {args.data_dir}")
    make_data(args.data_dir, sizes)

    if args.multi is not None:
        if args.overrides:
            raise ValueError("--multi reuses a run's own config: config overrides do not apply")
        multi_dir, multi_config_path = args.multi, finished_config_path(args.multi)
        config = demo_config(multi_config_path, args.data_dir, None)
        if args.max_steps is not None and args.max_steps != config.training.max_steps:
            raise ValueError(f"--multi {args.multi} ran {config.training.max_steps} steps, "
                             f"not --max-steps {args.max_steps}")
        print(f"2. the multi-task run {multi_dir} ({config.training.max_steps} steps), reused")
        multi = {"dir": str(multi_dir), "steps": config.training.max_steps, **run_timing(multi_dir, config)}
    else:
        config = demo_config(args.config, args.data_dir, args.max_steps, args.overrides)
        multi_dir = args.output_dir / "multi"
        print(f"2. the multi-task run: {args.config}, {config.training.max_steps} steps -> {multi_dir}")
        multi = train_run(config, multi_dir)
        config = demo_config(finished_config_path(multi_dir), args.data_dir, None)  # head labels as trained

    budget = task_budget(config)
    tc = config.training
    print(f"3. single-task runs at equal per-task budget ({tc.max_steps} steps x {tc.grad_accum_steps} micro-batches "
          f"of {tc.batch_size}, seed {tc.seed}): " + ", ".join(f"{k} {v}" for k, v in budget.items()))
    singles = {}
    for name, micro_batches in budget.items():
        single = single_task_config(config, name, micro_batches)
        print(f"   {name}: {single.training.max_steps} steps, warm-up {single.training.warmup_steps}")
        singles[name] = {"micro_batches_drawn": micro_batches,
                         "micro_batches": single.training.max_steps * tc.grad_accum_steps,
                         "warmup_steps": single.training.warmup_steps, **train_run(single, args.output_dir / name)}

    decoder = tc.eval_decoder
    print(f"4. held-out metrics ({n or 'all'} examples a set, {decoder} decoder for speech)")
    start = time.perf_counter()
    multi_table = score_run(multi_dir, args.data_dir, n, decoder)
    single_table = [row for run in singles.values() for row in score_run(Path(run["dir"]), args.data_dir, n, decoder)]
    rows = compare(multi_table, single_table)
    print(format_comparison(rows))
    print("\ntraining wall time:")
    for label, run in [("multi-task", multi), *singles.items()]:
        print(f"  {label}: {run['steps']} steps, {run['wall_s'] / 60:.1f} min ({run['timed']})")
    print(f"  single-task runs together: {sum(r['wall_s'] for r in singles.values()) / 60:.1f} min; "
          f"scoring: {(time.perf_counter() - start) / 60:.1f} min")
    met = sum(r["within_10pct"] for r in rows)
    print(f"within 10 % of the single-task runs: {met} of {len(rows)} metrics")

    results = {"n": n, "decoder": decoder, "data_dir": str(args.data_dir), "budget": budget, "multi": multi,
               "single": singles, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"written {args.json}")
    return results


if __name__ == "__main__":
    main()
