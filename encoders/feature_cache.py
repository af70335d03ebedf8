"""Frozen encoder features on disk, one file per clip: a frozen encoder runs once per clip, not once per epoch.

A frozen Whisper base costs ~0.45 s per 10 s of audio on this CPU; over many epochs that is most of a speech
training step, while the adapter and the LM's LoRA behind it are what learns. With `encoders.audio.feature_cache`
set, `AudioEncoder` encodes each clip alone the first time it is seen in training and reads it back afterwards.

- Key: the sha1 of the clip's real input values (its samples, or log-mel frames) with their shape, under a
  namespace that is the sha1 of the encoder's arch, name and every weight. Other weights, other folder: a
  cache never answers for another encoder. Augmented audio is a new clip (a new file each time), so the
  recipe that uses the cache augments at corpus time, not in the loader.
- Used only while gradients are on and no encoder weight trains (frozen-encoder training). Evaluation and
  inference (no_grad) compute, so a user's audio is never written to the cache.
- Stored in fp16 (safetensors), written to a temporary file and renamed, so a crash leaves no half file.
  A clip's features depend only on the clip (Whisper encodes clip by clip; the others take attention masks),
  so cached and computed features agree up to fp16 rounding.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Callable

import torch

from .cache import cache_dir
from .output import EncoderOutput

STORED_DTYPE = torch.float16
AUTO = "auto"  # the folder `features/` under $MULTIMODAL_CACHE (default ~/.cache/multimodal)


def cache_folder(setting: str) -> Path:
    if setting == AUTO:
        return cache_dir() / "features"
    return Path(setting).expanduser()


def weights_fingerprint(module: torch.nn.Module, *identity: str) -> str:
    """sha1 of `identity` strings and every parameter and buffer (names, shapes and bytes)."""
    digest = hashlib.sha1("\0".join(identity).encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class FeatureCache:
    """Per-clip encoder outputs under `folder/namespace/`; `encode` fills a batch from it, computing misses."""

    def __init__(self, folder: str | Path, namespace: str):
        self.folder = Path(folder) / namespace[:16]
        self.hits = self.misses = 0

    def _path(self, clip: torch.Tensor) -> Path:
        digest = hashlib.sha1(f"{tuple(clip.shape)}{clip.dtype}".encode())
        digest.update(clip.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        key = digest.hexdigest()
        return self.folder / key[:2] / f"{key}.safetensors"

    def encode(self, encode_clip: Callable[[torch.Tensor, torch.Tensor], EncoderOutput], values: torch.Tensor,
               attention_mask: torch.Tensor, n_frames: int) -> EncoderOutput:
        """The batch's features (B, n_frames, D): each row's real part read from the cache or encoded alone."""
        # values: (B, N) samples or (B, N, F) frames; attention_mask: (B, N), 1 = real
        from safetensors.torch import load_file, save_file

        rows = []
        for row in range(values.shape[0]):
            length = int(attention_mask[row].sum())
            clip = values[row, :length]
            path = self._path(clip)
            if path.is_file():
                self.hits += 1
                rows.append(load_file(path)["features"].to(values.device))
                continue
            self.misses += 1
            out = encode_clip(clip.unsqueeze(0), attention_mask[row : row + 1, :length])
            features = out.features[0, : int(out.mask[0].sum())].detach()  # (T_clip, D)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
            save_file({"features": features.to(STORED_DTYPE).cpu().contiguous()}, tmp)
            os.replace(tmp, path)
            rows.append(features.to(STORED_DTYPE))  # the same rounding as a later read
        width = rows[0].shape[-1]
        features = values.new_zeros(len(rows), n_frames, width, dtype=torch.float32)  # (B, T, D)
        mask = torch.zeros(len(rows), n_frames, dtype=torch.bool, device=values.device)  # (B, T)
        for row, clip_features in enumerate(rows):
            features[row, : len(clip_features)] = clip_features.float()
            mask[row, : len(clip_features)] = True
        return EncoderOutput(features=features, mask=mask, grid=None)
