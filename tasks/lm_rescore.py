"""N-best rescoring: the lexicon search's best few transcripts re-ranked by a causal language model.

The word n-gram LM inside the beam (tasks/ngram_lm.py) knows a few words of context and only the sentences it
was estimated from; it cannot tell "meet" from "meat" or "their" from "there" outside them. The model's own
backbone (SmolLM2) read English at scale. After the search, each of a clip's N best hypotheses gets

    search score + weight * log p_LM(text) + word_bonus * words(text)

and the best is written. The LM's log-probability (natural log) is that of the text alone, after the token that
separates documents in the LM's pretraining, written as a sentence (capital first letter, a full stop): on held-out
speech this choice of start token and form took the rescored WER from 0.051 to 0.043 (README). It favours short
texts, so the word bonus pays each word back. This is the field's second-pass rescoring; peers add a large LM the
same way.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

Scorer = Callable[[list[str]], list[float]]


def rescore(hypotheses: Sequence[Sequence[tuple[str, float]]], score: Scorer, weight: float,
            word_bonus: float) -> list[str]:
    """The best text per clip. hypotheses: per clip, (text, search score) pairs, best first; `score`: texts -> LM
    log-probabilities (see `causal_lm_scorer`), asked once for every distinct text of all clips."""
    texts = sorted({text for clip in hypotheses for text, _ in clip if text})
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


def causal_lm_scorer(lm: torch.nn.Module, tokenizer, batch_size: int = 16) -> Scorer:
    """texts -> summed natural-log probability of each text, written `as_sentence`, under `lm` (a Hugging Face
    causal LM), after the `start_token_id`. Batches are right-padded."""
    start = start_token_id(tokenizer)

    @torch.no_grad()
    def score(texts: list[str]) -> list[float]:
        device, out = next(lm.parameters()).device, []
        for i in range(0, len(texts), batch_size):
            ids = [[start, *tokenizer(as_sentence(t), add_special_tokens=False)["input_ids"]]
                   for t in texts[i : i + batch_size]]
            width = max(map(len, ids))
            input_ids = torch.tensor([x + [start] * (width - len(x)) for x in ids], device=device)  # (B, L)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids], device=device)  # (B, L)
            logits = lm(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()  # (B, L - 1, V)
            # log-softmax at the taken tokens only: no second (B, L - 1, V) tensor of log-probabilities
            taken = logits.gather(-1, input_ids[:, 1:, None])[..., 0] - logits.logsumexp(-1)  # (B, L - 1)
            out += (taken * mask[:, 1:]).sum(1).tolist()
        return out

    return score
