"""Adapters: the only place where an encoder's width meets the LM's width.

An adapter first reduces the number of tokens (pixel shuffle on a 2-D grid, frame stacking on a sequence),
then normalises and projects each reduced token to the LM's width (linear, GELU MLP, or SwiGLU MLP).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from encoders import EncoderOutput
from multimodal.config import AdapterConfig


def pixel_shuffle(features: torch.Tensor, grid: tuple[int, int], r: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Merge each r x r block of a row-major token grid into one token r*r times as wide.

    A grid whose sides are not multiples of r is zero-padded at the bottom and right first.
    """
    b, t, d = features.shape  # (B, H*W, D)
    h, w = grid
    if h * w != t:
        raise ValueError(f"pixel_shuffle: grid {h}x{w} does not match {t} tokens")
    x = features.reshape(b, h, w, d)
    hp, wp = math.ceil(h / r) * r, math.ceil(w / r) * r
    if (hp, wp) != (h, w):
        x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h))
    x = x.reshape(b, hp // r, r, wp // r, r, d).permute(0, 1, 3, 2, 4, 5)  # (B, H/r, W/r, r, r, D)
    x = x.reshape(b, (hp // r) * (wp // r), r * r * d)  # (B, T/r², D·r²)
    return x, (hp // r, wp // r)


def stack_frames(features: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate k consecutive frames into one; a stacked frame is real if its first frame is real."""
    b, t, d = features.shape  # (B, T, D)
    t_out = math.ceil(t / k)
    pad = t_out * k - t
    x = F.pad(features * mask.unsqueeze(-1), (0, 0, 0, pad))  # padded frames are zero
    m = F.pad(mask, (0, pad), value=False)
    return x.reshape(b, t_out, k * d), m.reshape(b, t_out, k)[:, :, 0]  # (B, T/k, D·k), (B, T/k)


def reduced_length(n_tokens: int | torch.Tensor, k: int) -> int | torch.Tensor:
    """Number of tokens left from n after stacking k frames (ceil)."""
    return (n_tokens + k - 1) // k


class SwiGLU(nn.Module):
    def __init__(self, dim_in: int, hidden: int, dim_out: int):
        super().__init__()
        self.gate = nn.Linear(dim_in, hidden, bias=False)
        self.up = nn.Linear(dim_in, hidden, bias=False)
        self.down = nn.Linear(hidden, dim_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


def build_projector(kind: str, dim_in: int, hidden: int, dim_out: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(dim_in, dim_out)
    if kind == "mlp":  # LLaVA-1.5: two layers with a GELU between
        return nn.Sequential(nn.Linear(dim_in, hidden), nn.GELU(), nn.Linear(hidden, dim_out))
    if kind == "swiglu":  # Ultravox
        return SwiGLU(dim_in, hidden, dim_out)
    raise ValueError(f"unknown projector '{kind}'; valid: linear, mlp, swiglu")


class Adapter(nn.Module):
    """Encoder features (B, T, D_enc) -> LM input tokens (B, T', D_lm) with their mask (B, T')."""

    def __init__(self, config: AdapterConfig, in_dim: int, out_dim: int, out_scale: float = 1.0):
        """`out_scale`: the starting gain of `out_norm` (build() passes the RMS of the LM's token embeddings)."""
        super().__init__()
        if config.factor < 1:
            raise ValueError(f"adapter factor must be >= 1, got {config.factor}")
        self.config = config
        merged = {"none": 1, "pixel_shuffle": config.factor**2, "stack": config.factor}[config.reduction]
        reduced_dim = in_dim * merged
        if config.norm == "layernorm":
            self.norm = nn.LayerNorm(reduced_dim)
        elif config.norm == "rmsnorm":
            self.norm = nn.RMSNorm(reduced_dim)
        else:
            self.norm = nn.Identity()
        self.proj = build_projector(config.projector, reduced_dim, config.hidden_dim or out_dim, out_dim)
        if config.out_norm == "rmsnorm":
            self.out_norm = nn.RMSNorm(out_dim)
            nn.init.constant_(self.out_norm.weight, out_scale)
        elif config.out_norm == "none":
            self.out_norm = nn.Identity()
        else:
            raise ValueError(f"unknown adapter out_norm {config.out_norm!r}; valid: none, rmsnorm")
        self.out_dim = out_dim

    def n_tokens(self, n_encoder_tokens: int | torch.Tensor, grid: tuple[int, int] | None = None):
        """Tokens this adapter emits for an encoder output of n tokens (or a grid)."""
        c = self.config
        if c.reduction == "pixel_shuffle":
            if grid is None:
                raise ValueError("pixel_shuffle needs the encoder's token grid")
            return math.ceil(grid[0] / c.factor) * math.ceil(grid[1] / c.factor)
        if c.reduction == "stack":
            return reduced_length(n_encoder_tokens, c.factor)
        return n_encoder_tokens

    def forward(self, enc: EncoderOutput) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = enc.features, enc.mask  # (B, T, D_enc), (B, T)
        c = self.config
        if c.reduction == "pixel_shuffle":
            if enc.grid is None:
                raise ValueError("pixel_shuffle adapter needs an encoder that returns a 2-D token grid")
            x, _ = pixel_shuffle(x, enc.grid, c.factor)
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        elif c.reduction == "stack":
            x, mask = stack_frames(x, mask, c.factor)
        return self.out_norm(self.proj(self.norm(x))), mask  # (B, T', D_lm), (B, T')
