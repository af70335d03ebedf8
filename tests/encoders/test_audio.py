"""AudioEncoder on tiny from-scratch wav2vec2 / HuBERT / WavLM, and parity through a saved checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders import SAMPLE_RATE, AudioEncoder, AudioEncoderConfig, EncoderOutput

# transformers' WavLM attention mixes a bool padding mask with a float position bias inside torch
pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, conv_dim=[32] * 7)
FRAMES_PER_SECOND = 50  # the default conv stack's stride is 320 samples


def tiny_encoder(arch: str = "wav2vec2") -> AudioEncoder:
    torch.manual_seed(0)
    return AudioEncoder(AudioEncoderConfig(arch=arch, **TINY)).eval()


def test_config_defaults_are_plain_data():
    config = AudioEncoderConfig()
    assert config.conv_dim == [256] * 7 and isinstance(config.conv_dim, list)
    assert int(np.prod(config.conv_stride)) == SAMPLE_RATE // FRAMES_PER_SECOND


def test_tiny_wav2vec2_shapes_and_lengths():
    encoder = tiny_encoder()
    assert encoder.out_dim == 32
    input_values = torch.randn(2, SAMPLE_RATE)  # 1 s
    output = encoder(input_values, torch.ones(2, SAMPLE_RATE, dtype=torch.long))
    assert isinstance(output, EncoderOutput) and output.grid is None
    assert output.features.shape == (2, 49, 32)
    assert output.mask.dtype == torch.bool and output.mask.all()
    lengths = encoder.output_lengths(torch.tensor([SAMPLE_RATE, 400, 399, 8000]))
    assert lengths.tolist() == [49, 1, 0, 24]
    assert lengths.dtype == torch.long


def test_output_lengths_match_features():
    encoder = tiny_encoder()
    for n_samples in (400, 1234, 4000, 16001):
        output = encoder(torch.randn(1, n_samples))
        assert output.features.shape[1] == encoder.output_lengths(torch.tensor([n_samples])).item()


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert", "wavlm"])
def test_padded_batch_equals_each_clip_alone(arch):
    encoder = tiny_encoder(arch)
    rng = np.random.default_rng(0)
    waveforms = [rng.standard_normal(12000).astype(np.float32), rng.standard_normal(5000).astype(np.float32)]
    input_values, attention_mask = encoder.preprocess(waveforms)
    assert input_values.shape == (2, 12000) and input_values.dtype == torch.float32
    assert attention_mask.dtype == torch.long and attention_mask.sum(1).tolist() == [12000, 5000]
    with torch.no_grad():
        batch = encoder(input_values, attention_mask)
        short_values, short_mask = encoder.preprocess(waveforms[1:])
        alone = encoder(short_values, short_mask)
    n_short = encoder.output_lengths(torch.tensor(5000)).item()
    assert batch.mask.sum(1).tolist() == encoder.output_lengths(attention_mask.sum(1)).tolist()
    assert batch.mask[1, :n_short].all() and not batch.mask[1, n_short:].any()
    assert alone.features.shape[1] == n_short
    torch.testing.assert_close(batch.features[1, :n_short], alone.features[0], atol=1e-5, rtol=0)


def test_preprocess_normalises_each_utterance():
    encoder = tiny_encoder()
    waveforms = [np.full(3000, 0.5, dtype=np.float32) + np.sin(np.arange(3000) / 7.0), 10 * np.ones(1000)]
    input_values, attention_mask = encoder.preprocess(waveforms)
    first = input_values[0]
    assert abs(first.mean().item()) < 1e-3 and abs(first.std().item() - 1) < 1e-2
    assert torch.all(input_values[1, 1000:] == 0) and attention_mask[1, 1000:].sum() == 0


@pytest.mark.parametrize("arch", ["hubert", "wavlm"])
def test_other_archs_build_and_run(arch):
    encoder = tiny_encoder(arch)
    output = encoder(torch.randn(1, 8000))
    assert output.features.shape == (1, 24, 32)
    assert type(encoder.model).__name__.lower().startswith(arch)


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert", "wavlm"])
@pytest.mark.parametrize("n_samples", [SAMPLE_RATE, 1600])  # 0.1 s is shorter than one time-mask span
def test_training_forward_and_backward(arch, n_samples):
    encoder = tiny_encoder(arch).train()
    assert encoder.model.config.mask_time_prob == encoder.config.mask_time_prob > 0
    output = encoder(torch.randn(2, n_samples))
    output.features.sum().backward()
    assert output.features.shape[1] == encoder.output_lengths(torch.tensor(n_samples)).item()
    assert encoder.model.feature_extractor.conv_layers[0].conv.weight.grad is not None


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert"])
def test_pretrained_dir_parity(tmp_path, arch):
    reference = tiny_encoder(arch).model
    reference.save_pretrained(tmp_path)
    encoder = AudioEncoder(AudioEncoderConfig(name=str(tmp_path))).eval()
    assert type(encoder.model) is type(reference)
    assert encoder.out_dim == 32
    input_values, attention_mask = encoder.preprocess([np.random.default_rng(1).standard_normal(6000)])
    with torch.no_grad():
        expected = reference(input_values, attention_mask=attention_mask).last_hidden_state
        output = encoder(input_values, attention_mask)
    torch.testing.assert_close(output.features, expected)


def test_encoder_deep_copies_after_preprocess():  # (not picklable: transformers' weight-normed pos conv)
    import copy

    encoder = tiny_encoder()
    encoder.preprocess([np.zeros(800, dtype=np.float32)])
    clone = copy.deepcopy(encoder)
    values, mask = clone.preprocess([np.ones(800, dtype=np.float32)])
    assert values.shape == mask.shape == (1, 800)


def test_training_masks_follow_torch_rng_and_leave_numpy_alone():
    """wav2vec2's SpecAugment masks come from transformers' numpy draws: seeded from torch's RNG (which a resumed
    run restores), the same torch seed gives the same frames, and numpy's global state is left as it was."""
    encoder = tiny_encoder().train()
    assert encoder.model.config.mask_time_prob > 0
    values, mask = encoder.preprocess([np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32)] * 2)

    def features(torch_seed: int, numpy_seed: int) -> torch.Tensor:
        torch.manual_seed(torch_seed)
        np.random.seed(numpy_seed)
        out = encoder(values, mask).features
        assert np.random.get_state()[1].tolist() == np.random.RandomState(numpy_seed).get_state()[1].tolist()
        return out

    a = features(0, numpy_seed=1)
    assert torch.equal(a, features(0, numpy_seed=2))  # numpy's global state plays no part
    assert not torch.equal(a, features(1, numpy_seed=1))  # torch's seed decides the masks (and dropout)
