"""CTC on characters: the speech encoder's own fast decoder, and its first training stage.

A linear head over encoder frames predicts one of `VOCAB` (index 0 is the CTC blank) per frame; greedy
decoding collapses repeats and drops blanks. Character emission frames give word start/end times.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

BLANK = 0
VOCAB = ["<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz"]  # index -> character
CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB) if i != BLANK}
_NOT_IN_VOCAB = re.compile(r"[^a-z' ]+")


def normalize(text: str) -> str:
    """Lowercase, letters/apostrophes/spaces only, single spaces: the CTC target alphabet."""
    text = _NOT_IN_VOCAB.sub(" ", text.lower().replace("-", " "))
    return " ".join(text.split())


def encode(text: str) -> list[int]:
    return [CHAR_TO_ID[c] for c in normalize(text)]


def ctc_loss(logits: torch.Tensor, frame_mask: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
    """Mean CTC loss per target character over a batch.

    logits (N, T, V) per frame; frame_mask (N, T) real frames; targets: character ids per clip.
    """
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, N, V)
    input_lengths = frame_mask.sum(1)  # (N,)
    target_lengths = torch.tensor([len(t) for t in targets], device=logits.device)
    flat = torch.tensor([i for t in targets for i in t], dtype=torch.long, device=logits.device)
    loss = F.ctc_loss(log_probs, flat, input_lengths, target_lengths, blank=BLANK, reduction="sum", zero_infinity=True)
    return loss / target_lengths.sum().clamp(min=1)


def greedy_decode(logits: torch.Tensor, frame_mask: torch.Tensor, vocab: list[str] = VOCAB) -> list[list[tuple[str, int]]]:
    """Best path per clip as (token, frame) pairs, repeats collapsed and blanks dropped; tokens from `vocab`
    (characters, or tasks.phonemes.VOCAB)."""
    best = logits.argmax(-1).tolist()  # (N, T)
    lengths = frame_mask.sum(1).tolist()
    out = []
    for path, n in zip(best, lengths):
        chars, previous = [], BLANK
        for t, i in enumerate(path[:n]):
            if i != previous and i != BLANK:
                chars.append((vocab[i], t))
            previous = i
        out.append(chars)
    return out


def to_text(chars: list[tuple[str, int]]) -> str:
    return " ".join("".join(c for c, _ in chars).split())


def word_times(chars: list[tuple[str, int]], frame_s: float) -> list[tuple[str, float, float]]:
    """(word, start_s, end_s) from the frames where each word's first and last characters were emitted."""
    words, current = [], []
    for c, t in [*chars, (" ", -1)]:
        if c == " ":
            if current:
                words.append(("".join(ch for ch, _ in current), current[0][1] * frame_s, (current[-1][1] + 1) * frame_s))
            current = []
        else:
            current.append((c, t))
    return words


def align_words(log_probs: torch.Tensor, words: list[str], frame_s: float) -> list[tuple[float, float] | None]:
    """(start_s, end_s) of each of `words` in one clip's CTC output, by forced alignment (Viterbi) of the text.

    log_probs: (T, V) log-softmax over `VOCAB` for the clip's real frames. `words` come from any decoder (the LM's
    text with its case and punctuation, say): each is normalised to the CTC alphabet, the whole is aligned at
    once, and a word spans its first character's first frame to its last character's last. A word with
    nothing to align (a lone "—") is None; so is every word when the text needs more frames than the clip has.
    """
    import torchaudio.functional as AF

    spelled = [normalize(w) for w in words]
    spans, ids = [], []
    for text in spelled:
        if not text:
            spans.append(None)
            continue
        if ids:
            ids.append(CHAR_TO_ID[" "])
        spans.append((len(ids), len(ids) + len(text)))
        ids += [CHAR_TO_ID[c] for c in text]
    if not ids:
        return [None] * len(words)
    repeats = sum(a == b for a, b in zip(ids, ids[1:]))  # a repeated character needs a blank between
    if len(ids) + repeats > log_probs.shape[0]:
        return [None] * len(words)
    path, _ = AF.forced_align(log_probs.unsqueeze(0).float().cpu(), torch.tensor([ids], dtype=torch.int32), blank=BLANK)
    frames_of: list[list[int]] = [[] for _ in ids]  # the frames each target character holds
    position, previous = -1, BLANK
    for t, token in enumerate(path[0].tolist()):
        if token != BLANK and token != previous:
            position += 1  # a new target character starts (a repeat after a blank is the next one)
        if token != BLANK:
            frames_of[position].append(t)
        previous = token
    return [None if span is None else (frames_of[span[0]][0] * frame_s, (frames_of[span[1] - 1][-1] + 1) * frame_s)
            for span in spans]
