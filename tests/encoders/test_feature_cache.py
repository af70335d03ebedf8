"""The per-clip feature cache of a frozen audio encoder: written once, read back, never for other weights."""

from __future__ import annotations

import pytest
import torch

from encoders import SAMPLE_RATE, AudioEncoder, AudioEncoderConfig

pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")
TINY = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, conv_dim=[32] * 7)


def frozen_encoder(folder, seed: int = 0) -> AudioEncoder:
    torch.manual_seed(seed)
    encoder = AudioEncoder(AudioEncoderConfig(feature_cache=str(folder), **TINY)).eval()
    encoder.requires_grad_(False)
    return encoder


def batch(lengths=(SAMPLE_RATE, 9000)):
    generator = torch.Generator().manual_seed(1)
    values = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        values[row, :n] = torch.randn(n, generator=generator)
        mask[row, :n] = 1
    return values, mask


def test_training_writes_each_clip_once_and_reads_it_back(tmp_path, monkeypatch):
    encoder = frozen_encoder(tmp_path)
    values, mask = batch()
    first = encoder(values, mask)  # grad mode on, every weight frozen: the cache serves
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2 and encoder._cache.misses == 2
    monkeypatch.setattr(encoder, "_encode", lambda *a: pytest.fail("a cached clip was encoded again"))
    second = encoder(values.flip(0), mask.flip(0))  # the same clips in another order and padding
    assert encoder._cache.hits == 2
    torch.testing.assert_close(second.features.flip(0)[:, : first.features.shape[1]], first.features)
    assert second.mask.flip(0).tolist() == first.mask.tolist()


def test_cached_features_equal_computed_ones_up_to_fp16(tmp_path):
    encoder = frozen_encoder(tmp_path)
    values, mask = batch()
    cached = encoder(values, mask)
    with torch.no_grad():  # evaluation and inference compute, and write nothing
        computed = encoder(values, mask)
    assert cached.features.shape == computed.features.shape and cached.mask.tolist() == computed.mask.tolist()
    real = computed.mask.unsqueeze(-1)
    torch.testing.assert_close(cached.features * real, computed.features * real, atol=2e-2, rtol=1e-2)
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2


def test_no_cache_while_the_encoder_trains_and_another_weight_set_gets_its_own_folder(tmp_path):
    encoder = frozen_encoder(tmp_path)
    encoder.requires_grad_(True)
    encoder(*batch())
    assert not list(tmp_path.rglob("*.safetensors"))
    frozen_encoder(tmp_path, seed=0)(*batch())
    frozen_encoder(tmp_path, seed=1)(*batch())
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2  # two namespaces, one per weight set
