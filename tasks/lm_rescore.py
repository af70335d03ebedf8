"""N-best rescoring: the lexicon search's best few transcripts re-ranked by a causal language model.

The word n-gram LM inside the beam (tasks/ngram_lm.py) knows a few words of context and only the sentences it
was estimated from; it cannot tell "meet" from "meat" or "their" from "there" outside them. The model's own
backbone (SmolLM2) read English at scale. After the search, each of a clip's N best hypotheses gets

    search score + weight * log p_LM(text) + word_bonus * words(text)

and the best is written. The LM's log-probability (natural log) is that of the text alone, after the token that
separates documents in the LM's pretraining, written as a sentence (capital first letter, a full stop): on held-out
speech this choice of start token and form took the rescored WER from 0.051 to 0.043 (README). It favours short
texts, so the word bonus pays each word back. An empty hypothesis (silence) is scored too: as the probability that
the text ends at once (the start token followed by itself), so it no longer wins for free against every text that
pays its words' log-probabilities. This is the field's second-pass rescoring; peers add a large LM the same way.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

Scorer = Callable[[list[str]], list[float]]


def rescore(hypotheses: Sequence[Sequence[tuple[str, float]]], score: Scorer, weight: float,
            word_bonus: float) -> list[str]:
    """The best text per clip. hypotheses: per clip, (text, search score) pairs, best first; `score`: texts -> LM
    log-probabilities (see `causal_lm_scorer`), asked once for every distinct text of all clips."""
    texts = sorted({text for clip in hypotheses for text, _ in clip})
    lm = dict(zip(texts, score(texts))) if texts and weight else {}
    return [max(clip, key=lambda h: h[1] + weight * lm.get(h[0], 0.0) + word_bonus * len(h[0].split()))[0]
            if clip else "" for clip in hypotheses]


def as_sentence(text: str) -> str:
    """The search's lowercase, unpunctuated words written as a sentence: "i'm sure it's here" -> "I'm sure it's
    here." (first letter and the pronoun I capitalized, a full stop at the end). An LM read sentences written so;
    the same words without case or the stop are rarer text to it, and rank worse among themselves (README)."""
    words = ["I" + w[1:] if w == "i" or w.startswith("i'") else w for w in text.split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:] + "." if text else text


def start_token_id(tokenizer) -> int:
    """The token a text follows when it is scored alone: the pretraining document separator "<|endoftext|>" when
    the vocabulary has one (GPT-2, SmolLM, Qwen...), else the BOS token, else the EOS token. An instruct model's BOS
    may open a chat turn instead ("<|im_start|>" in SmolLM2-Instruct), after which plain text is unlikely."""
    separator = tokenizer.get_vocab().get("<|endoftext|>")
    for token_id in (separator, tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return token_id
    raise ValueError("the rescoring LM's tokenizer has no <|endoftext|>, BOS or EOS token to start a text with")


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast pays on `device`: a GPU, or a CPU that multiplies bf16 natively (AVX512-BF16 or AMX;
    elsewhere a CPU emulates it, slower than fp32)."""
    if device.type == "cuda":
        return True
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own checks (private in 2.x)
    return device.type == "cpu" and any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def causal_lm_scorer(lm: torch.nn.Module, tokenizer, batch_tokens: int = 512, bf16: bool | None = None) -> Scorer:
    """texts -> summed natural-log probability of each text, written `as_sentence`, under `lm` (a Hugging Face
    causal LM), after the `start_token_id`. Texts are batched by length, right-padded, at most `batch_tokens`
    tokens a batch (padding included; one text at least), which bounds the (B, L, V) logits: 512 x 49,152 fp32
    logits are 100 MB. `bf16`: run the LM under bf16 autocast (default: where `native_bf16`); on held-out speech
    its scores differ from fp32 by up to 1.3 nats and give the same WER in 0.7x the time (README)."""
    if batch_tokens < 1:
        raise ValueError(f"batch_tokens must be at least 1, got {batch_tokens}")
    start = start_token_id(tokenizer)
    device = next(lm.parameters()).device
    bf16 = native_bf16(device) if bf16 is None else bf16

    @torch.no_grad()
    def score(texts: list[str]) -> list[float]:
        out = [0.0] * len(texts)
        # An empty text is the start token followed by itself: the probability that the text ends at once.
        ids = [[start, *(x or [start])]
               for x in tokenizer([as_sentence(t) for t in texts], add_special_tokens=False)["input_ids"]]
        by_length = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # batches of like lengths: little padding
        for batch_ids in _batches(by_length, [len(x) for x in ids], batch_tokens):
            batch = [ids[j] for j in batch_ids]
            width = max(map(len, batch))
            input_ids = torch.tensor([x + [start] * (width - len(x)) for x in batch], device=device)  # (B, L)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in batch], device=device)  # (B, L)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = lm(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()  # (B, L - 1, V)
            # log-softmax at the taken tokens only: no second (B, L - 1, V) tensor of log-probabilities
            taken = logits.gather(-1, input_ids[:, 1:, None])[..., 0] - logits.logsumexp(-1)  # (B, L - 1)
            for j, total in zip(batch_ids, (taken * mask[:, 1:]).sum(1).tolist()):
                out[j] = total
        return out

    return score


def _batches(order: list[int], lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """`order` (indices, shortest text first) cut into runs whose count x longest length stays within
    `batch_tokens`; a text longer than that alone."""
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[i] <= batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
