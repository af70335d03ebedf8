"""Text heads in training and evaluation: the label set from the data, batches for the heads, their metrics.

- `resolve_head_labels` fills `heads.classify.labels` / `heads.tag.labels` from the training rows when the
  config leaves them empty (sorted; tags: O then B-/I- per type), and checks every training and evaluation
  label against the set: an unknown label is an error that names it and the row. The resolved config is what
  the checkpoint stores, so a trained model knows its labels.
- `HeadCollator` tokenizes texts (right padding, cut at the head's `max_tokens`) and adds `class_labels`
  (B,) / (B, n_labels) or `tag_labels` (B, L), which make the model run the head and its loss.
- `evaluate_head` scores a head on rows: accuracy and macro-F1 (multi-label: exact-match accuracy and macro-F1
  over labels), or entity-level F1 on words for NER.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from multimodal.config import Config
from tasks import Task
from tasks.classify_head import check_labels, label_set, parse_labels
from tasks.head_config import IGNORE_INDEX, ClassifyHeadConfig, TagHeadConfig
from tasks.ner import OUTSIDE, align_tokens, check_known_tags, first_tokens, tag_set, token_labels


def resolve_head_labels(config: Config, task: Task, train_rows: Any, eval_rows: Any = None) -> Config:
    """A copy of `config` whose head for `task` exists and has its labels; the data checked against them."""
    config = copy.deepcopy(config)
    if task.head == "classify":
        head = config.heads.classify = config.heads.classify or ClassifyHeadConfig()
        column = task.target_column
        if not head.labels:
            if train_rows is None:
                raise ValueError("data.streaming=true needs heads.classify.labels: a stream's labels are not known in advance")
            head.labels = label_set(train_rows[column], train_rows[task.input_column], head.multi_label)
        _no_duplicates(head.labels, "heads.classify.labels")
        for rows, what in ((train_rows, "training data"), (eval_rows, "eval data")):
            if rows is not None:
                check_labels(rows[column], rows[task.input_column], head.labels, head.multi_label, what)
    elif task.head == "tag":
        head = config.heads.tag = config.heads.tag or TagHeadConfig()
        if not head.labels:
            if train_rows is None:
                raise ValueError("data.streaming=true needs heads.tag.labels: a stream's tags are not known in advance")
            head.labels = tag_set(train_rows[task.target_column])
        _no_duplicates(head.labels, "heads.tag.labels")
        for rows, what in ((train_rows, "training data"), (eval_rows, "eval data")):
            if rows is not None:
                check_known_tags(rows[task.target_column], head.labels, what)
    else:
        raise ValueError(f"task '{task.name}' has no head")
    return config


def _no_duplicates(labels: list[str], key: str) -> None:
    seen = set()
    for label in labels:
        if label in seen:
            raise ValueError(f"{key} lists {label!r} twice")
        seen.add(label)


# ---------------------------------------------------------------------------------------------------------
# Batches


def pad_right(rows: list[list[int]], pad_id: int, value: int | None = None) -> torch.Tensor:
    """Id lists -> (B, L) tensor padded on the right with `pad_id` (or `value`)."""
    width = max(1, max(len(r) for r in rows))
    out = torch.full((len(rows), width), pad_id if value is None else value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def encode_texts(tokenizer: Any, texts: list[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """Texts -> right-padded input_ids and attention_mask (B, L), each cut at `max_tokens`."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_tokens).input_ids
    input_ids = pad_right(ids, tokenizer.pad_token_id)
    return {"input_ids": input_ids, "attention_mask": pad_right([[1] * len(r) for r in ids], 0)}


def encode_words(tokenizer: Any, text: str, spans: list[tuple[int, int]], max_tokens: int) -> tuple[list[int], list[int | None]]:
    """(token ids, word index of each token) of one text whose words have character `spans`."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"tagging needs a fast tokenizer (character offsets); {type(tokenizer).__name__} is not one")
    enc = tokenizer(text, truncation=True, max_length=max_tokens, return_offsets_mapping=True)
    return list(enc.input_ids), align_tokens([tuple(o) for o in enc.offset_mapping], spans)


@dataclass
class HeadCollator:
    """Examples of a head task -> a model batch with `class_labels` or `tag_labels`, plus `references`."""

    tokenizer: Any
    task: Task
    head: ClassifyHeadConfig | TagHeadConfig

    @classmethod
    def for_model(cls, model, task: Task) -> "HeadCollator":
        head = getattr(model.config.heads, task.head, None)
        if head is None or not head.labels:
            raise ValueError(f"task '{task.name}' needs heads.{task.head} with labels in the model's config")
        return cls(model.tokenizer, task, head)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        return self._classify(examples) if self.task.head == "classify" else self._tag(examples)

    def _classify(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        head: ClassifyHeadConfig = self.head  # type: ignore[assignment]
        batch: dict[str, Any] = encode_texts(self.tokenizer, [e["text"] for e in examples], head.max_tokens)
        if all(e["label"] is not None for e in examples):
            index = {label: i for i, label in enumerate(head.labels)}
            gold = [parse_labels(e["label"], head.multi_label) for e in examples]
            if head.multi_label:
                targets = torch.zeros(len(gold), len(head.labels))  # (B, n_labels)
                for r, labels in enumerate(gold):
                    targets[r, [index[label] for label in labels]] = 1.0
            else:
                targets = torch.tensor([index[labels[0]] for labels in gold], dtype=torch.long)  # (B,)
            batch["class_labels"] = targets
            batch["references"] = gold
        else:
            batch["references"] = [None] * len(examples)
        return batch

    def _tag(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        head: TagHeadConfig = self.head  # type: ignore[assignment]
        tag_ids = {tag: i for i, tag in enumerate(head.labels)}
        ids, labels, references = [], [], []
        for e in examples:
            token_ids, token_words = encode_words(self.tokenizer, e["text"], e["spans"], head.max_tokens)
            ids.append(token_ids)
            if e["tags"] is not None:
                labels.append(token_labels(token_words, e["tags"], tag_ids, head.all_subtokens))
            references.append({"tags": e["tags"], "first_tokens": first_tokens(token_words, len(e["spans"]))})
        batch: dict[str, Any] = {"input_ids": pad_right(ids, self.tokenizer.pad_token_id),
                                 "attention_mask": pad_right([[1] * len(r) for r in ids], 0)}
        if len(labels) == len(examples):
            batch["tag_labels"] = pad_right(labels, IGNORE_INDEX)  # (B, L)
        batch["references"] = references
        return batch


def word_tags(logits: torch.Tensor, first: list[int], labels: list[str]) -> list[str]:
    """Per-word tags from one row's (L, n_tags) token logits: each word's first sub-token; O without one."""
    best = logits.argmax(-1).tolist()
    return [labels[best[t]] if t >= 0 else OUTSIDE for t in first]


# ---------------------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def evaluate_head(model, rows, task: Task, batch_size: int = 16, max_examples: int = 0, num_workers: int = 0,
                  progress: bool = False, return_outputs: bool = False, intervals: bool = False) -> dict[str, Any]:
    """{"loss", <the task's metrics>, "n_examples"} of the task's head on (the first `max_examples` of) `rows`."""
    from multimodal.data import TaskDataset
    from tasks.metrics import METRICS, interval_metrics

    if max_examples and len(rows) > max_examples:
        rows = rows.select(range(max_examples))
    collate = HeadCollator.for_model(model, task)
    head_config = collate.head
    if task.head == "classify":
        check_labels(rows[task.target_column], rows[task.input_column], head_config.labels, head_config.multi_label, "eval data")
    else:
        check_known_tags(rows[task.target_column], head_config.labels, "eval data")
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(TaskDataset(rows, task), batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=collate)
    device = model.device
    loss_sum, references, hypotheses = 0.0, [], []
    for batch in tqdm(loader, desc=f"evaluating {task.name}", disable=not progress, leave=False):
        refs = batch.pop("references")
        out = model(**{k: v.to(device) for k, v in batch.items()})
        loss_sum += float(out.loss) * len(refs)
        if task.head == "classify":
            probs = model.heads["classify"].probabilities(out.head_logits).cpu()  # (B, n_labels)
            references += refs
            hypotheses += predicted_labels(probs, head_config)
        else:
            for r, ref in enumerate(refs):
                references.append(ref["tags"])
                hypotheses.append(word_tags(out.head_logits[r].cpu(), ref["first_tokens"], head_config.labels))
    model.train(was_training)
    metrics: dict[str, Any] = {"loss": loss_sum / max(len(references), 1), "n_examples": len(references)}
    gold, pred = references, hypotheses
    if task.head == "classify":
        if head_config.multi_label:
            gold, pred = _indicators(references, head_config.labels), _indicators(hypotheses, head_config.labels)
        else:
            gold, pred = [r[0] for r in references], hypotheses
    for name in task.metrics:
        metrics[name] = float(METRICS[name](gold, pred))
        if intervals:
            metrics.update(interval_metrics(name, gold, pred))
    if return_outputs:
        metrics["outputs"] = [{"reference": r, "hypothesis": h} for r, h in zip(references, hypotheses)]
    return metrics


def predicted_labels(probs: torch.Tensor, head: ClassifyHeadConfig) -> list[Any]:
    """(B, n_labels) probabilities -> the best label per row, or (multi-label) the list above the threshold."""
    if head.multi_label:
        return [[head.labels[j] for j in range(len(head.labels)) if row[j] >= head.threshold] for row in probs.tolist()]
    return [head.labels[j] for j in probs.argmax(-1).tolist()]


def _indicators(label_lists: list[list[str]], labels: list[str]):
    import numpy as np

    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(label_lists), len(labels)), dtype=int)
    for r, row in enumerate(label_lists):
        for label in row:
            out[r, index[label]] = 1
    return out
