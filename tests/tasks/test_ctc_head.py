"""The CTC head: a linear one keeps its old keys; the transformer one ignores padding and gives each frame's logits."""

import pytest
import torch

from tasks.ctc_head import TransformerCTCHead, build_ctc_head, ctc_head_logits


def test_depth_zero_is_the_plain_linear_head():
    head = build_ctc_head(16, 5, 0)
    assert isinstance(head, torch.nn.Linear) and set(head.state_dict()) == {"weight", "bias"}


def test_transformer_head_shapes_and_padding_do_not_leak():
    torch.manual_seed(0)
    head = build_ctc_head(16, 5, 2).eval()
    features = torch.randn(2, 7, 16)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    logits = ctc_head_logits(head, features, mask)
    assert logits.shape == (2, 7, 5)
    changed = features.clone()
    changed[1, 4:] = 100.0  # what sits in the padding must not move the real frames' logits
    torch.testing.assert_close(ctc_head_logits(head, changed, mask)[1, :4], logits[1, :4])
    alone = ctc_head_logits(head, features[1:, :4], mask[1:, :4])
    torch.testing.assert_close(alone[0], logits[1, :4], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(head.classify(head.hidden(features, mask)), logits)


def test_transformer_head_rejects_a_width_the_heads_do_not_divide():
    with pytest.raises(ValueError, match="divisible"):
        TransformerCTCHead(12, 5, layers=1, heads=8)
