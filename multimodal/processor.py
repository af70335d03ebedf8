"""From examples (prompt, target, images, audio clips) to model tensors.

A prompt holds `<image>` / `<audio>` markers where its inputs go. Each marker is expanded into exactly as
many placeholder tokens as the adapter emits for that input, so the model can splice them one to one.
With `encoders.image.tags` (or a fitted object head, `object_tags`), each image's placeholders are followed by the
names the encoder's own heads give it, as text (`TAGS_TEXT`): the LM can read, and copy, a name no caption it
trained on holds.
Targets are appended after the prompt and followed by the end-of-sequence token, which is supervised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from multimodal.model import IGNORE_INDEX, PLACEHOLDERS, MultimodalModel

TAGS_TEXT = "\n(the image encoder sees: {})"  # after an image's tokens when encoders.image.tags > 0


@dataclass
class Example:
    prompt: str  # with one `<image>` / `<audio>` marker per input, in order
    target: str | None = None  # text to learn (training) or None (generation)
    images: list[Any] = field(default_factory=list)  # PIL images, paths or arrays
    audios: list[Any] = field(default_factory=list)  # waveforms at 16 kHz, or paths
    voice: str | None = None  # the speaker's espeak voice ("en-gb+m3"), when known: the accent of phone CTC targets


class Processor:
    def __init__(self, model: MultimodalModel, max_text_tokens: int | None = None):
        self.model = model
        self.tokenizer = model.tokenizer
        self.max_text_tokens = max_text_tokens

    # ---- how many placeholder tokens one input takes
    def n_image_tokens(self) -> int:
        encoder = self.model.encoders["image"]
        return self.model.adapters["image"].n_tokens(encoder.n_tokens, grid=encoder.grid_size)

    def n_audio_tokens(self, n_samples: int) -> int:
        n_frames = self.model.encoders["audio"].output_lengths(torch.tensor([n_samples]))
        return int(self.model.adapters["audio"].n_tokens(n_frames)[0])

    # ---- one example
    def tokenize(self, example: Example, audio_lengths: list[int],
                 image_tags: list[list[str]] | None = None) -> tuple[list[int], list[int]]:
        """(input ids, labels) for one example, placeholders expanded; `image_tags`: each image's tag names."""
        tok = self.tokenizer
        ids = tok(example.prompt, add_special_tokens=True).input_ids
        # Only this model's placeholders are tokens; a marker of a modality it lacks stays plain text (count 0).
        placeholder = self.model.placeholder_ids
        counts = {m: ids.count(placeholder[m]) if m in placeholder else 0 for m in PLACEHOLDERS}
        if counts["image"] != len(example.images) or counts["audio"] != len(example.audios):
            raise ValueError(
                f"prompt {example.prompt!r} has {counts['image']} <image> and {counts['audio']} <audio> "
                f"markers for {len(example.images)} image(s) and {len(example.audios)} audio clip(s)"
            )
        expanded: list[int] = []
        audio_iter, tags_iter = iter(audio_lengths), iter(image_tags or [])
        for i in ids:
            if i == self.model.placeholder_ids.get("image"):
                expanded += [i] * self.n_image_tokens()
                if image_tags is not None:
                    expanded += tok(TAGS_TEXT.format(", ".join(next(tags_iter))), add_special_tokens=False).input_ids
            elif i == self.model.placeholder_ids.get("audio"):
                expanded += [i] * self.n_audio_tokens(next(audio_iter))
            else:
                expanded.append(i)
        labels = [IGNORE_INDEX] * len(expanded)
        if example.target is not None:
            target = tok(example.target, add_special_tokens=False).input_ids
            if self.max_text_tokens is not None:
                target = target[: self.max_text_tokens]
            target.append(tok.eos_token_id)
            expanded += target
            labels += target
        return expanded, labels

    # ---- a batch
    def __call__(self, examples: list[Example], padding_side: str = "right") -> dict[str, torch.Tensor]:
        """Pad to a batch. Training pads right; generation pads left so every row ends at its prompt."""
        from encoders import load_audio, load_image

        images = [load_image(x) for ex in examples for x in ex.images]
        audios = [x if isinstance(x, np.ndarray) else load_audio(x) for ex in examples for x in ex.audios]
        lengths = [len(a) for a in audios]
        pixel_values = self.model.encoders["image"].preprocess(images) if images else None  # (N_images, 3, H, W)
        tags = self.image_tags(pixel_values)
        rows, start, image_start = [], 0, 0
        for ex in examples:
            own_tags = None if tags is None else tags[image_start : image_start + len(ex.images)]
            rows.append(self.tokenize(ex, lengths[start : start + len(ex.audios)], own_tags))
            start += len(ex.audios)
            image_start += len(ex.images)
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (ids, lab) in enumerate(rows):
            span = slice(width - len(ids), width) if padding_side == "left" else slice(0, len(ids))
            input_ids[r, span] = torch.tensor(ids)
            labels[r, span] = torch.tensor(lab)
            attention_mask[r, span] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}  # (B, L) each
        if any(ex.target is not None for ex in examples):
            batch["labels"] = labels
        if images:
            batch["pixel_values"] = pixel_values
        if audios:
            values, mask = self.model.encoders["audio"].preprocess(audios)  # (N_clips, S), (N_clips, S)
            batch["audio_values"], batch["audio_attention_mask"] = values, mask
            ctc = self.ctc_labels(examples)
            if ctc is not None:
                batch["ctc_labels"] = ctc
        return batch

    def image_tags(self, pixel_values: torch.Tensor | None) -> list[list[str]] | None:
        """Each image's tag names (object head, then ImageNet), or None when the model reads no tags."""
        encoder = self.model.encoders["image"] if "image" in self.model.encoders else None
        if pixel_values is None or encoder is None or not encoder.gives_tags:
            return None
        return encoder.tag_names(pixel_values)

    def ctc_labels(self, examples: list[Example]) -> torch.Tensor | None:
        """(N_clips, S) character (or phone) ids of each clip's transcript, -1 padded; None unless every clip has one."""
        if "ctc" not in self.model.heads:
            return None
        from tasks.ctc_units import ctc_units

        with_audio = [ex for ex in examples if ex.audios]
        if any(len(ex.audios) != 1 or ex.target is None for ex in with_audio):
            return None  # CTC supervises one transcript per clip
        units = ctc_units(self.model.config.heads)
        ids = [units.encode(ex.target, ex.voice) for ex in with_audio]
        out = torch.full((len(ids), max(1, max(len(i) for i in ids))), -1, dtype=torch.long)
        for r, row in enumerate(ids):
            out[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out
