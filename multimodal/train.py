"""The training loop, explicit and in one place.

One process on a CPU, one GPU (bf16 autocast), or many GPUs / nodes under `accelerate launch` or
`torchrun` (DDP), with no code change. Each optimizer step accumulates `grad_accum_steps` micro-batches
into the gradient of one large batch (every target token weighs the same, `accumulate`), clips the global
gradient norm, and steps AdamW (one learning rate per component) on a warm-up + cosine
schedule, for `max_steps` steps or, with `epochs`, as many as that many passes over the data take.
`last/` (weights + optimizer, schedule, RNG and data position) is written atomically every
`save_every` steps; `--resume` continues from it exactly. Evaluation every `eval_every` steps keeps the
best weights in `best/`; with `early_stop_patience`, training stops once that many evaluations in a row
found nothing better. Metrics go to `metrics.jsonl` (and TensorBoard when installed); the curves to
`curves.png` at the end. With `data.mixture`, each micro-batch holds one task of the mixture, and evaluation
scores every task (multimodal/mixture.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from multimodal.build import build
from multimodal.checkpoint import CheckpointError, hold_run_dir, load_weights, recover, save, verified
from multimodal.config import Config, TrainingConfig
from multimodal.data import collator_for, load_rows, task_loader
from multimodal.evaluate import evaluate
from multimodal.mixture import SCORE, Mixture
from multimodal.model import LOSS_TERMS, loss_items
from multimodal.trainable import count_parameters, parameter_groups
from multimodal.warm_start import init_from
from tasks import get_task
from tasks.metrics import HIGHER_IS_BETTER

log = logging.getLogger(__name__)
TRAINER_STATE = "trainer_state.pt"
METRICS_FILE = "metrics.jsonl"


def mixed_precision(tc: TrainingConfig) -> str:
    """`training.mixed_precision` resolved: "auto" is bf16 autocast on a GPU and fp32 ("no") on a CPU.

    bf16 on a CPU is opt-in: it pays only where the CPU multiplies bf16 natively (AVX512-BF16 or AMX;
    `benchmarks/step_time.py CONFIG --against training.mixed_precision=bf16` measures it).
    """
    if tc.mixed_precision != "auto":
        return tc.mixed_precision
    return "bf16" if torch.cuda.is_available() else "no"


@dataclass
class Position:
    """Where training stands; saved with every `last/` checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    micro_batch: int = 0  # micro-batches of this epoch already consumed (this rank)
    best: float | None = None  # best value of the task's first metric (a mixture: its combined score) so far
    best_step: int = 0


def train(
    config: Config,
    output_dir: str | Path,
    train_data: Any = None,
    eval_data: Any = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train `config` on `train_data` (default: config.data.train); returns a summary dict. The run holds
    `output_dir` until it returns or fails (`hold_run_dir`): a second training into it is refused."""
    with contextlib.ExitStack() as held:
        return _train(config, Path(output_dir), train_data, eval_data, resume, progress, held)


def _train(config: Config, output: Path, train_data: Any, eval_data: Any, resume: bool, progress: bool,
           held: contextlib.ExitStack) -> dict[str, Any]:
    from accelerate import Accelerator, DistributedDataParallelKwargs

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers fork after the tokenizer ran
    tc, dc = config.training, config.data
    # A batch of one task leaves other modalities' encoders without gradients: DDP must allow that.
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),  # accelerate runs torchrun's CPU processes as DDP (gloo) only with cpu=True
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)]
    )
    # Our own autocast, not accelerate's: its precision is fixed once per process, so a second `train` in the
    # same process (a notebook) with another precision would fail.
    bf16 = mixed_precision(tc) == "bf16"
    main = accelerator.is_main_process
    if dc.mixture and (train_data is not None or eval_data is not None):
        raise ValueError("data.mixture lists each task's train and eval data; "
                         "--train/--eval are for single-task configs")
    task = None if dc.mixture else get_task(dc.task)
    _check_length_settings(config)
    train_source = train_data if train_data is not None else dc.train
    if not dc.mixture and (train_source is None or train_source == ""):
        raise ValueError("no training data: pass --train PATH or set data.train")
    eval_source = eval_data if eval_data is not None else (dc.eval or None)
    if not dc.mixture:  # the saved config.yaml names the data this run was trained on, not the recipe's default
        dc = replace(dc, train=_recordable(train_source), eval=_recordable(eval_source))
        config = replace(config, data=dc)
    if main:  # one training per output folder (under DDP the main process holds it for all)
        held.enter_context(hold_run_dir(output))
    if not resume and recover(output / "last").exists():  # every rank checks, before any heavy work
        raise ValueError(f"'{output}' already holds a run; pass --resume to continue it or choose another --output")

    mixture, eval_rows, rows = None, None, None
    if dc.mixture:  # every task's rows; head labels from each head task's training rows
        mixture = Mixture(config)
        config = mixture.resolve_heads(config)
    else:
        links = dc.follow_symlinks
        eval_rows = (load_rows(eval_source, task, dc.on_bad_rows, split="validation", follow_symlinks=links)
                     if eval_source else None)
        rows = None if dc.streaming else load_rows(train_source, task, dc.on_bad_rows, split="train",
                                                   follow_symlinks=links)
    if task is not None and task.head:  # the label set comes from the config or the training data, checked against both
        from multimodal.text_heads import resolve_head_labels

        config = resolve_head_labels(config, task, rows, eval_rows)
    from multimodal.resolve import checkpoint_dir

    sources = [checkpoint_dir(s) for s in ([tc.init_from] if isinstance(tc.init_from, str) else tc.init_from) if s]
    if resume or sources:  # a fitted object head in a checkpoint the weights come from: build it here too
        from multimodal.object_tags import adopt_object_names

        for source in [recover(output / "last")] if resume else sources:
            config = adopt_object_names(config, source)
    model = build(config)
    if sources and not resume:
        copied = init_from(model, sources)
        log.info("initialised %d weights from %s", len(copied), ", ".join(f"'{s}'" for s in sources))
    if tc.gradient_checkpointing:
        model.backbone.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    rank, world = accelerator.process_index, accelerator.num_processes
    if mixture is not None:
        mixture.make_streams(model, config, rank, world)
        n_rows = mixture.describe()
    else:
        loader, set_epoch, n_rows = _single_task_loader(model, task, train_source, rows, config, rank, world)
    if tc.epochs:  # the step count follows the data (single-task, non-streamed: checked above)
        tc = steps_from_epochs(tc, len(loader))
        config = replace(config, training=tc)
    optimizer = torch.optim.AdamW(parameter_groups(model, tc.weight_decay))
    from transformers import get_cosine_schedule_with_warmup

    scheduler = get_cosine_schedule_with_warmup(optimizer, tc.warmup_steps, tc.max_steps)
    pos = Position()
    if resume:
        pos = _resume(model, optimizer, scheduler, output / "last", accelerator, mixture)
    ddp_model, optimizer = accelerator.prepare(model, optimizer)
    if main:
        output.mkdir(parents=True, exist_ok=True)
        _truncate_metrics(output / METRICS_FILE, pos.step)
        total, trainable = count_parameters(model)
        log.info("training %s: %s rows, %.1fM params (%.2fM trainable), %d process(es)",
                 task.name if task else "a mixture", n_rows, total / 1e6, trainable / 1e6, accelerator.num_processes)
    writer = _tensorboard(output) if main else None

    def micro_batches():
        while True:
            set_epoch(pos.epoch, pos.micro_batch)
            start = pos.micro_batch
            for batch in loader:
                pos.micro_batch += 1
                yield batch
            if pos.micro_batch == start == 0:
                raise ValueError(f"process {rank} got no training batch in epoch {pos.epoch}: too few rows")
            pos.epoch, pos.micro_batch = pos.epoch + 1, 0

    if mixture is not None:
        next_batch = mixture.next_batch  # (step, k) -> (task name, batch)
    else:
        stream = micro_batches()
        next_batch = lambda step, k: (None, next(stream))  # noqa: E731
    bar = tqdm(total=tc.max_steps, initial=pos.step, desc="training", disable=not (main and progress), dynamic_ncols=True)
    window = _new_window()
    last_eval: dict[str, Any] = {}
    has_eval = eval_rows is not None or (mixture is not None and mixture.has_eval)
    if tc.early_stop_patience and not has_eval:
        log.warning("training.early_stop_patience stops on an evaluation plateau, and this run has no evaluation "
                    "data (--eval or data.eval): it trains all %d steps", tc.max_steps)
    if mixture is not None:
        evaluate_now = lambda: mixture.evaluate(model, config, progress)  # noqa: E731
    else:
        evaluate_now = lambda: evaluate(  # noqa: E731
            model, eval_rows, task, batch_size=tc.batch_size, max_examples=dc.eval_max_examples,
            max_text_tokens=dc.max_text_tokens, progress=progress, decoder=tc.eval_decoder)
    best_key = SCORE if mixture is not None else task.metrics[0]
    ddp_model.train()
    stopped = False
    while pos.step < tc.max_steps:
        step_batches = [next_batch(pos.step, k) for k in range(tc.grad_accum_steps)]  # [(task name or None, batch)]
        for _, batch in step_batches:
            batch.pop("references")
            window["samples"] += batch["input_ids"].shape[0]
            window["tokens"] += int(batch["attention_mask"].sum())
        step_loss, task_losses = accumulate(ddp_model, step_batches, accelerator, bf16)
        window["loss"] += step_loss
        window["n"] += 1
        for name, loss in task_losses.items():  # a mixture: each task's loss too
            task_loss = window["tasks"].setdefault(name, [0.0, 0])
            task_loss[0], task_loss[1] = task_loss[0] + loss, task_loss[1] + 1
        if tc.grad_clip > 0:
            accelerator.clip_grad_norm_(ddp_model.parameters(), tc.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        pos.step += 1
        bar.update(1)

        if pos.step % tc.log_every == 0 or pos.step == tc.max_steps:
            seconds = time.perf_counter() - window["t0"]
            record = {
                "step": pos.step,
                "epoch": pos.epoch,
                "loss": window["loss"] / window["n"],  # the mean of the steps' losses (`accumulate`)
                "lr": scheduler.get_last_lr()[0],
                "samples_per_s": window["samples"] * accelerator.num_processes / seconds,
                "tokens_per_s": window["tokens"] * accelerator.num_processes / seconds,
                **{f"loss_{n}": total / count for n, (total, count) in sorted(window["tasks"].items())},
            }
            bar.set_postfix(loss=f"{record['loss']:.3f}", samples_s=f"{record['samples_per_s']:.1f}")
            if main:
                _log_metrics(output, record, writer)
            window = _new_window()

        at_end = pos.step == tc.max_steps
        paused = time.perf_counter()
        if has_eval and ((tc.eval_every and pos.step % tc.eval_every == 0) or at_end):
            if main:
                last_eval = _evaluate_and_keep_best(model, evaluate_now, best_key, config, output, pos, writer)
                stopped = not at_end and plateau(pos, tc)
            if tc.early_stop_patience and accelerator.num_processes > 1:  # only the main process keeps the best
                from accelerate.utils import broadcast_object_list

                stopped = broadcast_object_list([stopped if main else False])[0]
            accelerator.wait_for_everyone()
        if (tc.save_every and pos.step % tc.save_every == 0) or at_end or stopped:
            _save_last(model, optimizer, scheduler, pos, output, config, accelerator, mixture)
        window["t0"] += time.perf_counter() - paused  # evaluation and saving do not count against throughput
        if stopped:
            if main:
                log.info("stopped early at step %d of %d: no better eval %s in %d evaluations (best %.4g at step %d)",
                         pos.step, tc.max_steps, best_key, tc.early_stop_patience, pos.best, pos.best_step)
                _log_metrics(output, {"step": pos.step, "stopped_early": True}, writer)
            break
    bar.close()
    if main:
        if writer is not None:
            writer.close()
        plot_curves(output / METRICS_FILE, output / "curves.png", best_key)
    accelerator.wait_for_everyone()
    return {"steps": pos.step, "output": str(output), "eval": last_eval, "stopped_early": stopped}


def _check_length_settings(config: Config) -> None:
    """Refuse training.epochs / early_stop_patience settings that cannot work, before any heavy work."""
    tc, dc = config.training, config.data
    if tc.epochs < 0 or tc.early_stop_patience < 0:
        raise ValueError(f"training.epochs ({tc.epochs}) and training.early_stop_patience "
                         f"({tc.early_stop_patience}) must be >= 0 (0 = off)")
    if tc.epochs and (dc.mixture or dc.streaming):
        raise ValueError("training.epochs counts passes over the training rows, and "
                         f"{'a mixture' if dc.mixture else 'streamed data'} has no epoch length: "
                         "set training.max_steps instead")
    if tc.early_stop_patience and not tc.eval_every:
        raise ValueError("training.early_stop_patience counts evaluations: set training.eval_every > 0")


def steps_from_epochs(tc: TrainingConfig, micro_batches_per_epoch: int) -> TrainingConfig:
    """`tc` with max_steps for `tc.epochs` passes of `micro_batches_per_epoch` (this process's loader length, which
    already divides the rows among the processes) and warmup at most a tenth of the steps: a 10-row fine-tune
    takes a few steps, not a recipe's fixed hundreds, and a large set is not cut short."""
    steps = max(1, math.ceil(tc.epochs * micro_batches_per_epoch / tc.grad_accum_steps))
    warmup = min(tc.warmup_steps, steps // 10)
    log.info("training.epochs=%g: %d micro-batches an epoch -> %d optimizer steps (warmup %d; max_steps %d unused)",
             tc.epochs, micro_batches_per_epoch, steps, warmup, tc.max_steps)
    return replace(tc, max_steps=steps, warmup_steps=warmup)


def plateau(pos: Position, tc: TrainingConfig) -> bool:
    """Whether `tc.early_stop_patience` evaluations in a row (every `eval_every` steps) found no better best/."""
    if not tc.early_stop_patience or pos.best is None:
        return False
    return (pos.step - pos.best_step) // tc.eval_every >= tc.early_stop_patience


def accumulate(model, micro_batches: list[tuple[str | None, dict[str, torch.Tensor]]], accelerator,
               bf16: bool = False) -> tuple[float, dict[str, float]]:
    """Forward and backward one optimizer step's micro-batches, (task name or None, batch) each, so that the
    gradient is that of one large batch of all of them (on all processes).

    Each loss term is averaged over its items (`loss_items`: target tokens, characters or rows) of the whole step,
    not per micro-batch: a micro-batch of long targets weighs more than one of short targets (transformers'
    `num_items_in_batch`). The counts are summed over the processes first, and each loss is multiplied by the
    number of processes, which DDP's gradient averaging divides back out. In a mixture, each task's terms are
    averaged over that task's items, and the task weighs its share of the step's micro-batches (each micro-batch
    draws its task by the mixture's weights, the same on every process).

    Returns the step's loss and, in a mixture, each of its tasks' loss (a task's mean over its items), both over
    all processes.
    """
    names = [name for name, _ in micro_batches]
    tasks = list(dict.fromkeys(names))  # in order of first appearance: the same on every process
    share = {t: names.count(t) / len(names) for t in tasks}
    items = torch.zeros(len(tasks), len(LOSS_TERMS), dtype=torch.long)  # (tasks, terms) on this process
    for name, (_, batch) in zip(names, micro_batches):
        counts = loss_items(batch)
        items[tasks.index(name)] += torch.tensor([counts[term] for term in LOSS_TERMS])
    items = accelerator.reduce(items.to(accelerator.device), "sum").tolist()  # over all processes
    losses = torch.zeros(len(tasks), dtype=torch.float64)  # each task's share of the step's loss, this process
    for k, (name, (_, batch)) in enumerate(zip(names, micro_batches)):
        batch = {key: v.to(accelerator.device) for key, v in batch.items()}
        num_items = {term: n / share[name] for term, n in zip(LOSS_TERMS, items[tasks.index(name)])}
        sync = k == len(micro_batches) - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(model):
            with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch, num_items=num_items).loss
            accelerator.backward(loss * accelerator.num_processes)
        losses[tasks.index(name)] += float(loss.detach())
    losses = accelerator.reduce(losses.to(accelerator.device), "sum").tolist()
    return sum(losses), {t: loss / share[t] for t, loss in zip(tasks, losses) if t is not None}


def _recordable(source: Any) -> str | list[str]:
    """`source` as the config records data: a path, a list of paths, or "" (none, or a dataset in memory)."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (list, tuple)) and all(isinstance(s, (str, os.PathLike)) for s in source):
        return [os.fspath(s) for s in source]
    return ""


def _single_task_loader(model, task, train_source, rows, config: Config, rank: int, world: int):
    """(DataLoader, set_epoch(epoch, micro_batch), row count) of one task's training data on this rank."""
    tc, dc = config.training, config.data
    if not dc.streaming:
        loader, sampler = task_loader(model, task, rows, config, tc.seed, rank, world)
        return loader, sampler.set_epoch, len(rows)
    from multimodal.streaming import StreamingTaskDataset

    streamed = StreamingTaskDataset(train_source, task, tc.seed, dc.on_bad_rows, rank, world, dc.augment,
                                    dc.follow_symlinks)
    # One worker at most: more would each read the whole stream. Not persistent: the worker must see
    # each epoch's set_epoch (and a resumed start). Its own generator, as in data.task_loader.
    loader = torch.utils.data.DataLoader(streamed, batch_size=tc.batch_size,
                                         collate_fn=collator_for(model, task, dc.max_text_tokens),
                                         num_workers=min(dc.num_workers, 1),
                                         generator=torch.Generator().manual_seed(tc.seed))
    set_epoch = lambda epoch, micro: streamed.set_epoch(epoch, micro * tc.batch_size)  # noqa: E731
    return loader, set_epoch, "streamed"


# ---------------------------------------------------------------------------------------------------------
# Checkpoints and resume


def _new_window() -> dict[str, Any]:
    """Sums over the steps since the last log line (loss: of the steps' losses, n: steps; per task: [sum of its
    losses in the steps that held it, those steps])."""
    return {"loss": 0.0, "n": 0, "samples": 0, "tokens": 0, "tasks": {}, "t0": time.perf_counter()}


def _save_last(model, optimizer, scheduler, pos: Position, output: Path, config: Config, accelerator,
               mixture: Mixture | None = None) -> None:
    from accelerate.utils import gather_object

    rng = gather_object([torch.get_rng_state()])  # one CPU RNG state per rank (dropout, SpecAugment)
    # Per rank: streamed shards need not be equal. A mixture: {task name: [epoch, micro_batch]}.
    data = gather_object([mixture.positions() if mixture is not None else [pos.epoch, pos.micro_batch]])
    cuda_rng = gather_object([torch.cuda.get_rng_state()]) if torch.cuda.is_available() else []
    if accelerator.is_main_process:
        state = {
            "position": asdict(pos),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "data_positions": data,
            "cuda_rng": cuda_rng,
            "world_size": accelerator.num_processes,
        }
        try:
            save(model, output / "last", config.training.save_adapter_only,
                 extra={TRAINER_STATE: lambda p: torch.save(state, p)})
        except CheckpointError as e:  # a full disk: the last/ before is whole
            before = recover(output / "last").exists()
            raise CheckpointError(f"{e}\ntraining stopped at step {pos.step}; " + (
                f"'{output / 'last'}' holds the last step saved: continue with --resume once there is space"
                if before else "nothing was saved yet")) from e
    accelerator.wait_for_everyone()


def _resume(model, optimizer, scheduler, last: Path, accelerator, mixture: Mixture | None = None) -> Position:
    last = recover(last)
    if not (last / TRAINER_STATE).is_file():
        raise ValueError(f"cannot resume: '{last}' holds no training state ({TRAINER_STATE}); start without --resume")
    load_weights(model, last)
    state = torch.load(verified(last, TRAINER_STATE), weights_only=True)  # plain tensors and numbers: nothing unpickled
    if state["world_size"] != accelerator.num_processes:
        raise ValueError(
            f"cannot resume: '{last}' was written by {state['world_size']} process(es), this run has "
            f"{accelerator.num_processes}; the data position is per process"
        )
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"][accelerator.process_index])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_rng"][accelerator.process_index])
    pos = Position(**state["position"])
    positions = state["data_positions"][accelerator.process_index]
    if mixture is not None:
        mixture.set_positions(positions)
    elif isinstance(positions, dict):
        raise ValueError(f"cannot resume: '{last}' is a multi-task run (data.mixture of {sorted(positions)}); "
                         "resume it with its own config")
    else:
        pos.epoch, pos.micro_batch = positions
    log.info("resumed from '%s' at step %d (epoch %d, micro-batch %d)", last, pos.step, pos.epoch, pos.micro_batch)
    return pos


def _evaluate_and_keep_best(model, evaluate_now, key: str, config: Config, output: Path, pos: Position, writer) -> dict:
    """Run `evaluate_now()`, log its metrics, and keep the weights in best/ when metric `key` improved."""
    metrics = evaluate_now()
    value = metrics[key]
    better = pos.best is None or (value > pos.best if HIGHER_IS_BETTER.get(key, True) else value < pos.best)
    if better:
        pos.best, pos.best_step = value, pos.step
        save(model, output / "best", config.training.save_adapter_only,
             extra={"eval.json": lambda p: p.write_text(json.dumps({"step": pos.step, **metrics}, indent=2))})
    _log_metrics(output, {"step": pos.step, **{f"eval_{k}": v for k, v in metrics.items()}}, writer)
    return metrics


# ---------------------------------------------------------------------------------------------------------
# Logging and curves


def _log_metrics(output: Path, record: dict[str, Any], writer) -> None:
    with open(output / METRICS_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")
    if writer is not None:
        for k, v in record.items():
            if k != "step" and isinstance(v, (int, float)):
                writer.add_scalar(k, v, record["step"])


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop lines logged after the checkpoint so the curves have no duplicate steps."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))


def _tensorboard(output: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(output / "tensorboard"))


def plot_curves(metrics_path: Path, png_path: Path, eval_metric: str) -> None:
    """Training loss (per task for a mixture), evaluation loss and `eval_metric` against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if f"eval_{eval_metric}" in r]
    fig, axes = plt.subplots(1, 2 if evals else 1, figsize=(11 if evals else 6, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    task_losses = sorted({k for r in train for k in r if k.startswith("loss_")})  # a mixture: each task's loss
    for key in task_losses:
        ax.plot([r["step"] for r in train if key in r], [r[key] for r in train if key in r], lw=0.8, label=key[5:])
    if evals and "eval_loss" in evals[0]:
        ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-", label="eval loss")
        ax2 = axes[0][1]
        ax2.plot([r["step"] for r in evals], [r[f"eval_{eval_metric}"] for r in evals], "o-", color="tab:green")
        ax2.set(xlabel="step", ylabel=eval_metric, title=f"eval {eval_metric}")
        ax2.grid(alpha=0.3)
    ax.set(xlabel="step", ylabel="loss", title="loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
