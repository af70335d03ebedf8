"""Multi-task training (`data.mixture`): one model, several tasks, each micro-batch holding one task.

- Which task a micro-batch holds is drawn with probability weight / (sum of weights) from an RNG seeded by
  (training.seed, step, micro-batch index within the step): every process draws the same task, and a resumed
  run draws what an uninterrupted one would, with no sampler state to save. Every task is in the draw from
  the first step (task prompts mixed from the start).
- Each task keeps its own rows, batcher (the LM prompt format, or a head's batches), length-grouped batch
  order and data position (epoch, micro-batch); the positions are saved in `last/` with the training state.
- Evaluation scores every task with its own metrics, named `<name>_<metric>` (logged as
  `eval_<name>_<metric>`), plus one combined `score`: the unweighted mean over the evaluated tasks of each
  task's first metric on a 0-1 higher-is-better scale (`tasks.metrics.unit_score`: accuracy, F1 and BLEU-4
  as they are, CIDEr-D / 10, WER and CER as 1 - min(rate, 1)). The best `score` picks `best/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from multimodal.config import Config, TaskData
from multimodal.data import LengthGroupedBatches, load_rows, task_loader
from tasks import Task, get_task

log = logging.getLogger(__name__)
SCORE = "score"  # the combined metric that picks best/


def draw_task(probabilities: np.ndarray, seed: int, step: int, micro_batch: int) -> int:
    """The index of the task that micro-batch `micro_batch` of optimizer step `step` holds."""
    return int(np.random.default_rng([seed, step, micro_batch]).choice(len(probabilities), p=probabilities))


def check_mixture(entries: list[TaskData], streaming: bool = False) -> list[str]:
    """The entries' names; an unknown task, a weight <= 0, a missing training source or a repeated name is
    an error naming the entry."""
    if streaming:
        raise ValueError("data.streaming reads one source; a data.mixture loads each task's rows: "
                         "set data.streaming=false")
    names = []
    for i, entry in enumerate(entries):
        where = f"data.mixture[{i}]"
        if not entry.task:
            raise ValueError(f"{where} names no task; set its 'task' (e.g. caption, transcribe, classify_head)")
        try:
            get_task(entry.task)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if not entry.weight > 0:
            raise ValueError(f"{where} ({entry.task}): weight must be > 0, got {entry.weight}")
        if entry.train is None or entry.train == "" or entry.train == []:
            raise ValueError(f"{where} ({entry.task}) has no training data; set its 'train'")
        name = entry.name or entry.task
        if name in names:
            raise ValueError(f"{where}: the name '{name}' is used twice; give one of them a distinct 'name'")
        names.append(name)
    return names


@dataclass
class MixtureTask:
    """One task of the mixture at run time."""

    name: str
    task: Task
    weight: float
    train_rows: Any  # a checked datasets.Dataset
    eval_rows: Any  # or None
    eval_max_examples: int
    stream: "TaskStream | None" = None


class TaskStream:
    """Endless micro-batches of one task's rows on this process, resumable at (epoch, micro_batch)."""

    def __init__(self, loader: torch.utils.data.DataLoader, sampler: LengthGroupedBatches, name: str, rank: int):
        self.loader, self.sampler, self.name, self.rank = loader, sampler, name, rank
        self.epoch, self.micro_batch = 0, 0
        self._batches: Iterator | None = None

    def position(self) -> list[int]:
        return [self.epoch, self.micro_batch]

    def set_position(self, epoch: int, micro_batch: int) -> None:
        self.epoch, self.micro_batch, self._batches = epoch, micro_batch, None

    def __next__(self) -> dict[str, Any]:
        for _ in range(2):  # at most one epoch boundary per call
            if self._batches is None:
                self.sampler.set_epoch(self.epoch, self.micro_batch)
                self._batches, self._start = iter(self.loader), self.micro_batch
            try:
                batch = next(self._batches)
            except StopIteration:
                if self.micro_batch == self._start == 0:
                    break
                self.epoch, self.micro_batch, self._batches = self.epoch + 1, 0, None
                continue
            self.micro_batch += 1
            return batch
        raise ValueError(f"process {self.rank} got no '{self.name}' batch in epoch {self.epoch}: too few rows")


class Mixture:
    """The tasks of `config.data.mixture`: their rows, batches, positions and evaluation."""

    def __init__(self, config: Config):
        dc = config.data
        names = check_mixture(dc.mixture, dc.streaming)
        self.tasks: list[MixtureTask] = []
        for name, entry in zip(names, dc.mixture):
            task = get_task(entry.task)
            links = dc.follow_symlinks
            eval_rows = (load_rows(entry.eval, task, dc.on_bad_rows, split="validation", follow_symlinks=links)
                         if entry.eval else None)
            rows = load_rows(entry.train, task, dc.on_bad_rows, split="train", follow_symlinks=links)
            max_examples = dc.eval_max_examples if entry.eval_max_examples < 0 else entry.eval_max_examples
            self.tasks.append(MixtureTask(name, task, entry.weight, rows, eval_rows, max_examples))
        weights = np.array([t.weight for t in self.tasks], dtype=np.float64)
        self.probabilities = weights / weights.sum()
        self.seed = config.training.seed

    @property
    def has_eval(self) -> bool:
        return any(t.eval_rows is not None for t in self.tasks)

    def describe(self) -> str:
        parts = zip(self.tasks, self.probabilities)
        return ", ".join(f"{t.name} ({len(t.train_rows)} rows, p={p:.2f})" for t, p in parts)

    def resolve_heads(self, config: Config) -> Config:
        """`config` with every head task's labels taken from its training rows and checked against its data."""
        from multimodal.text_heads import resolve_head_labels

        heads: dict[str, str] = {}
        for t in self.tasks:
            if t.task.head:
                if t.task.head in heads:
                    raise ValueError(f"data.mixture: '{heads[t.task.head]}' and '{t.name}' both train "
                                     f"heads.{t.task.head}; one head learns one label set, so give the head one task")
                heads[t.task.head] = t.name
                config = resolve_head_labels(config, t.task, t.train_rows, t.eval_rows)
        return config

    def make_streams(self, model, config: Config, rank: int, world: int) -> None:
        """One DataLoader per task (its own batch order, workers and RNG), as in the single-task loop."""
        for i, t in enumerate(self.tasks):
            loader, sampler = task_loader(model, t.task, t.train_rows, config, config.training.seed + i, rank, world)
            t.stream = TaskStream(loader, sampler, t.name, rank)

    def next_batch(self, step: int, micro_batch: int) -> tuple[str, dict[str, Any]]:
        """(task name, its next micro-batch) for micro-batch `micro_batch` of optimizer step `step`."""
        t = self.tasks[draw_task(self.probabilities, self.seed, step, micro_batch)]
        return t.name, next(t.stream)

    # ---- resume state: {name: [epoch, micro_batch]} for this process
    def positions(self) -> dict[str, list[int]]:
        return {t.name: t.stream.position() for t in self.tasks}

    def set_positions(self, positions: dict[str, list[int]]) -> None:
        if not isinstance(positions, dict) or set(positions) != {t.name for t in self.tasks}:
            saved = sorted(positions) if isinstance(positions, dict) else "a single-task run"
            raise ValueError(f"cannot resume: the checkpoint's data positions are for {saved}, this mixture has "
                             f"{[t.name for t in self.tasks]}")
        for t in self.tasks:
            t.stream.set_position(*positions[t.name])

    # ---- evaluation
    def evaluate(self, model, config: Config, progress: bool = False) -> dict[str, Any]:
        """{"<name>_<metric>": value, ..., "score": combined} over the tasks that have eval data."""
        from multimodal.evaluate import evaluate
        from tasks.metrics import unit_score

        tc = config.training
        out: dict[str, Any] = {}
        scores = []
        for t in self.tasks:
            if t.eval_rows is None:
                continue
            metrics = evaluate(model, t.eval_rows, t.task, batch_size=tc.batch_size, max_examples=t.eval_max_examples,
                               max_text_tokens=config.data.max_text_tokens, progress=progress,
                               decoder=tc.eval_decoder if t.task.modality == "audio" else "lm")
            out.update({f"{t.name}_{k}": v for k, v in metrics.items()})
            scores.append(unit_score(t.task.metrics[0], metrics[t.task.metrics[0]]))
        out[SCORE] = float(np.mean(scores))
        return out
