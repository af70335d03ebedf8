import pytest
import torch

from encoders import EncoderOutput
from multimodal.adapters import Adapter, pixel_shuffle, stack_frames
from multimodal.config import AdapterConfig


def test_pixel_shuffle_merges_square_blocks():
    h, w, d, r = 4, 6, 3, 2
    x = torch.arange(h * w * d, dtype=torch.float32).reshape(1, h * w, d)  # row-major grid
    y, grid = pixel_shuffle(x, (h, w), r)
    assert grid == (2, 3) and y.shape == (1, 6, d * r * r)
    grid_x = x.reshape(h, w, d)
    expected_first = torch.cat([grid_x[0, 0], grid_x[0, 1], grid_x[1, 0], grid_x[1, 1]])  # the top-left 2x2 block
    assert torch.equal(y[0, 0], expected_first)
    expected_last = torch.cat([grid_x[2, 4], grid_x[2, 5], grid_x[3, 4], grid_x[3, 5]])
    assert torch.equal(y[0, -1], expected_last)


def test_pixel_shuffle_pads_odd_grids():
    y, grid = pixel_shuffle(torch.ones(2, 49, 8), (7, 7), 2)  # EfficientNet's 7x7 map
    assert grid == (4, 4) and y.shape == (2, 16, 32)
    assert y[0, -1].sum() == 8  # bottom-right block: 1 real token, 3 zero pads


def test_pixel_shuffle_rejects_wrong_grid():
    with pytest.raises(ValueError, match="does not match"):
        pixel_shuffle(torch.ones(1, 10, 4), (3, 3), 2)


def test_stack_frames_lengths_and_mask():
    x = torch.randn(2, 7, 4)
    mask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
    y, m = stack_frames(x, mask, 3)
    assert y.shape == (2, 3, 12)
    assert m.tolist() == [[True, True, True], [True, False, False]]
    assert torch.equal(y[0, 0], x[0, :3].flatten())
    assert torch.equal(y[0, 2], torch.cat([x[0, 6], torch.zeros(8)]))  # last frame padded with zeros
    assert torch.equal(y[1, 1], torch.zeros(12))  # padded frames never leak into real tokens


@pytest.mark.parametrize("projector", ["linear", "mlp", "swiglu"])
@pytest.mark.parametrize("norm", ["none", "layernorm", "rmsnorm"])
def test_adapter_shapes(projector, norm):
    image = Adapter(AdapterConfig(reduction="pixel_shuffle", factor=2, projector=projector, norm=norm), 16, 24)
    tokens, mask = image(EncoderOutput(torch.randn(3, 16, 16), torch.ones(3, 16, dtype=torch.bool), grid=(4, 4)))
    assert tokens.shape == (3, 4, 24) and mask.all() and image.n_tokens(16, grid=(4, 4)) == 4
    audio = Adapter(AdapterConfig(reduction="stack", factor=5, projector=projector, norm=norm), 16, 24)
    mask_in = torch.arange(23).expand(2, 23) < torch.tensor([[23], [9]])
    tokens, mask = audio(EncoderOutput(torch.randn(2, 23, 16), mask_in))
    assert tokens.shape == (2, 5, 24)
    assert mask.sum(1).tolist() == [audio.n_tokens(23), audio.n_tokens(9)] == [5, 2]


def test_out_norm_keeps_tokens_at_the_given_scale():
    config = AdapterConfig(reduction="stack", factor=2, projector="mlp", out_norm="rmsnorm")
    adapter = Adapter(config, 8, 16, out_scale=0.13)
    for loudness in (0.01, 1.0, 1000.0):  # whatever the projector's output scale, each token has RMS = the gain
        tokens, _ = adapter(EncoderOutput(loudness * torch.randn(2, 6, 8), torch.ones(2, 6, dtype=torch.bool)))
        assert torch.allclose(tokens.pow(2).mean(-1).sqrt(), torch.full((2, 3), 0.13), rtol=1e-3)
    plain = Adapter(AdapterConfig(reduction="stack", factor=2, projector="mlp", norm="none"), 8, 16)
    loud, _ = plain(EncoderOutput(1000.0 * torch.randn(2, 6, 8), torch.ones(2, 6, dtype=torch.bool)))
    assert loud.pow(2).mean(-1).sqrt().min() > 1.0  # without it the scale passes through
    with pytest.raises(ValueError, match="out_norm 'batchnorm'"):
        Adapter(AdapterConfig(out_norm="batchnorm"), 8, 16)


def test_build_starts_out_norm_at_the_lm_embedding_scale():
    from multimodal import build
    from multimodal.config import load_config
    from tests.conftest import TINY

    model = build(load_config(TINY, ["adapters.audio.out_norm=rmsnorm"]))
    embeddings = model.backbone.get_input_embeddings().weight.detach()
    rms = embeddings.pow(2).mean(-1).sqrt().mean()
    assert torch.allclose(model.adapters["audio"].out_norm.weight, rms.expand(embeddings.shape[1]))
    assert isinstance(model.adapters["image"].out_norm, torch.nn.Identity)  # off by default
