"""What a CTC head predicts, in one place: letters (tasks/ctc.py) or espeak-ng phones (tasks/phonemes.py).

The model's config (`heads.ctc_units`, `heads.ctc_phone_accent`) picks one `CtcUnits`; its vocabulary sizes the
head, `encode` makes the training targets, `greedy` reads the head without a lexicon, and `reference` is what
that greedy reading is scored against (the transcript for letters, its phones for a phone head).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tasks import ctc, phonemes


@dataclass(frozen=True)
class CtcUnits:
    kind: str = "chars"  # "chars" | "phonemes"
    accent: str = ""  # phones: one espeak-ng accent for every clip, or "" for each clip's voice

    def __post_init__(self):
        if self.kind not in ("chars", "phonemes"):
            raise ValueError(f"CTC units must be 'chars' or 'phonemes', got {self.kind!r}")

    @property
    def vocab(self) -> list[str]:
        return phonemes.VOCAB if self.kind == "phonemes" else ctc.VOCAB

    def encode(self, text: str, voice: str | None = None) -> list[int]:
        """Target ids of one transcript (`voice`: the speaker's espeak voice, which sets a phone head's accent)."""
        return phonemes.encode(text, voice, self.accent) if self.kind == "phonemes" else ctc.encode(text)

    def greedy(self, logits: torch.Tensor, frame_mask: torch.Tensor) -> list[str]:
        """Best-path text per clip: words for letters, phones separated by spaces for a phone head."""
        paths = ctc.greedy_decode(logits, frame_mask, self.vocab)
        return [(phonemes.to_text if self.kind == "phonemes" else ctc.to_text)(p) for p in paths]

    def reference(self, text: str, voice: str | None = None) -> str:
        """What `greedy` output is scored against: the text in the CTC alphabet, or its phones (WER is then the
        phone error rate)."""
        if self.kind == "phonemes":
            return " ".join(phonemes.phones(text, phonemes.accent_of(voice, self.accent)))
        return ctc.normalize(text)


def ctc_units(heads) -> CtcUnits:
    """The units of a model's `heads` config (multimodal.config.HeadsConfig)."""
    return CtcUnits(heads.ctc_units, heads.ctc_phone_accent)
