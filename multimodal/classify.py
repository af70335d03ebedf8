"""Classifying texts: by the trained head, or by each label's likelihood under the LM (zero- / few-shot).

Head (`heads.classify`, trained with task `classify_head`): the softmax (multi-label: sigmoid) of the head's
logits gives every label's probability; the label is the most probable one (multi-label: every label at or
above the threshold).

Likelihood, for any causal LM and no training: each candidate label is scored by the log-probability the LM
gives its tokens and the answer's end (the chat's end-of-turn token, or a newline in a plain prompt), after a
prompt that lists the labels (tasks/zero_shot.py);
`shots` of (text, label) go before the text as in-context examples. The probability of every label is the
softmax over the label scores. The prompt runs once per text; its KV cache is repeated for the labels, so a
text costs one prompt pass and one short pass over all labels together.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from multimodal.text_heads import encode_texts, pad_right, predicted_labels
from tasks.zero_shot import chat_messages, plain_prompt


@dataclass
class Prediction:
    text: str
    label: Any  # the predicted label; a list of labels for a multi-label head
    probabilities: dict[str, float]  # every label -> its probability, in the model's label order


def check_texts(texts: list[str]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"text {i} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise ValueError(f"text {i} is empty")


def classify(model, texts: list[str], labels: list[str] | None = None, shots: list[tuple[str, str]] | None = None,
             batch_size: int = 16) -> list[Prediction]:
    """Predictions in input order: by the head, or (with `labels`) by label likelihood."""
    check_texts(texts)
    if labels is not None:
        return classify_by_likelihood(model, texts, labels, shots or [], batch_size)
    if shots:
        raise ValueError("in-context shots need candidate labels (zero-/few-shot scoring); pass labels too")
    return classify_by_head(model, texts, batch_size)


def length_batches(texts: list[str], batch_size: int):
    """Index batches of similar-length texts (less padding); results are put back in input order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


@torch.no_grad()
def classify_by_head(model, texts: list[str], batch_size: int = 16) -> list[Prediction]:
    head = model.config.heads.classify
    if "classify" not in model.heads or head is None:
        raise ValueError("this model has no trained classification head (heads.classify); train one with "
                         "data.task=classify_head, or pass candidate labels for zero-shot scoring")
    was_training = model.training
    model.eval()
    out: list[Prediction | None] = [None] * len(texts)
    for index in length_batches(texts, batch_size):
        batch = encode_texts(model.tokenizer, [texts[i] for i in index], head.max_tokens)
        logits = model(**{k: v.to(model.device) for k, v in batch.items()}, head="classify").head_logits
        probs = model.heads["classify"].probabilities(logits).cpu()  # (B, n_labels)
        for i, row, label in zip(index, probs.tolist(), predicted_labels(probs, head)):
            out[i] = Prediction(texts[i], label, dict(zip(head.labels, row)))
    model.train(was_training)
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------------
# Label likelihood


def prompt_ids(tokenizer: Any, text: str, labels: list[str], shots: list[tuple[str, str]]) -> list[int]:
    """Token ids of the prompt: a chat prompt when the tokenizer has a chat template, plain text otherwise."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(chat_messages(text, labels, shots), add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    return list(tokenizer(plain_prompt(text, labels, shots)).input_ids)


def label_ids(tokenizer: Any, label: str) -> list[int]:
    """A label's tokens as the answer: the assistant's turn up to its end token (chat), or " label" + newline."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer(label, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    return tokenizer(" " + label + "\n", add_special_tokens=False).input_ids


@torch.no_grad()
def label_scores(model, texts: list[str], labels: list[str], shots: list[tuple[str, str]] | None = None,
                 batch_size: int = 8) -> torch.Tensor:
    """(N_texts, N_labels) summed log-probabilities of each label's tokens (+ end token) after each prompt."""
    if not model.is_causal:
        raise ValueError(f"backbone '{model.config.backbone.name}' is an encoder LM: label likelihood needs a causal "
                         "(generative) LM such as smollm2-135m-instruct")
    if len(labels) < 2 or len(set(labels)) != len(labels) or any(not str(label).strip() for label in labels):
        raise ValueError(f"candidate labels must be 2 or more distinct non-empty strings, got {labels}")
    tok, backbone = model.tokenizer, model.backbone
    shots = list(shots or [])
    answers = [label_ids(tok, label) for label in labels]
    n_labels = len(labels)
    cont = pad_right(answers, tok.pad_token_id)  # (n_labels, S)
    cont_mask = pad_right([[1] * len(r) for r in answers], 0)  # (n_labels, S)
    was_training = model.training
    model.eval()
    device = model.device
    scores = torch.empty(len(texts), n_labels)
    for index in length_batches(texts, batch_size):
        prompts = [prompt_ids(tok, texts[i], labels, shots) for i in index]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for r, p in enumerate(prompts):  # left padding: every prompt ends at the last column
            ids[r, width - len(p) :] = torch.tensor(p)
            mask[r, width - len(p) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, P)
        out = backbone(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        first = out.logits[:, -1].float().log_softmax(-1)  # (B, V): predicts each label's first token
        b = len(index)
        c, cm = cont.to(device).repeat(b, 1), cont_mask.to(device).repeat(b, 1)  # (B*n, S)
        total = first.repeat_interleave(n_labels, 0).gather(1, c[:, :1]).squeeze(1)  # (B*n,)
        if c.shape[1] > 1:
            cache = out.cache
            cache.batch_repeat_interleave(n_labels)  # (B*n, ...): the prompt once per label
            full_mask = torch.cat([mask.repeat_interleave(n_labels, 0), cm[:, :-1]], 1)  # (B*n, P + S - 1)
            start = mask.sum(-1).repeat_interleave(n_labels, 0).unsqueeze(1)  # (B*n, 1) prompt lengths
            steps = torch.arange(c.shape[1] - 1, device=device).unsqueeze(0)
            rest = backbone(input_ids=c[:, :-1], attention_mask=full_mask, position_ids=start + steps,
                            cache=cache, use_cache=False).logits.float().log_softmax(-1)  # (B*n, S-1, V)
            picked = rest.gather(2, c[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B*n, S-1)
            total = total + (picked * cm[:, 1:]).sum(1)
        scores[index] = total.view(b, n_labels).cpu()
    model.train(was_training)
    return scores


def classify_by_likelihood(model, texts: list[str], labels: list[str], shots: list[tuple[str, str]] | None = None,
                           batch_size: int = 8) -> list[Prediction]:
    labels = [str(label) for label in labels]
    for i, (text, label) in enumerate(shots or []):
        if label not in labels:
            raise ValueError(f"shot {i} ({text[:40]!r}) has label {label!r}, not among the candidate labels {labels}")
    probs = label_scores(model, texts, labels, shots, batch_size).softmax(-1)  # (N, n_labels)
    return [Prediction(text, labels[int(row.argmax())], dict(zip(labels, row.tolist()))) for text, row in zip(texts, probs)]


# ---------------------------------------------------------------------------------------------------------
# Loading and output (the `classify` and `tag` commands)

ZERO_SHOT_DEFAULT = "smollm2-135m-instruct"


def frozen_backbone_model(name: str | Path):
    """A backbone name (preset, hub name, HF dir) -> that LM, frozen, for zero-shot label scoring."""
    import dataclasses

    from multimodal.build import build
    from multimodal.config import BackboneConfig, ComponentTraining, Config, TrainingConfig

    frozen = ComponentTraining(mode="frozen")
    config = Config(backbone=BackboneConfig(name=str(name), kind="causal"),
                    training=dataclasses.replace(TrainingConfig(), backbone=frozen, adapters=frozen, heads=frozen))
    return build(config).eval()


def format_predictions(predictions: list[Prediction], fmt: str = "table") -> str:
    """json: one object per line (text, label, probabilities), in input order; table: label, p, text."""
    if fmt == "json":
        return "\n".join(json.dumps(asdict(p), ensure_ascii=False) for p in predictions)
    rows = []
    for p in predictions:
        label = p.label if isinstance(p.label, str) else ",".join(p.label) or "-"
        prob = p.probabilities[p.label] if isinstance(p.label, str) else max(p.probabilities.values())
        text = " ".join(p.text.split())
        rows.append((label, f"{prob:.3f}", text if len(text) <= 70 else text[:67] + "..."))
    width = max(len("label"), *(len(r[0]) for r in rows))
    return "\n".join([f"{'label':<{width}}  p      text"] + [f"{a:<{width}}  {b}  {c}" for a, b, c in rows])
