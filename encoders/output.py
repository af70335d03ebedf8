"""The one contract every modality encoder returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class EncoderOutput:
    """Feature sequence of a batch, as every encoder returns it.

    ``grid`` is set when the ``T`` tokens form a row-major 2-D grid (``T == H * W``), so adapters can pool or
    pixel-shuffle in 2-D; it is ``None`` for 1-D sequences such as audio frames.
    """

    features: torch.Tensor  # (B, T, D)
    mask: torch.Tensor  # (B, T) bool, True = real token
    grid: tuple[int, int] | None = None  # (H, W) with H * W == T

    def __post_init__(self) -> None:
        if self.features.dim() != 3:
            raise ValueError(f"features must be (B, T, D), got shape {tuple(self.features.shape)}")
        if self.mask.shape != self.features.shape[:2]:
            raise ValueError(f"mask shape {tuple(self.mask.shape)} != features (B, T) {tuple(self.features.shape[:2])}")
        if self.grid is not None and self.grid[0] * self.grid[1] != self.features.shape[1]:
            raise ValueError(f"grid {self.grid} does not cover T={self.features.shape[1]} tokens")

    @property
    def lengths(self) -> torch.Tensor:
        """Number of real tokens per item."""
        return self.mask.sum(dim=1)  # (B,)
