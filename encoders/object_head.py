"""A learned object-name head: which of a vocabulary of object names an image shows, from the encoder's map.

The ImageNet head names a thousand classes, but not the owl stamp or the garbage-truck clip art a caption
corpus names, nor a user's own objects. This head learns a vocabulary of names from captioned images whose
metadata lists their objects (`multimodal fit-tags`), on the same frozen final feature map the ImageNet head
reads, and its confident names go to the LM as tags before the ImageNet ones (`VisionEncoder.tag_names`).

An image may hold several objects, each covering part of it: the map ``(B, C, H, W)`` is pooled over the whole
image and over `REGIONS` x `REGIONS` regions, each pooled vector is scored by the same low-rank linear layer
(C -> `rank` -> N names), and a name's logit is its highest over them (multiple-instance pooling), so a small
object in a corner scores as if it filled the image.
"""

from __future__ import annotations

import torch
from torch import nn

REGIONS = 3  # the map is also pooled over a REGIONS x REGIONS grid of regions


class ObjectHead(nn.Module):
    """Final feature map ``(B, C, H, W)`` -> one logit per name ``(B, N)`` (independent, sigmoid: multi-label)."""

    def __init__(self, channels: int, names: list[str], rank: int = 256):
        super().__init__()
        if not names:
            raise ValueError("an object head needs at least one name")
        self.names = list(names)
        self.register_buffer("mean", torch.zeros(channels))  # per-channel statistics of the fitting images
        self.register_buffer("std", torch.ones(channels))
        self.down = nn.Linear(channels, rank, bias=False)
        self.up = nn.Linear(rank, len(names))
        self.dropout = nn.Dropout(0.0)  # set while fitting

    @staticmethod
    def pool(feature_map: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1 + REGIONS**2, C): the whole image's mean, then each region's."""
        whole = feature_map.mean(dim=(2, 3))[:, None]  # (B, 1, C)
        regions = nn.functional.adaptive_avg_pool2d(feature_map, REGIONS).flatten(2).transpose(1, 2)  # (B, R*R, C)
        return torch.cat([whole, regions], dim=1)

    def score(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, R, C) pooled vectors (`pool`) -> (B, N) logits, each name's highest over the R vectors."""
        normalised = (pooled.float() - self.mean) / self.std
        return self.up(self.down(self.dropout(normalised))).amax(dim=1)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.score(self.pool(feature_map.float()))  # (B, N)

    def top_names(self, logits: torch.Tensor, limit: int, threshold: float) -> list[list[str]]:
        """Each image's names with probability >= threshold, at most `limit`, most likely first."""
        probs = torch.sigmoid(logits)  # (B, N)
        top = probs.topk(min(limit, probs.shape[-1]), dim=-1)
        return [[self.names[i] for p, i in zip(ps, ids) if p >= threshold]
                for ps, ids in zip(top.values.tolist(), top.indices.tolist())]
