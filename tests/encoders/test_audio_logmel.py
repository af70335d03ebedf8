"""The log-mel front end (arch speech2text): lengths, masks, batch independence and SpecAugment."""

import dataclasses

import numpy as np
import pytest
import torch

import encoders.audio
from encoders import AudioEncoder, AudioEncoderConfig
from encoders.audio import spec_augment

TINY = AudioEncoderConfig(arch="speech2text", hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                          conv_dim=[32, 32])  # two stride-2 convolutions: 40 ms frames


def test_output_lengths_match_features():
    encoder = AudioEncoder(TINY).eval()
    clips = [np.random.default_rng(0).standard_normal(n).astype(np.float32) for n in (16000, 7000)]
    values, mask = encoder.preprocess(clips)
    assert values.shape[-1] == 80
    out = encoder(values, mask)
    expected = encoder.output_lengths(torch.tensor([16000, 7000]))
    assert out.mask.sum(1).tolist() == expected.tolist() == [25, 11]  # 98 and 42 filterbank frames, stride 4
    assert out.features.shape == (2, 25, 32)


def test_padded_clip_equals_clip_alone():
    encoder = AudioEncoder(TINY).eval()
    rng = np.random.default_rng(1)
    long, short = rng.standard_normal(20000).astype(np.float32), rng.standard_normal(9000).astype(np.float32)
    with torch.no_grad():
        batch = encoder(*encoder.preprocess([long, short]))
        alone = encoder(*encoder.preprocess([short]))
    n = int(alone.mask.sum())
    # Speech2Text's two convolutions do not mask between them: the last real frames see the conv bias of
    # the padding in a batch, zeros alone. Everything before them matches.
    assert torch.allclose(batch.features[1, : n - 2], alone.features[0, : n - 2], atol=1e-3)
    assert batch.mask[1].sum() == n


def test_one_convolution_gives_20_ms_frames():
    config = AudioEncoderConfig(arch="speech2text", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                conv_dim=[32])
    encoder = AudioEncoder(config).eval()
    values, mask = encoder.preprocess([np.zeros(16000, np.float32) + 0.01, np.zeros(7000, np.float32) + 0.01])
    assert encoder(values, mask).mask.sum(1).tolist() == encoder.output_lengths(torch.tensor([16000, 7000])).tolist() == [49, 21]


def test_spec_augment_masks_whole_spans_per_utterance():
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, mask_time_prob=0.2, mask_time_length=20, mask_feature_prob=0.15,
                                 mask_feature_length=12)
    features = torch.ones(4, 1000, 80)  # (B, T, F)
    masked = spec_augment(features, config)
    assert masked.shape == features.shape
    frames_masked = (masked == 0).all(dim=2)  # (B, T): a time mask zeroes every bin of a frame
    bins_masked = (masked == 0).all(dim=1)  # (B, F): a frequency mask zeroes a bin in every frame
    zero = masked == 0
    assert torch.equal(zero, frames_masked[:, :, None] | bins_masked[:, None, :])  # nothing else is touched
    time_share, bin_share = frames_masked.float().mean(1), bins_masked.float().mean(1)  # (B,)
    assert ((time_share > 0.08) & (time_share <= 0.2)).all(), time_share
    assert ((bin_share > 0.02) & (bin_share <= 0.15)).all(), bin_share
    assert not torch.equal(frames_masked[0], frames_masked[1])  # independent draws per utterance


def test_spec_augment_off_and_only_in_training(monkeypatch):
    features = torch.randn(2, 50, 80)
    off = dataclasses.replace(TINY, mask_time_prob=0.0, mask_feature_prob=0.0)
    assert torch.equal(spec_augment(features, off), features)
    calls = []
    monkeypatch.setattr(encoders.audio, "spec_augment", lambda values, config: calls.append(1) or values)
    encoder = AudioEncoder(TINY)
    values, mask = encoder.preprocess([np.random.default_rng(2).standard_normal(8000).astype(np.float32)])
    encoder.eval()(values, mask)
    assert calls == []
    encoder.train()(values, mask)
    assert calls == [1]


def test_bad_spec_augment_settings_are_named():
    for key, value in (("mask_time_prob", 1.5), ("mask_feature_prob", -0.1), ("mask_time_length", 0)):
        with pytest.raises(ValueError, match=f"encoders.audio.{key}"):
            AudioEncoder(dataclasses.replace(TINY, **{key: value}))
