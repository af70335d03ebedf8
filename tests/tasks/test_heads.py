"""Pooling, the classification and tagging heads, and classification labels."""

import pytest
import torch

from tasks.classify_head import check_labels, label_set, parse_labels
from tasks.heads import (
    ClassifyHeadConfig, SequenceClassificationHead, TagHeadConfig, TokenClassificationHead, pool, resolve_pooling,
)


@pytest.mark.parametrize("pooling", ["last", "first", "mean"])
def test_pooling_is_the_same_for_left_and_right_padding(pooling):
    torch.manual_seed(0)
    real = [torch.randn(3, 4), torch.randn(5, 4)]  # two rows of 3 and 5 tokens
    right = torch.zeros(2, 5, 4)
    left = torch.zeros(2, 5, 4)
    mask_r, mask_l = torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long)
    for i, r in enumerate(real):
        right[i, : len(r)], mask_r[i, : len(r)] = r, 1
        left[i, 5 - len(r) :], mask_l[i, 5 - len(r) :] = r, 1
    expected = {"last": torch.stack([r[-1] for r in real]), "first": torch.stack([r[0] for r in real]),
                "mean": torch.stack([r.mean(0) for r in real])}[pooling]
    torch.testing.assert_close(pool(right, mask_r, pooling), expected)
    torch.testing.assert_close(pool(left, mask_l, pooling), expected)


def test_auto_pooling_and_first_on_a_decoder():
    assert resolve_pooling("auto", is_causal=True) == "last"
    assert resolve_pooling("auto", is_causal=False) == "mean"
    with pytest.raises(ValueError, match="first token"):
        resolve_pooling("first", is_causal=True)


def test_heads_shapes_and_losses():
    torch.manual_seed(0)
    hidden, mask = torch.randn(2, 6, 8), torch.ones(2, 6, dtype=torch.long)
    single = SequenceClassificationHead(8, ClassifyHeadConfig(labels=["a", "b", "c"]), is_causal=True)
    logits = single(hidden, mask)
    assert logits.shape == (2, 3)
    assert single.loss(logits, torch.tensor([0, 2])) > 0
    torch.testing.assert_close(single.probabilities(logits).sum(-1), torch.ones(2))
    multi = SequenceClassificationHead(8, ClassifyHeadConfig(labels=["a", "b"], multi_label=True), is_causal=False)
    logits = multi(hidden, mask)
    assert multi.loss(logits, torch.tensor([[1.0, 0.0], [1.0, 1.0]])) > 0
    assert ((multi.probabilities(logits) > 0) & (multi.probabilities(logits) < 1)).all()
    tagger = TokenClassificationHead(8, TagHeadConfig(labels=["O", "B-X", "I-X"]))
    logits = tagger(hidden, mask)
    assert logits.shape == (2, 6, 3)
    labels = torch.full((2, 6), -100)
    labels[0, 1] = 2
    assert torch.isfinite(tagger.loss(logits, labels))
    with pytest.raises(ValueError, match="at least 2 labels"):
        SequenceClassificationHead(8, ClassifyHeadConfig(labels=["a"]), is_causal=True)


def test_labels_single_and_multi():
    assert parse_labels("spam", multi_label=False) == ["spam"]
    assert parse_labels("a | b", multi_label=True) == ["a", "b"]
    assert parse_labels(["a", "b"], multi_label=True) == ["a", "b"]
    assert parse_labels([], multi_label=True) == []
    with pytest.raises(ValueError, match="must be one label"):
        parse_labels(["a", "b"], multi_label=False)
    assert label_set(["b", "a", "b"], ["x", "y", "z"], multi_label=False) == ["a", "b"]


def test_unknown_label_names_the_row_and_the_label():
    with pytest.raises(ValueError, match=r"eval data: row 1 \('the sun is out'\): unknown label 'weathr'.*known labels: fruit, weather"):
        check_labels(["fruit", "weathr"], ["apples", "the sun is out"], ["fruit", "weather"], False, "eval data")
