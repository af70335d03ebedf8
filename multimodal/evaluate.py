"""Evaluation: teacher-forced loss on the targets, then generation scored by the task's metrics."""

from __future__ import annotations

import math
from typing import Any

import torch
from tqdm.auto import tqdm

from multimodal.data import Collator, TaskDataset
from multimodal.generation import GenerationConfig
from multimodal.processor import Processor
from tasks import Task
from tasks.ctc_lexicon import as_lexicon_decoder
from tasks.ctc_units import ctc_units

MULTI_REFERENCE_METRICS = ("bleu4", "cider_d")  # take a list of references per hypothesis


def score(task: Task, references: list[str], hypotheses: list[str], intervals: bool = False) -> dict[str, float]:
    """The task's metrics of generated texts against their references (+ `NAME_low`, `NAME_high`: the 95 %
    bootstrap interval, with `intervals`)."""
    from tasks.metrics import METRICS, interval_metrics

    out = {}
    for name in task.metrics:
        refs: Any = [[r] for r in references] if name in MULTI_REFERENCE_METRICS else references
        out[name] = float(METRICS[name](refs, hypotheses))
        if intervals:
            out.update(interval_metrics(name, refs, hypotheses))
    return out



@torch.no_grad()
def evaluate(
    model,
    rows,
    task: Task,
    batch_size: int = 8,
    max_examples: int = 0,
    num_workers: int = 0,
    max_text_tokens: int | None = None,
    progress: bool = False,
    return_outputs: bool = False,
    decoder: str = "lm",
    lexicon: Any = None,
    lm: str | None = None,
    rescore: bool = False,
    intervals: bool = False,
) -> dict[str, Any]:
    """{"loss": ..., <metric>: ..., "n_examples": ...} on (the first `max_examples` of) `rows`; with
    `intervals`, each metric's 95 % bootstrap interval as `<metric>_low` and `<metric>_high`.

    `lexicon` (decoder='ctc'): a word list or `LexiconDecoder` for the CTC beam search (tasks/ctc_lexicon.py);
    `lm`: a word n-gram file that scores the words in that search; `rescore`: the backbone re-ranks its best.
    """
    from multimodal.transcribe import backbone_scorer

    units = ctc_units(model.config.heads)
    lexicon = as_lexicon_decoder(lexicon, decoder, lm, units.kind, units.accent,
                                 backbone_scorer(model) if rescore else None)
    if task.head:  # a classification or tagging head: no generation
        from multimodal.text_heads import evaluate_head

        return evaluate_head(model, rows, task, batch_size, max_examples, num_workers, progress, return_outputs,
                             intervals)
    was_training = model.training
    model.eval()
    if max_examples and len(rows) > max_examples:
        rows = rows.select(range(max_examples))
    processor = Processor(model, max_text_tokens)
    dataset = TaskDataset(rows, task)
    loss_sum, n_targets = 0.0, 0
    references, hypotheses = [], []
    generation = GenerationConfig(max_new_tokens=task.max_new_tokens)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=Collator(processor, "left")
    )
    device = model.device
    for batch in tqdm(loader, desc=f"evaluating {task.name}", disable=not progress, leave=False):
        refs = batch.pop("references")
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)  # left padding is fine: the model derives positions from the attention mask
        n = int((batch["labels"][:, 1:] != -100).sum())
        loss_sum += float(out.loss) * n
        n_targets += n
        if decoder == "ctc":
            hypotheses += model.ctc_texts(batch["audio_values"], batch["audio_attention_mask"], lexicon)
        else:
            hypotheses += model.generate(_prompt_only(batch), generation)
        references += refs
    model.train(was_training)
    if decoder == "ctc" and lexicon is None and units.kind == "phonemes":  # greedy phones: scored against phones
        voices = rows["voice"] if "voice" in rows.column_names else [None] * len(references)
        references = [units.reference(r, v) for r, v in zip(references, voices)]
    metrics: dict[str, Any] = {"loss": loss_sum / max(n_targets, 1), "n_examples": len(references)}
    metrics["perplexity"] = math.exp(min(metrics["loss"], 50.0))
    metrics.update(score(task, references, hypotheses, intervals))
    if return_outputs:
        metrics["outputs"] = [{"reference": r, "hypothesis": h} for r, h in zip(references, hypotheses)]
    return metrics


def _prompt_only(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the target tokens from a left-padded batch, leaving each row's prompt right-aligned."""
    is_prompt = (batch["labels"] == -100) & (batch["attention_mask"] == 1)  # (B, L)
    lengths = is_prompt.sum(1)
    width = int(lengths.max())
    pad = torch.zeros_like(batch["input_ids"][:, :width])
    input_ids, attention_mask = pad.clone(), pad.clone()
    for r in range(len(lengths)):
        ids = batch["input_ids"][r][is_prompt[r]]
        input_ids[r, width - len(ids) :] = ids
        attention_mask[r, width - len(ids) :] = 1
    out = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask", "labels")}
    out.update(input_ids=input_ids, attention_mask=attention_mask)
    return out
