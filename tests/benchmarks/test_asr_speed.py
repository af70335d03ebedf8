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


def test_ctc_lm_child_transcribes_with_the_lexicon_and_lm(tmp_path, capsys):
    import json

    import multimodal as mm
    from tasks.ngram_lm import write_arpa

    from ..conftest import ROOT

    bench = load_benchmark("asr_speed")
    mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "backbone.overrides.initializer_range=0.5"]).save(tmp_path / "m")
    soundfile.write(tmp_path / "a.wav", 0.3 * np.random.default_rng(0).standard_normal(16000).astype(np.float32), 16000)
    (tmp_path / "words.txt").write_text("the cat sat\na hat\n")
    write_arpa(["the cat sat", "a hat"], tmp_path / "words.arpa")
    for system in bench.SEARCHES:  # ctc-lm, and ctc-rescore with the tiny backbone re-ranking the n best
        bench.child(system, [str(tmp_path / "a.wav")], str(tmp_path / "m"), 2, 1, True,
                    str(tmp_path / "words.txt"), str(tmp_path / "words.arpa"))
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result["duration_s"] == 1.0 and result["texts"][0], (system, result)
        assert set(result["texts"][0].split()) <= {"the", "cat", "sat", "a", "hat"}, (system, result)
