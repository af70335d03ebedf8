"""benchmarks/asr_speed.py: the 16-bit PCM that pocketsphinx is fed (pocketsphinx itself is not needed)."""

import numpy as np
import soundfile

from . import load_benchmark


def test_a_16_bit_file_comes_back_exactly(tmp_path):
    bench = load_benchmark("asr_speed")
    samples = np.random.default_rng(0).integers(-32768, 32768, size=1600).astype(np.int16)
    samples[:2] = [-32768, 32767]
    soundfile.write(tmp_path / "a.wav", samples, 16000, subtype="PCM_16")
    pcm, duration_s = bench.read_pcm16(tmp_path / "a.wav")
    assert np.array_equal(np.frombuffer(pcm, dtype="<i2"), samples)
    assert duration_s == 0.1


def test_out_of_range_samples_are_clipped_not_wrapped():
    bench = load_benchmark("asr_speed")
    pcm = np.frombuffer(bench.to_pcm16(np.array([-1.5, -1.0, 0.0, 0.5, 1.0, 1.5])), dtype="<i2")
    assert pcm.tolist() == [-32768, -32768, 0, 16384, 32767, 32767]


def test_stereo_at_another_rate_becomes_16_khz_mono(tmp_path):
    bench = load_benchmark("asr_speed")
    t = np.arange(8000) / 8000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    soundfile.write(tmp_path / "b.wav", np.stack([tone, tone], axis=1), 8000, subtype="FLOAT")  # (N, 2), 1 s
    pcm, duration_s = bench.read_pcm16(tmp_path / "b.wav")
    waveform = np.frombuffer(pcm, dtype="<i2") / 32768
    assert len(waveform) == 16000 and duration_s == 1.0
    assert abs(np.sqrt(np.mean(waveform[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01  # the tone's RMS survives
