"""Generation over mixed inputs: spliced embeddings into the backbone's own `generate`.

transformers does the decoding (KV cache, greedy / beam / sampling, EOS stop, left-padded batches); this
module adds what LM-based captioners and recognisers need on top: a repetition guard that stops a row
caught in a loop ("okay okay okay") and trims the loop from its text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_LOOP_NGRAM = 8  # longest repeated n-gram (in tokens) the repetition guard looks for


@dataclass
class GenerationConfig:
    max_new_tokens: int = 64
    num_beams: int = 1
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    max_repeats: int = 4  # an n-gram repeated this many times in a row at the end is a loop; 0 = no guard


def loop_start(tokens: list[int], max_repeats: int, max_n: int = MAX_LOOP_NGRAM) -> int | None:
    """Index where a tail loop begins repeating, i.e. the end of its first copy; None if no loop.

    A loop is an n-gram (n <= max_n) that occurs `max_repeats` times back to back at the end of `tokens`.
    """
    if max_repeats < 2:
        return None
    for n in range(1, max_n + 1):
        span = n * max_repeats
        if len(tokens) < span:
            break
        tail = tokens[-n:]
        if all(tokens[-span + i * n : len(tokens) - span + (i + 1) * n] == tail for i in range(max_repeats)):
            start = len(tokens) - span  # walk back over further copies of the same n-gram
            while start >= n and tokens[start - n : start] == tail:
                start -= n
            return start + n
    return None


def _stopping_criteria(max_repeats: int):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class RepetitionGuard(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
            rows = input_ids.tolist()  # (B, n_generated): generating from embeddings yields only new tokens
            return torch.tensor([loop_start(r, max_repeats) is not None for r in rows], device=input_ids.device)

    return StoppingCriteriaList([RepetitionGuard()]) if max_repeats >= 2 else None


def generate(model, batch: dict[str, torch.Tensor], config: GenerationConfig | None = None) -> list[str]:
    """Texts generated after each left-padded prompt of `batch` (from `Processor(..., padding_side="left")`)."""
    config = config or GenerationConfig()
    if not model.is_causal:
        raise ValueError(f"backbone '{model.config.backbone.name}' is an encoder LM; it cannot generate text")
    attention_mask = batch["attention_mask"]
    if bool((attention_mask[:, -1] == 0).any()):
        raise ValueError("generation needs left padding: build the batch with padding_side='left'")
    tok = model.tokenizer
    embeds = model.embed(
        batch["input_ids"], batch.get("pixel_values"), batch.get("audio_values"), batch.get("audio_attention_mask")
    )  # (B, L, D_lm)
    sampling = {"temperature": config.temperature, "top_p": config.top_p} if config.do_sample else {}
    out = model.backbone.generate(
        inputs_embeds=embeds,
        attention_mask=attention_mask,
        max_new_tokens=config.max_new_tokens,
        num_beams=config.num_beams,
        do_sample=config.do_sample,
        repetition_penalty=config.repetition_penalty,
        stopping_criteria=_stopping_criteria(config.max_repeats),
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **sampling,
    )  # (B, n_new): only the generated tokens
    texts = []
    for row in out.tolist():
        if tok.eos_token_id in row:
            row = row[: row.index(tok.eos_token_id)]
        cut = loop_start(row, config.max_repeats)
        texts.append(tok.decode(row[:cut] if cut is not None else row, skip_special_tokens=True).strip())
    return texts
