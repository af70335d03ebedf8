"""`make demo`: one multi-task checkpoint, fine-tuned on this machine from the shipped models and shown at work
(issues 7 and 30).

1. The demo's data sets under OUTPUT/data, made once (`multimodal/demo_sets.py`): for configs/demo.yaml
   photographed objects on scenes, natural voices (and a one-minute recording by a held-out speaker), critics'
   snippets and tweets; for configs/multitask_synthetic.yaml drawn scenes, espeak-ng speech and emoji names.
2. The config's mixture trained into OUTPUT: configs/demo.yaml starts from the shipped caption-en, speech-en and
   sentiment-en (`training.init_from`, their LoRA updates stacked) and fine-tunes briefly. A run cut short is
   resumed; a finished one is reused, so a second `make demo` only shows it.
3. The checkpoint at work on inputs no training saw.
4. Held-out metrics per task beside each issue's goal and, for the real data, beside the shipped single-task
   model on the same rows (kept in OUTPUT/demo_metrics.json, so a second run prints them without recomputing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from multimodal.config import Config, load_config
from multimodal.demo_sets import DATA_SIZES, SETS, SYNTHETIC, DemoData, make_data, within

DEFAULT_CONFIG = "configs/demo.yaml"
DEFAULT_OUTPUT = "runs/demo"
METRICS_CACHE = "demo_metrics.json"
SINGLES_CACHE = "single_task_metrics.json"  # the shipped models' scores on the demo's sets, in the data dir
LOWER_IS_BETTER = {"WER", "CER"}
__all__ = ["DATA_SIZES", "DemoData", "make_data", "demo_config", "run", "format_table"]


def set_name(entry) -> str:
    return entry.name or entry.task


# ---------------------------------------------------------------------------------------------------------
# 2. Training


def demo_config(config_path: str | Path, data_dir: Path, max_steps: int | None, overrides: list[str] = ()) -> Config:
    """The config with its mixture's data pointed at `data_dir` (the synthetic mixture when it has none)."""
    from multimodal.config import TaskData

    config = load_config(config_path, list(overrides))
    mixture = config.data.mixture or [TaskData(task=t, weight=w) for t, w in zip(SYNTHETIC, (1.0, 1.0, 1.5))]
    unknown = [set_name(e) for e in mixture if set_name(e) not in SETS or SETS[set_name(e)].task != e.task]
    if unknown:
        raise ValueError(f"{config_path}: the demo has data sets {', '.join(SETS)} (named by a mixture entry's "
                         f"name, else its task), not {', '.join(unknown)}")
    placed = []
    for entry in mixture:
        paths = SETS[set_name(entry)]
        placed.append(dataclasses.replace(entry, train=str(data_dir / paths.train),
                                          eval=str(data_dir / paths.eval) if paths.eval else ""))
    config.data.mixture = placed
    if max_steps is not None:
        config.training.max_steps = max_steps
    return config


def run_state(output: Path) -> tuple[int, int] | None:
    """(steps done, steps planned) of the run in `output`, or None when it has no `last/` checkpoint."""
    import torch
    import yaml

    from multimodal.checkpoint import recover

    last = recover(output / "last")
    if not (last / "trainer_state.pt").is_file():
        return None
    done = torch.load(last / "trainer_state.pt", weights_only=True)["position"]["step"]
    planned = yaml.safe_load((last / "config.yaml").read_text())["training"]["max_steps"]
    return done, planned


def train_or_reuse(config: Config, output: Path, progress: bool = True) -> bool:
    """Train into `output` unless a finished run is there; resumes a run cut short. True if it trained."""
    from multimodal.train import train

    state = run_state(output)
    if state is not None and state[0] >= state[1]:
        asked = config.training.max_steps
        note = "" if state[1] == asked else f" (asked for {asked}: delete {output} to retrain)"
        print(f"reusing the finished {state[1]}-step run in {output}{note}")
        return False
    if state is not None:
        print(f"resuming the run in {output} at step {state[0]} of {config.training.max_steps}")
    start = time.perf_counter()
    train(config, output, resume=state is not None, progress=progress)
    print(f"trained {config.training.max_steps} steps in {(time.perf_counter() - start) / 60:.1f} min")
    return True


# ---------------------------------------------------------------------------------------------------------
# 3-4. At work, and held-out metrics


class SingleScores:
    """The shipped single-task models' scores on the demo's sets: each model loaded once, each score computed once
    and kept in DATA_DIR/single_task_metrics.json (keyed by the hashes of the model's files and the set sizes)."""

    def __init__(self, data_dir: Path, sizes: DemoData):
        self.path, self.sizes, self.data_dir = data_dir / SINGLES_CACHE, sizes, data_dir
        self.saved = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.models: dict[str, Any] = {}

    def __getitem__(self, name: str):
        def score(fn):
            from multimodal import shipped

            files = shipped.read_manifest(name).files  # the model as shipped: its weights and its config
            model_id = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()[:16]
            key = f"{name}:{model_id}:{fn.__name__}:{hashlib.sha256(repr(self.sizes).encode()).hexdigest()[:12]}"
            if key not in self.saved:
                if name not in self.models:
                    import multimodal as mm

                    self.models = {name: mm.load(name)}  # one at a time: they are scored set by set
                self.saved[key] = fn(self.models[name], self.data_dir, self.sizes)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self.saved, indent=1))
                os.replace(tmp, self.path)
            return self.saved[key]

        return score


def heldout_metrics(model, data_dir: Path, sizes: DemoData) -> list[dict[str, Any]]:
    singles = SingleScores(data_dir, sizes)
    table = []
    for entry in model.config.data.mixture:
        table += SETS[set_name(entry)].metrics(model, data_dir, sizes, singles)
    for r in table:
        r["within"] = within(r["value"], r["single_value"], r["metric"] in LOWER_IS_BETTER)
    return table


def format_table(table: list[dict[str, Any]]) -> str:
    def value(v: float | None, metric: str) -> str:
        if v is None:
            return "-"
        if metric in ("CIDEr-D", "BLEU-4"):
            return f"{v:.3f}"
        return f"{v:g} of 7" if metric == "main object named" else f"{v:.1%}"

    singles = any(r.get("single") for r in table)
    head = ("task", "held-out set", "metric", "this model", "goal", "met")
    head += ("single-task model", "its value", "within 10%") if singles else ()
    cells = [head]
    for r in table:
        line = (r["task"], r["set"], r["metric"], value(r["value"], r["metric"]), r["goal"] or "-",
                {True: "yes", False: "no", None: ""}[r["met"]])
        if singles:
            line += (r.get("single") or "-", value(r.get("single_value"), r["metric"]),
                     {True: "yes", False: "no", None: ""}[r.get("within")])
        cells.append(line)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def cached_metrics(model, checkpoint: Path, data_dir: Path, sizes: DemoData) -> list[dict[str, Any]]:
    """The held-out table, computed once per checkpoint and kept next to the run."""
    cache = checkpoint.parent / METRICS_CACHE
    key = {"checkpoint": str(checkpoint), "written": (checkpoint / "model.safetensors").stat().st_mtime,
           "sizes": dataclasses.asdict(sizes), "decoder": model.config.training.eval_decoder}
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["table"]
    table = heldout_metrics(model, data_dir, sizes)
    cache.write_text(json.dumps({"key": key, "table": table}, indent=1))
    return table


# ---------------------------------------------------------------------------------------------------------


def run(config_path: str = DEFAULT_CONFIG, output: str | Path = DEFAULT_OUTPUT, max_steps: int | None = None,
        data: str = "full", overrides: list[str] = (), progress: bool = True) -> list[dict[str, Any]]:
    """The whole demo; returns the held-out metrics table."""
    import datasets

    import multimodal as mm
    from multimodal.checkpoint import recover

    datasets.disable_progress_bars()  # the training bar is the one to watch
    start = time.perf_counter()
    if data not in DATA_SIZES:
        raise ValueError(f"unknown demo data size '{data}'; valid: {', '.join(DATA_SIZES)}")
    sizes, output = DATA_SIZES[data], Path(output)
    data_dir = output / "data"
    config = demo_config(config_path, data_dir, max_steps, overrides)
    names = [set_name(e) for e in config.data.mixture]
    print(f"1. demo data sets in {data_dir}: {', '.join(names)}")
    make_data(data_dir, sizes, names)
    tasks = ", ".join(f"{set_name(e)} ({e.task}, weight {e.weight:g})" for e in config.data.mixture)
    sources = config.training.init_from
    begun = f" from {', '.join(sources) if isinstance(sources, list) else sources}" if sources else ""
    print(f"2. one model trained{begun} on {tasks}: {config_path}, {config.training.max_steps} steps -> {output}")
    train_or_reuse(config, output, progress)

    checkpoint = next(d for d in (recover(output / "best"), recover(output / "last"))
                      if (d / "checkpoint.json").is_file())
    model = mm.load(checkpoint)
    print(f"3. {checkpoint} at work")
    for entry in model.config.data.mixture:
        SETS[set_name(entry)].show(model, data_dir, sizes)
    print("\n4. held-out metrics")
    table = cached_metrics(model, checkpoint, data_dir, sizes)
    print(format_table(table))
    compared = [r for r in table if r.get("within") is not None]
    if compared:
        close = sum(r["within"] for r in compared)
        print(f"\nwithin 10 % of the single-task models on {close} of {len(compared)} held-out metrics")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\ndone in {(time.perf_counter() - start) / 60:.1f} min, peak memory {peak_gb:.1f} GB (main process). "
          f"The same checkpoint serves `multimodal caption|transcribe|classify|tag --model {output}` and "
          f"`mm.load('{output}')`.")
    return table
