"""Explanations, one API across tasks: what an output relied on (`model.explain(...)`, `--explain`).

- Text classification (a classify head): integrated gradients (captum's `LayerIntegratedGradients`) over the
  backbone's input token embeddings, from a baseline text whose tokens are all the pad token except the special
  ones ([CLS], [SEP], <s>...), to the probability of the predicted (or a given) label. Each token's attribution is
  summed over the embedding width, and tokens are merged into words (`tasks.ner.split_words`) through the fast
  tokenizer's character offsets, so `text[start:end] == word`. The attributions add up to
  P(label | text) - P(label | baseline), up to `convergence_delta` (captum's measure of the integral's error).
- Entities (a tag head): the same, for each found entity, to the sum of the logits of its predicted tags at its
  words' first sub-tokens (the tokens the tagger reads).
- Captions: for each word of the caption (teacher-forced after the caption prompt), integrated gradients of the
  word's log-probability with respect to the image tokens the adapter feeds the LM, from a baseline where every
  image token is their mean (a featureless image; zero tokens would not do: the LM's RMSNorm makes a token's
  scale almost irrelevant, so the path from zero is flat but for a jump at its start), summed over the width and
  laid back on the encoder's grid: a heat map over the image, one panel per content word. They add up to
  log P(word | image) - log P(word | baseline), up to the trapezoidal rule's error.
- Speech: the word timestamps of the transcript (the CTC head's alignment, `transcribe(word_timestamps=True)`).

Every explanation renders as highlighted terminal text (`to_terminal`; ANSI colours on a terminal, plain text
when the output is not a tty or NO_COLOR is set), a self-contained HTML page (`to_html`, no external files)
and a PNG (`save_png`); `save(directory, stem)` writes both files. The result types and their rendering are in
`multimodal/explanations.py`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multimodal.explanations import (
    STOP_WORDS,
    CaptionExplanation,
    CaptionWord,
    Explanation,
    SpeechExplanation,
    TagExplanation,
    TextExplanation,
    WordAttribution,
)
from tasks.ner import align_tokens, entities_of, first_tokens, split_words

TEXT_STEPS = 32  # integration steps for text (captum's Gauss-Legendre rule; |delta| ~1e-3 on sentiment-en)
CAPTION_STEPS = 16  # intervals of the trapezoidal rule along the image tokens' path from their mean
INTERNAL_ROWS = 64  # sequences (texts x steps) in one forward/backward pass
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus", ".webm", ".mp4"}


# ---------------------------------------------------------------------------------------------------------
# One entry point


def explain(model, inputs: list[Any], task: str | None = None, target: str | list[str] | None = None,
            steps: int | None = None, batch_size: int = 4, sample_rate: int | None = None) -> list[Explanation]:
    """One explanation per input, in order. `task`: classify, tag, caption or transcribe (default: by what the
    inputs are: texts -> the classify head, else the tag head; images -> caption; audio -> transcribe).
    `target`: the label (classify) or caption (caption) to explain instead of the model's own, one for all inputs
    or one per input. `steps`: integration steps (default 32 for text, 16 for captions). `sample_rate`: of audio
    arrays."""
    if not inputs:
        return []
    task = task or _task_of(model, inputs)
    if task not in ("classify", "tag", "caption", "transcribe"):
        raise ValueError(f"cannot explain task {task!r}: valid: classify, tag, caption, transcribe")
    targets = _targets(target, len(inputs))
    if task in ("tag", "transcribe") and target is not None:
        raise ValueError(f"a target is for classify (a label) and caption (a caption), not {task}")
    if task == "classify":
        return explain_classes(model, inputs, targets, steps or TEXT_STEPS, batch_size)
    if task == "tag":
        return explain_entities(model, inputs, steps or TEXT_STEPS)
    if task == "caption":
        return explain_captions(model, inputs, targets, steps or CAPTION_STEPS)
    return explain_speech(model, inputs, sample_rate)


def _task_of(model, inputs: list[Any]) -> str:
    """What the inputs are: texts -> the classify head (the tag head if there is none, or if the model was trained
    for ner), image paths / PIL images / (H, W[, C]) arrays -> caption, audio paths / 1-D arrays -> transcribe."""
    first = inputs[0] if inputs else None
    suffix = Path(first).suffix.lower() if isinstance(first, (str, os.PathLike)) else ""
    if isinstance(first, str) and suffix not in IMAGE_SUFFIXES | AUDIO_SUFFIXES:
        if "classify" in model.heads and (model.config.data.task != "ner" or "tag" not in model.heads):
            return "classify"
        if "tag" in model.heads:
            return "tag"
        raise ValueError("this model has no classify or tag head to explain a text with")
    is_audio = suffix in AUDIO_SUFFIXES or (isinstance(first, (np.ndarray, torch.Tensor)) and first.ndim == 1)
    return "transcribe" if is_audio else "caption"


def _targets(target: str | list[str] | None, n: int) -> list[str | None]:
    if target is None or isinstance(target, str):
        return [target] * n
    if len(target) != n:
        raise ValueError(f"{len(target)} targets for {n} inputs: give one target, or one per input")
    return list(target)


# ---------------------------------------------------------------------------------------------------------
# Text: integrated gradients over the input embeddings


def _check_texts(texts: list[Any]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"input {i} is a {type(text).__name__} ({str(text)[:40]!r}), not a text")
        if not text.strip():
            raise ValueError(f"input {i} is an empty text")


def _encode(tokenizer, text: str, max_tokens: int) -> tuple[list[int], list[int], list[int | None], list[tuple[int, int]]]:
    """(ids, special-token flags, word index of each token, word spans) of one text."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"explanations need a fast tokenizer (character offsets); {type(tokenizer).__name__} is not one")
    enc = tokenizer(text, truncation=True, max_length=max_tokens, return_offsets_mapping=True,
                    return_special_tokens_mask=True)
    spans = split_words(text)
    token_words = align_tokens([tuple(o) for o in enc.offset_mapping], spans)
    return list(enc.input_ids), list(enc.special_tokens_mask), token_words, spans


def baseline_ids(tokenizer, ids: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    """The integration's start: every token but the special ones replaced by the pad token. (B, L) -> (B, L)."""
    return ids.masked_fill(~special.bool(), tokenizer.pad_token_id)


def _batch(rows: list[list[int]], pad: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long)


def _integrate(model, forward, ids: torch.Tensor, special: torch.Tensor, mask: torch.Tensor, extra: tuple,
               target: list[int] | None, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """captum's LayerIntegratedGradients on the input embedding layer: (B, L) token attributions, (B,) deltas."""
    from captum.attr import LayerIntegratedGradients

    device = model.device
    ids, special, mask = ids.to(device), special.to(device), mask.to(device)
    ig = LayerIntegratedGradients(forward, model.backbone.get_input_embeddings())
    attributions, delta = ig.attribute(ids, baselines=baseline_ids(model.tokenizer, ids, special), target=target,
                                       additional_forward_args=(mask, *extra), n_steps=steps,
                                       internal_batch_size=max(ids.shape[0], INTERNAL_ROWS),
                                       return_convergence_delta=True)
    return attributions.sum(-1).detach().float().cpu(), delta.detach().float().cpu()  # (B, L, D) -> (B, L)


def _words(text: str, spans: list[tuple[int, int]], token_words: list[int | None],
           token_values: list[float]) -> list[WordAttribution]:
    """Token attributions summed into the words they belong to; words without a token (cut off) are left out."""
    totals: dict[int, float] = {}
    for w, value in zip(token_words, token_values):
        if w is not None:
            totals[w] = totals.get(w, 0.0) + value
    return [WordAttribution(text[spans[w][0]:spans[w][1]], *spans[w], totals[w]) for w in sorted(totals)]


def explain_classes(model, texts: list[str], targets: list[str | None] | None = None, steps: int = TEXT_STEPS,
                    batch_size: int = 4) -> list[TextExplanation]:
    """Word attributions to P(label | text), label = the head's prediction or the given target."""
    from multimodal.classify import length_batches

    _check_texts(texts)
    head = model.config.heads.classify
    if "classify" not in model.heads or head is None:
        raise ValueError("this model has no trained classification head (heads.classify) to explain")
    targets = targets or [None] * len(texts)
    for i, t in enumerate(targets):
        if t is not None and t not in head.labels:
            raise ValueError(f"target {t!r} of input {i} is not one of the model's labels {head.labels}")

    def probabilities(ids, mask):
        logits = model(input_ids=ids, attention_mask=mask, head="classify").head_logits  # (B, C)
        return model.heads["classify"].probabilities(logits)

    was_training = model.training
    model.eval()
    out: list[TextExplanation | None] = [None] * len(texts)
    for index in length_batches(texts, batch_size):
        encoded = [_encode(model.tokenizer, texts[i], head.max_tokens) for i in index]
        ids = _batch([e[0] for e in encoded], model.tokenizer.pad_token_id)
        special = _batch([e[1] for e in encoded], 1)  # padding counts as special: the baseline keeps it
        mask = _batch([[1] * len(e[0]) for e in encoded], 0)
        with torch.no_grad():
            probs = probabilities(ids.to(model.device), mask.to(model.device)).float().cpu()  # (B, C)
            base = probabilities(baseline_ids(model.tokenizer, ids, special).to(model.device),
                                 mask.to(model.device)).float().cpu()
        labels = [head.labels.index(targets[i]) if targets[i] is not None else int(probs[r].argmax())
                  for r, i in enumerate(index)]
        values, delta = _integrate(model, probabilities, ids, special, mask, (), labels, steps)
        for r, (i, (_, _, token_words, spans)) in enumerate(zip(index, encoded)):
            out[i] = TextExplanation(texts[i], head.labels[labels[r]], float(probs[r, labels[r]]),
                                     float(base[r, labels[r]]), _words(texts[i], spans, token_words, values[r].tolist()),
                                     float(delta[r]))
    model.train(was_training)
    return out  # type: ignore[return-value]


def explain_entities(model, texts: list[str], steps: int = TEXT_STEPS) -> list[TagExplanation]:
    """For each text, its entities, each with word attributions to the sum of its predicted tags' logits."""
    from multimodal.text_heads import word_tags

    _check_texts(texts)
    head = model.config.heads.tag
    if "tag" not in model.heads or head is None:
        raise ValueError("this model has no trained tagging head (heads.tag) to explain")

    def entity_scores(ids, mask, picks):  # picks (B, L, T): 1 at each (first sub-token, predicted tag) of the entity
        logits = model(input_ids=ids, attention_mask=mask, head="tag").head_logits  # (B, L, T)
        return (logits * picks).sum((1, 2))

    was_training = model.training
    model.eval()
    out = []
    for text in texts:
        ids, special, token_words, spans = _encode(model.tokenizer, text, head.max_tokens)
        first = first_tokens(token_words, len(spans))
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids], device=model.device),
                           attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=model.device),
                           head="tag").head_logits[0].cpu()  # (L, T)
        tags = word_tags(logits, first, head.labels)
        entities = entities_of(text, spans, tags)
        if not entities:
            out.append(TagExplanation(text, []))
            continue
        picks = torch.zeros(len(entities), len(ids), len(head.labels))  # (E, L, T)
        for e, entity in enumerate(entities):
            for w, (start, end) in enumerate(spans):
                if entity.start <= start and end <= entity.end and first[w] >= 0:
                    picks[e, first[w], head.labels.index(tags[w])] = 1.0
        n = len(entities)
        batch_ids, batch_special = torch.tensor([ids] * n), torch.tensor([special] * n)
        mask = torch.ones_like(batch_ids)
        with torch.no_grad():
            scores = entity_scores(batch_ids.to(model.device), mask.to(model.device), picks.to(model.device)).cpu()
            base = entity_scores(baseline_ids(model.tokenizer, batch_ids, batch_special).to(model.device),
                                 mask.to(model.device), picks.to(model.device)).cpu()
        values, delta = _integrate(model, entity_scores, batch_ids, batch_special, mask, (picks.to(model.device),),
                                   None, steps)
        out.append(TagExplanation(text, [
            TextExplanation(text, entity.label, float(scores[e]), float(base[e]),
                            _words(text, spans, token_words, values[e].tolist()), float(delta[e]), entity)
            for e, entity in enumerate(entities)]))
    model.train(was_training)
    return out


# ---------------------------------------------------------------------------------------------------------
# Captions: gradients on the image tokens, back on the encoder's grid


def explain_captions(model, images: list[Any], captions: list[str | None] | None = None,
                     steps: int = CAPTION_STEPS) -> list[CaptionExplanation]:
    """Per image: its caption (generated, or given) and each caption word's heat map over the encoder's grid."""
    from encoders import load_image

    if "image" not in model.encoders:
        raise ValueError("this model has no image encoder (config encoders.image is null) to explain a caption with")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    loaded = []
    for i, source in enumerate(images):
        if not isinstance(source, (str, os.PathLike, np.ndarray)) and not hasattr(source, "convert"):
            raise ValueError(f"input {i} is a {type(source).__name__} ({str(source)[:40]!r}), not an image: give a "
                             "path, a PIL image or an (H, W[, C]) array")
        loaded.append(load_image(source))  # an InputFileError names a file that is not an image
    captions = list(captions or [None] * len(images))
    missing = [i for i, c in enumerate(captions) if c is None]
    if missing:
        generated = model.caption([loaded[i] for i in missing])
        for i, result in zip(missing, generated):
            captions[i] = result.text
    was_training = model.training
    model.eval()
    out = []
    for source, image, text in zip(images, loaded, captions):
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
        with torch.enable_grad():
            out.append(_explain_caption(model, name, image, text or "", steps))
    model.train(was_training)
    return out


def _explain_caption(model, name: str | None, image, text: str, steps: int) -> CaptionExplanation:
    from multimodal.model import IGNORE_INDEX
    from multimodal.processor import Example, Processor
    from tasks import get_task

    batch = Processor(model)([Example(get_task("caption").prompt, target=text, images=[image])])
    device = model.device
    labels = batch.pop("labels")[0]  # (L,): the caption's tokens, then EOS
    rows = steps + 1  # the path's points, baseline (alpha 0) to the image (alpha 1)
    ids, mask = batch["input_ids"].repeat(rows, 1).to(device), batch["attention_mask"].repeat(rows, 1).to(device)
    pixel_values = batch["pixel_values"].to(device)  # (1, 3, S, S): the encoder runs once
    alphas = torch.linspace(0, 1, rows, device=device).view(rows, 1, 1)
    weights = torch.full((rows, 1, 1), 1.0 / steps, device=device)
    weights[[0, -1]] /= 2  # the trapezoidal rule
    held: dict[str, torch.Tensor] = {}

    def path(module, args, output):  # the adapter's (1, T', D) tokens -> (rows, T', D) from their mean to themselves
        tokens, token_mask = output
        held["change"] = tokens.detach() - tokens.detach().mean(1, keepdim=True)  # (1, T', D): image - baseline
        held["leaf"] = (tokens.detach() - (1 - alphas) * held["change"]).requires_grad_()
        return held["leaf"], token_mask.expand(rows, -1)

    hook = model.adapters["image"].register_forward_hook(path)
    try:
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values, return_logits=True).logits
    finally:
        hook.remove()
    log_probs = logits.float().log_softmax(-1)  # (rows, L, V)
    positions = (labels != IGNORE_INDEX).nonzero().flatten().tolist()  # target tokens; token p is predicted at p - 1
    enc = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = split_words(text)
    token_words = align_tokens([tuple(o) for o in enc.offset_mapping], spans)
    grid_tokens = _grid_tokens(model)  # (H, W): the adapter token each encoder cell went into
    words = []
    for w, (start, end) in enumerate(spans):
        picked = [p for p, tw in zip(positions, token_words) if tw == w]
        if not picked:
            continue
        at = torch.tensor(picked, device=device)
        tokens = labels[picked].to(device).view(1, -1, 1).expand(rows, -1, 1)  # (rows, k, 1)
        word_log_prob = log_probs[:, at - 1].gather(-1, tokens).squeeze(-1).sum(-1)  # (rows,)
        grad = torch.autograd.grad(word_log_prob.sum(), held["leaf"], retain_graph=True)[0]  # (rows, T', D)
        token_values = (held["change"][0] * (weights * grad).sum(0)).sum(-1).float().cpu().numpy()  # (T',)
        word, lp = text[start:end], word_log_prob.detach().float().cpu()
        words.append(CaptionWord(word, start, end, float(lp[-1].exp()), float(lp[0].exp()), token_values[grid_tokens],
                                 float(token_values.sum() - (lp[-1] - lp[0])),
                                 word.lower() not in STOP_WORDS and any(c.isalnum() for c in word)))
    return CaptionExplanation(name, text, _seen_image(model.encoders["image"], pixel_values[0]), words)


def _grid_tokens(model) -> np.ndarray:
    """(H, W) index of the adapter token each cell of the image encoder's grid was merged into."""
    height, width = model.encoders["image"].grid_size
    config = model.adapters["image"].config
    ys, xs = np.mgrid[0:height, 0:width]
    if config.reduction == "pixel_shuffle":  # r x r blocks, the grid padded up to multiples of r
        return (ys // config.factor) * math.ceil(width / config.factor) + xs // config.factor
    if config.reduction == "stack":  # runs of `factor` cells in row-major order
        return (ys * width + xs) // config.factor
    return ys * width + xs


def _seen_image(encoder, pixel_values: torch.Tensor) -> np.ndarray:
    """(3, S, S) normalised pixels -> (S, S, 3) in [0, 1], undoing the encoder's normalisation where it is known."""
    x = pixel_values.detach().float().cpu()
    transform = getattr(encoder, "_transform", None)
    norm = next((s for s in getattr(transform, "transforms", []) if hasattr(s, "mean") and hasattr(s, "std")), None)
    mean, std = (norm.mean, norm.std) if norm is not None else (getattr(transform, "image_mean", None),
                                                               getattr(transform, "image_std", None))
    if mean is not None and std is not None:
        x = x * torch.as_tensor(std).view(3, 1, 1) + torch.as_tensor(mean).view(3, 1, 1)
    else:
        x = (x - x.min()) / (x.max() - x.min() + 1e-8)
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


# ---------------------------------------------------------------------------------------------------------
# Speech: the transcript's word timestamps


def explain_speech(model, sources: list[Any], sample_rate: int | None = None) -> list[SpeechExplanation]:
    from encoders import load_audio
    from encoders.audio_io import SAMPLE_RATE

    for i, source in enumerate(sources):
        if not isinstance(source, (str, os.PathLike, np.ndarray, torch.Tensor)):
            raise ValueError(f"input {i} is a {type(source).__name__} ({str(source)[:40]!r}), not audio: give a path "
                             "or a 1-D array")
    out = []
    for source, result in zip(sources, model.transcribe(list(sources), sample_rate=sample_rate, word_timestamps=True)):
        if result.error:
            raise ValueError(result.error)
        words = [w for segment in result.segments for w in (segment.words or [])]
        out.append(SpeechExplanation(result.file, result.text, words, load_audio(source, sample_rate), SAMPLE_RATE))
    return out
