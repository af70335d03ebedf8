import numpy as np
import pytest

from encoders.augment import (
    NOISE_EXPONENTS,
    SAMPLE_RATE,
    AudioAugmentConfig,
    add_noise,
    add_reverb,
    augment,
    band_limit,
    change_speed,
    coloured_noise,
)

ALL_ON = dict(enabled=True, noise_prob=1.0, speed_prob=1.0, gain_prob=1.0, reverb_prob=1.0, bandlimit_prob=1.0)


def speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Tones under a syllable-rate envelope, plus a little noise: float32 (N,) at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 720, 1500), start=1))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    return (0.3 * voice * envelope + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def band_energy(waveform: np.ndarray, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(waveform)) ** 2
    frequency = np.fft.rfftfreq(len(waveform), 1 / SAMPLE_RATE)
    return float(spectrum[(frequency >= low_hz) & (frequency < high_hz)].sum())


def test_same_seed_same_audio_and_different_seed_differs():
    config = AudioAugmentConfig(**ALL_ON)
    wave = speechlike()
    first = augment(wave, config, np.random.default_rng(7))
    again = augment(wave, config, np.random.default_rng(7))
    other = augment(wave, config, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.allclose(first, other)


def test_disabled_is_identity():
    wave = speechlike()
    out = augment(wave, AudioAugmentConfig(enabled=False, **{k: v for k, v in ALL_ON.items() if k != "enabled"}),
                  np.random.default_rng(0))
    np.testing.assert_array_equal(out, wave)
    assert out.dtype == np.float32


@pytest.mark.parametrize("colour", list(NOISE_EXPONENTS))
@pytest.mark.parametrize("snr_db", [0.0, 5.0, 17.5, 30.0])
def test_noise_snr_matches_target(colour, snr_db):
    wave = speechlike().astype(np.float64)
    noisy = add_noise(wave, snr_db, colour, np.random.default_rng(1))
    noise = noisy - wave
    measured = 10 * np.log10(np.mean(wave**2) / np.mean(noise**2))
    assert abs(measured - snr_db) < 1.0


def test_noise_colours_have_their_spectral_slope():
    slopes = {}
    for colour in NOISE_EXPONENTS:
        noise = coloured_noise(SAMPLE_RATE * 4, colour, np.random.default_rng(0))
        slopes[colour] = 10 * np.log10(band_energy(noise, 100, 200) / band_energy(noise, 1600, 3200))
    # Per octave-wide band the power ratio over 4 octaves is ~0 dB (white: x16 width), ~12 dB (pink), ~24 (brown).
    assert slopes["white"] < slopes["pink"] < slopes["brown"]


def test_speed_changes_duration_like_kaldi():
    wave = speechlike(seconds=2.0)
    faster = change_speed(wave, 1.1)
    slower = change_speed(wave, 0.9)
    assert len(faster) == pytest.approx(len(wave) / 1.1, rel=0.01)
    assert len(slower) == pytest.approx(len(wave) / 0.9, rel=0.01)
    # pitch rises with speed: the 180 Hz component moves to ~198 Hz
    spectrum = np.abs(np.fft.rfft(faster))
    peak_hz = np.fft.rfftfreq(len(faster), 1 / SAMPLE_RATE)[np.argmax(spectrum)]
    assert peak_hz == pytest.approx(180 * 1.1, abs=3)


@pytest.mark.parametrize("via_8k", [False, True])
def test_band_limit_removes_energy_outside_telephone_band(via_8k):
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tones = {100: 0.3, 1000: 0.3, 6000: 0.3}
    wave = sum(a * np.sin(2 * np.pi * f * t) for f, a in tones.items()).astype(np.float32)
    out = band_limit(wave, via_8k=via_8k)
    assert len(out) == len(wave)
    for low, high in ((0, 300), (3400, 8000)):
        assert band_energy(out, low, high) < 1e-3 * band_energy(wave, low, high)  # > 30 dB down
    assert band_energy(out, 900, 1100) == pytest.approx(band_energy(wave, 900, 1100), rel=0.05)


def test_reverb_lengthens_the_decay_tail():
    burst = np.zeros(SAMPLE_RATE, dtype=np.float32)
    burst[:1600] = speechlike(0.1)
    wet = add_reverb(burst, rt60_s=0.6, rng=np.random.default_rng(0))
    assert len(wet) == len(burst)
    tail = slice(2000, 6000)  # 25-375 ms after the burst ends
    assert np.mean(wet[tail] ** 2) > 1e-4 * np.mean(wet[:1600] ** 2)
    assert np.mean(burst[tail] ** 2) == 0.0
    longer = add_reverb(burst, rt60_s=1.2, rng=np.random.default_rng(0))
    late = slice(8000, 12000)
    assert np.mean(longer[late] ** 2) > np.mean(wet[late] ** 2)


@pytest.mark.parametrize("seed", range(8))
def test_output_is_float32_within_unit_range(seed):
    loud = np.clip(speechlike(seed=seed) * 3.2, -1, 1)  # near full scale, so +6 dB gain would clip
    config = AudioAugmentConfig(**ALL_ON, gain_db_min=6.0, gain_db_max=6.0)
    out = augment(loud, config, np.random.default_rng(seed))
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.0


def test_quiet_input_is_not_normalised():
    quiet = speechlike() * 0.1
    config = AudioAugmentConfig(enabled=True, noise_prob=0, speed_prob=0, reverb_prob=0, bandlimit_prob=0,
                                gain_prob=1.0, gain_db_min=-6.0, gain_db_max=-6.0)
    out = augment(quiet, config, np.random.default_rng(0))
    np.testing.assert_allclose(out, quiet * 10 ** (-6 / 20), rtol=1e-5)


def test_edge_inputs_do_not_fail():
    config = AudioAugmentConfig(**ALL_ON)
    for wave in (np.zeros(0, np.float32), np.zeros(SAMPLE_RATE // 10, np.float32), np.ones(5, np.float32) * 0.1):
        out = augment(wave, config, np.random.default_rng(0))
        assert out.dtype == np.float32 and np.all(np.isfinite(out))


def test_config_rejects_bad_ranges():
    with pytest.raises(ValueError, match="noise_prob"):
        AudioAugmentConfig(noise_prob=1.5)
    with pytest.raises(ValueError, match="speed_min"):
        AudioAugmentConfig(speed_min=1.2, speed_max=1.0)
    with pytest.raises(ValueError, match="noise_colours"):
        AudioAugmentConfig(noise_colours=["purple"])
