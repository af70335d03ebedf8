"""Heads on the backbone's last hidden states: a sequence classifier over pooled states, a token tagger.

Pooling turns (B, L, D) states into one vector per text:
- `last`: the last real (non-pad) token, for decoder LMs, whose last position is the only one that has seen
  the whole text (GPT2ForSequenceClassification does the same);
- `first`: the first real token ([CLS] / <s>) for encoder LMs trained with it (BERT, RoBERTa);
- `mean`: the mean over real tokens, for sentence encoders trained with it (all-MiniLM-L6-v2);
- `auto`: `last` on a decoder LM, `mean` on an encoder LM.
Pooling reads the attention mask, so left and right padding give the same vector.

Single-label heads train with cross-entropy and predict with a softmax; multi-label heads (`multi_label`)
train one sigmoid per label with binary cross-entropy and predict every label whose probability reaches
`threshold`. The tagger is one linear layer per token, trained with cross-entropy where labels != -100.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tasks.head_config import IGNORE_INDEX, ClassifyHeadConfig, Pooling, TagHeadConfig

__all__ = ["IGNORE_INDEX", "ClassifyHeadConfig", "TagHeadConfig", "SequenceClassificationHead", "TokenClassificationHead",
           "pool", "resolve_pooling"]

def resolve_pooling(pooling: Pooling, is_causal: bool) -> str:
    if pooling == "auto":
        return "last" if is_causal else "mean"
    if pooling == "first" and is_causal:
        raise ValueError("heads.classify.pooling 'first' on a decoder LM sees only the first token; use last or mean")
    return pooling


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, L, D) states, (B, L) mask -> (B, D) one vector per row."""
    mask = attention_mask.bool()
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)  # (B, L)
    if pooling == "last":
        index = positions.masked_fill(~mask, -1).amax(1)  # (B,) last real position
    elif pooling == "first":
        index = positions.masked_fill(~mask, mask.shape[1]).amin(1)  # (B,) first real position
    else:
        raise ValueError(f"unknown pooling '{pooling}'; valid: last, first, mean")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index.clamp(min=0)]


class SequenceClassificationHead(nn.Module):
    def __init__(self, width: int, config: ClassifyHeadConfig, is_causal: bool):
        super().__init__()
        if len(config.labels) < (1 if config.multi_label else 2):
            raise ValueError(f"heads.classify needs at least {1 if config.multi_label else 2} labels, got {config.labels}")
        self.pooling = resolve_pooling(config.pooling, is_causal)
        self.multi_label = config.multi_label
        self.dropout = nn.Dropout(config.dropout)
        self.proj = nn.Linear(width, len(config.labels))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L, D), (B, L) -> (B, n_labels) logits."""
        return self.proj(self.dropout(pool(hidden, attention_mask, self.pooling)))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """labels: (B,) class ids, or (B, n_labels) 0/1 targets for a multi-label head."""
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return F.cross_entropy(logits.float(), labels)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float()) if self.multi_label else logits.float().softmax(-1)


class TokenClassificationHead(nn.Module):
    def __init__(self, width: int, config: TagHeadConfig):
        super().__init__()
        if not config.labels:
            raise ValueError("heads.tag has no labels")
        self.dropout = nn.Dropout(config.dropout)
        self.proj = nn.Linear(width, len(config.labels))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, n_tags) logits."""
        return self.proj(self.dropout(hidden))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """labels: (B, L) tag ids, IGNORE_INDEX where a token is not trained."""
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
