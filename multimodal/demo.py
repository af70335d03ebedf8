"""`make demo`: one multi-task checkpoint, trained on this machine and shown at work (issue 7).

1. Small demo corpora under OUTPUT/data, seconds each and made once: drawn scenes with captions, espeak-ng
   speech (plus a one-minute recording of held-out sentences), emoji names labelled by Unicode group.
2. The multi-task model of `configs/demo.yaml` (captioning, speech recognition and a classification head on
   one SmolLM2 with LoRA) trained into OUTPUT. A run cut short is resumed; a finished one is reused, so a
   second `make demo` only shows it.
3. The checkpoint at work: held-out images captioned, a held-out recording and the one-minute one transcribed
   (with timestamps), texts classified.
4. Held-out metrics per task beside the quality goals of issues 4, 5 and 6 (kept in OUTPUT/demo_metrics.json,
   so a second run prints them without recomputing).
"""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multimodal.config import Config, TaskData, load_config

DEFAULT_CONFIG = "configs/demo.yaml"
DEFAULT_OUTPUT = "runs/demo"
METRICS_CACHE = "demo_metrics.json"


@dataclass(frozen=True)
class DemoData:
    """Sizes of the demo corpora."""

    scenes_train: int
    scenes_eval: int  # new images of training colour/shape combinations
    scenes_heldout: int  # images with colour/shape combinations never seen in training
    image_size: int
    speech_hours: float  # all speech, of which `speech_eval_fraction` is held out (unseen sentences and voices)
    speech_eval_fraction: float
    long_minutes: float  # the long recording transcribed with timestamps
    texts_per_label: int  # emoji names per Unicode group before the train/eval split
    heldout_examples: int  # examples per caption/speech held-out set (0 = all); classification scores all texts


DATA_SIZES = {  # presets: `full` for `make demo`, `small` for tests and notebooks (seconds end to end)
    "full": DemoData(1200, 64, 64, 224, 1.0, 0.05, 1.0, 300, 64),
    "small": DemoData(24, 6, 6, 64, 0.006, 0.3, 0.2, 8, 0),
}
# The mixture the demo trains when its config has none: task -> weight.
DEFAULT_WEIGHTS = {"caption": 1.0, "transcribe": 1.0, "classify_head": 1.5}


def data_paths(data_dir: Path) -> dict[str, tuple[str, str]]:
    """task -> (train, eval) sources under the demo's data dir."""
    return {
        "caption": (str(data_dir / "scenes/train"), str(data_dir / "scenes/eval")),
        "transcribe": (str(data_dir / "speech/train"), str(data_dir / "speech/eval")),
        "classify_head": (str(data_dir / "text/train.jsonl"), str(data_dir / "text/eval.jsonl")),
    }


# ---------------------------------------------------------------------------------------------------------
# 1. Data


def make_data(data_dir: Path, sizes: DemoData) -> None:
    """Write every demo corpus that is not already there with these sizes (a stamp file marks each one done)."""
    from tasks.corpora.scenes import generate_scenes_corpus
    from tasks.corpora.speech import generate_speech_corpus, long_recording
    from tasks.corpora.text_classes import generate_text_corpus

    jobs = {
        "scenes": ((sizes.scenes_train, sizes.scenes_eval, sizes.scenes_heldout, sizes.image_size),
                   lambda: generate_scenes_corpus(data_dir / "scenes", sizes.scenes_train, sizes.scenes_eval,
                                                  sizes.scenes_heldout, size=sizes.image_size)),
        "speech": ((sizes.speech_hours, sizes.speech_eval_fraction),
                   lambda: generate_speech_corpus(data_dir / "speech", sizes.speech_hours, sizes.speech_eval_fraction)),
        "long": ((sizes.long_minutes,), lambda: long_recording(data_dir / "long/recording.wav", sizes.long_minutes)),
        "text": ((sizes.texts_per_label,),
                 lambda: generate_text_corpus("emoji", data_dir / "text", max_per_label=sizes.texts_per_label)),
    }
    for name, (key, make) in jobs.items():
        stamp = data_dir / f".done-{name}"
        if stamp.is_file() and json.loads(stamp.read_text()) == list(key):
            continue
        start = time.perf_counter()
        make()
        stamp.write_text(json.dumps(list(key)))
        print(f"  {name}: written in {time.perf_counter() - start:.1f} s")


# ---------------------------------------------------------------------------------------------------------
# 2. Training


def demo_config(config_path: str | Path, data_dir: Path, max_steps: int | None, overrides: list[str] = ()) -> Config:
    """The config with its mixture's data pointed at `data_dir` (the default mixture when it has none)."""
    config = load_config(config_path, list(overrides))
    paths = data_paths(data_dir)
    mixture = config.data.mixture or [TaskData(task=t, weight=w) for t, w in DEFAULT_WEIGHTS.items()]
    unknown = [entry.task for entry in mixture if entry.task not in paths]
    if unknown:
        raise ValueError(f"{config_path}: the demo has data for {', '.join(paths)}, not for {', '.join(unknown)}")
    config.data.mixture = [dataclasses.replace(e, train=paths[e.task][0], eval=paths[e.task][1]) for e in mixture]
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
# 3. At work


def _rows(folder: Path, n: int = 0) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines() if line.strip()]
    return rows[:n] if n else rows


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def show_captions(model, data_dir: Path, decoder: str) -> None:
    from tasks.corpora.scenes import caption_is_correct

    folder = data_dir / "scenes/heldout"
    rows = _rows(folder, 4)
    print("\ncaptions of held-out images (colour/shape combinations never seen in training):")
    for row, result in zip(rows, model.caption([str(folder / r["file_name"]) for r in rows])):
        mark = "ok" if caption_is_correct(result.text, row["objects"]) else "--"
        print(f"  {mark} {row['file_name']}: {result.text!r}\n     reference: {row['text']!r}")


def show_transcripts(model, data_dir: Path, decoder: str) -> None:
    from tasks.metrics import wer

    folder = data_dir / "speech/eval"
    row = _rows(folder, 1)[0]
    result = model.transcribe(str(folder / row["file_name"]), decoder=decoder)
    print(f"\na held-out recording ({decoder} decoder; unseen sentence and voice):\n  heard:     {result.text!r}\n"
          f"  reference: {row['text']!r}")
    long = data_dir / "long/recording.wav"
    reference = json.loads(long.with_suffix(".json").read_text())
    start = time.perf_counter()
    result = model.transcribe(str(long), decoder=decoder)
    seconds = time.perf_counter() - start
    print(f"\nthe {reference['duration_s']:.0f} s recording ({reference['voice']}), transcribed in {seconds:.1f} s, "
          f"WER {wer([reference['text']], [result.text]):.2f}:")
    for segment in result.segments:
        print(f"  [{_clock(segment.start_s)} - {_clock(segment.end_s)}] {_short(segment.text, 90)}")


def show_labels(model, data_dir: Path, decoder: str) -> None:
    rows = _text_rows(data_dir, 5)
    print("\ntexts classified (emoji names -> Unicode group):")
    for row, prediction in zip(rows, model.classify([r["text"] for r in rows])):
        mark = "ok" if prediction.label == row["label"] else "--"
        print(f"  {mark} {row['text']!r} -> {prediction.label} ({prediction.probabilities[prediction.label]:.2f}); "
              f"true: {row['label']}")


def _text_rows(data_dir: Path, n: int = 0) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (data_dir / "text/eval.jsonl").read_text().splitlines() if line.strip()]
    return rows[:n] if n else rows


# ---------------------------------------------------------------------------------------------------------
# 4. Held-out metrics and the goals: rows of {task, set, metric, value, goal, met}, first `n` examples a set


def _row(task: str, split: str, metric: str, value: float, goal: str = "", met: bool | None = None) -> dict[str, Any]:
    return {"task": task, "set": split, "metric": metric, "value": value, "goal": goal, "met": met}


def caption_metrics(model, data_dir: Path, n: int, decoder: str) -> list[dict[str, Any]]:
    from tasks.corpora.scenes import caption_is_correct
    from tasks.metrics import bleu4, cider_d

    table = []
    for split, what, goal in (("eval", "scenes, new images", 0.95), ("heldout", "scenes, unseen combinations", 0.80)):
        folder = data_dir / "scenes" / split
        rows = _rows(folder, n)
        hyps = [c.text for c in model.caption([str(folder / r["file_name"]) for r in rows])]
        correct = sum(caption_is_correct(h, r["objects"]) for h, r in zip(hyps, rows)) / len(rows)
        table += [_row("caption", what, "captions fully correct", correct, f">= {goal:.0%} (issue 5)", correct >= goal),
                  _row("caption", what, "CIDEr-D", cider_d([r["captions"] for r in rows], hyps)),
                  _row("caption", what, "BLEU-4", bleu4([r["captions"] for r in rows], hyps))]
    return table


def transcribe_metrics(model, data_dir: Path, n: int, decoder: str) -> list[dict[str, Any]]:
    from tasks.metrics import cer, wer

    folder = data_dir / "speech/eval"
    rows = _rows(folder, n)
    hyps = [t.text for t in model.transcribe([str(folder / r["file_name"]) for r in rows], decoder=decoder)]
    refs = [r["text"] for r in rows]
    what, word_errors = f"unseen sentences and voices ({decoder})", wer(refs, hyps)
    return [_row("transcribe", what, "WER", word_errors, "<= 5% (issue 4)", word_errors <= 0.05),
            _row("transcribe", what, "CER", cer(refs, hyps))]


def classify_metrics(model, data_dir: Path, n: int, decoder: str) -> list[dict[str, Any]]:
    """Every eval text, whatever `n`: classifying is cheap, and on 64 texts one label is 1.6 points of accuracy."""
    from tasks.metrics import accuracy, macro_f1

    rows = _text_rows(data_dir)
    labels, gold = [p.label for p in model.classify([r["text"] for r in rows])], [r["label"] for r in rows]
    return [_row("classify", "emoji names, eval split", "accuracy", accuracy(gold, labels), "none set (issue 6)"),
            _row("classify", "emoji names, eval split", "macro-F1", macro_f1(gold, labels))]


# task -> (show it at work, its held-out metrics); the demo runs those of the tasks the checkpoint trained
SHOWCASE = {
    "caption": (show_captions, caption_metrics),
    "transcribe": (show_transcripts, transcribe_metrics),
    "classify_head": (show_labels, classify_metrics),
}


def heldout_metrics(model, data_dir: Path, n: int, decoder: str) -> list[dict[str, Any]]:
    return [row for entry in model.config.data.mixture for row in SHOWCASE[entry.task][1](model, data_dir, n, decoder)]


def format_table(table: list[dict[str, Any]]) -> str:
    def value(v: float, metric: str) -> str:
        return f"{v:.3f}" if metric in ("CIDEr-D", "BLEU-4") else f"{v:.1%}"

    cells = [("task", "held-out set", "metric", "value", "goal", "met")]
    cells += [(r["task"], r["set"], r["metric"], value(r["value"], r["metric"]), r["goal"] or "-",
               {True: "yes", False: "no", None: ""}[r["met"]]) for r in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def cached_metrics(model, checkpoint: Path, data_dir: Path, sizes: DemoData, decoder: str) -> list[dict[str, Any]]:
    """The held-out table, computed once per checkpoint and kept next to the run."""
    cache = checkpoint.parent / METRICS_CACHE
    key = {"checkpoint": str(checkpoint), "written": (checkpoint / "model.safetensors").stat().st_mtime,
           "examples": sizes.heldout_examples, "classify_texts": "all", "decoder": decoder}
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["table"]
    table = heldout_metrics(model, data_dir, sizes.heldout_examples, decoder)
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
    print(f"1. demo corpora in {data_dir}")
    make_data(data_dir, sizes)
    config = demo_config(config_path, data_dir, max_steps, overrides)
    tasks = ", ".join(f"{e.task} (weight {e.weight:g})" for e in config.data.mixture)
    print(f"2. one model trained on {tasks}: {config_path}, {config.training.max_steps} steps -> {output}")
    train_or_reuse(config, output, progress)

    checkpoint = next(d for d in (recover(output / "best"), recover(output / "last"))
                      if (d / "checkpoint.json").is_file())
    model = mm.load(checkpoint)
    decoder = model.config.training.eval_decoder
    print(f"3. {checkpoint} at work")
    for entry in model.config.data.mixture:
        SHOWCASE[entry.task][0](model, data_dir, decoder)
    examples = "all" if not sizes.heldout_examples else sizes.heldout_examples
    print(f"\n4. held-out metrics ({examples} examples a set; every eval text for classification)")
    table = cached_metrics(model, checkpoint, data_dir, sizes, decoder)
    print(format_table(table))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\ndone in {(time.perf_counter() - start) / 60:.1f} min, peak memory {peak_gb:.1f} GB (main process). "
          f"The same checkpoint serves `multimodal caption|transcribe|classify --model {output}` and "
          f"`mm.load('{output}')`.")
    return table
