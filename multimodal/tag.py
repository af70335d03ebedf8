"""Tagging entities in raw texts with a trained token tagging head (`heads.tag`, task `ner`).

A text is split into words (`tasks.ner.split_words`: word-character runs and single punctuation marks, the
same split the corpus generator uses), tokenized with character offsets, and each word takes the tag predicted
at its first sub-token. BIO decoding (conlleval rules) turns the word tags into entities whose `start` / `end`
are character offsets into the original text, so `text[start:end] == entity.text`.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import torch

from multimodal.classify import length_batches, check_texts
from multimodal.text_heads import encode_words, pad_right, word_tags
from tasks.ner import Entity, entities_of, first_tokens, split_words


@torch.no_grad()
def tag(model, texts: list[str], batch_size: int = 16) -> list[list[Entity]]:
    """Entities of each text, in input order."""
    check_texts(texts)
    head = model.config.heads.tag
    if "tag" not in model.heads or head is None:
        raise ValueError("this model has no trained tagging head (heads.tag); train one with data.task=ner")
    was_training = model.training
    model.eval()
    out: list[list[Entity]] = [[] for _ in texts]
    for index in length_batches(texts, batch_size):
        spans = [split_words(texts[i]) for i in index]
        encoded = [encode_words(model.tokenizer, texts[i], s, head.max_tokens) for i, s in zip(index, spans)]
        ids = [e[0] for e in encoded]
        batch = {"input_ids": pad_right(ids, model.tokenizer.pad_token_id), "attention_mask": pad_right([[1] * len(r) for r in ids], 0)}
        logits = model(**{k: v.to(model.device) for k, v in batch.items()}, head="tag").head_logits.cpu()  # (B, L, T)
        for r, (i, s, (_, token_words)) in enumerate(zip(index, spans, encoded)):
            tags = word_tags(logits[r], first_tokens(token_words, len(s)), head.labels)
            out[i] = entities_of(texts[i], s, tags)
    model.train(was_training)
    return out


def format_entities(texts: list[str], entities: list[list[Entity]], fmt: str = "table") -> str:
    """json: one object per line (text, entities with text/label/start/end); table: each text, then its entities."""
    if fmt == "json":
        return "\n".join(json.dumps({"text": t, "entities": [asdict(e) for e in es]}, ensure_ascii=False)
                         for t, es in zip(texts, entities))
    lines = []
    for text, found in zip(texts, entities):
        lines.append(text)
        lines += [f"  {e.label:<6} {e.start:>4}-{e.end:<4} {e.text}" for e in found] or ["  (no entities)"]
    return "\n".join(lines)
