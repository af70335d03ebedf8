"""The text heads' settings (`heads.classify`, `heads.tag` in the config): plain dataclasses, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

IGNORE_INDEX = -100  # a token without a training label (padding, special tokens, later sub-tokens)
Pooling = Literal["auto", "last", "first", "mean"]


@dataclass
class ClassifyHeadConfig:
    """A classifier over pooled backbone states (`heads.classify`)."""

    labels: list[str] = field(default_factory=list)  # empty: taken from the training data, sorted
    pooling: Pooling = "auto"  # auto = last (decoder LM) or mean (encoder LM)
    multi_label: bool = False  # one sigmoid per label + BCE; a row's `label` is a list (or "a|b")
    threshold: float = 0.5  # multi-label: labels predicted at probability >= threshold
    dropout: float = 0.1
    max_tokens: int = 256  # longer texts are cut


@dataclass
class TagHeadConfig:
    """A token tagger for named entities (`heads.tag`), BIO tags per word."""

    labels: list[str] = field(default_factory=list)  # BIO tags: O, B-PER, I-PER, ...; empty: from the training data
    all_subtokens: bool = False  # train every sub-token of a word (B- becomes I- after the first), or the first only
    dropout: float = 0.1
    max_tokens: int = 256  # words beyond this many tokens are not tagged (predicted O)
