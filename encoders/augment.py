"""Waveform augmentation for training speech recognisers: noise, speed, gain, reverberation, telephone band.

A recogniser trained on clean synthetic speech learns one studio and a few robotic voices; these effects put
the same words through other rooms, channels, tempos and levels. Everything is generated (no noise or impulse
response files exist offline). `augment` is a pure function of its inputs: the caller seeds `rng` per example
(e.g. from the epoch and example index), so a resumed training run sees exactly the same audio.

Chain, in the order sound meets them: speed (the speaker) -> reverberation (the room) -> noise (the room's
background) -> band limit (a telephone channel) -> gain (the recording level). Each is applied with its own
probability; the output is float32 and peak-normalised only if it would leave [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16000  # every audio encoder consumes 16 kHz mono (encoders.audio_io.SAMPLE_RATE)
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1 / f**exponent
TELEPHONE_BAND_HZ = (300.0, 3400.0)  # the narrowband telephone channel (ITU-T G.712)
TELEPHONE_SAMPLE_RATE = 8000
BANDPASS_ORDER = 4  # Butterworth, run forwards and backwards: zero phase, 8th-order magnitude
DECAY_60_DB = np.log(1000.0)  # amplitude falls by 60 dB (x 1/1000) over RT60
DIRECT_TO_REVERB_DB = 0.0  # energy of the direct path over the diffuse tail in the synthetic room
EPS = 1e-12


@dataclass
class AudioAugmentConfig:
    """Which effects, how often and how strong. Off by default: augmentation is opt-in per training config."""

    enabled: bool = False
    noise_prob: float = 0.5
    snr_db_min: float = 5.0
    snr_db_max: float = 30.0
    noise_colours: list[str] = field(default_factory=lambda: list(NOISE_EXPONENTS))
    speed_prob: float = 0.5
    speed_min: float = 0.9  # Kaldi's speed perturbation uses 0.9, 1.0, 1.1
    speed_max: float = 1.1
    gain_prob: float = 0.5
    gain_db_min: float = -10.0
    gain_db_max: float = 6.0
    reverb_prob: float = 0.3
    rt60_min: float = 0.15  # seconds: a small furnished room
    rt60_max: float = 0.8  # a large bare hall
    bandlimit_prob: float = 0.2
    bandlimit_8k_prob: float = 0.5  # of band-limited examples, the share also sent through 8 kHz and back

    def __post_init__(self) -> None:
        for name in ("noise_prob", "speed_prob", "gain_prob", "reverb_prob", "bandlimit_prob", "bandlimit_8k_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"audio augment: {name} must be in [0, 1], got {getattr(self, name)}")
        for low, high in (("snr_db_min", "snr_db_max"), ("speed_min", "speed_max"),
                          ("gain_db_min", "gain_db_max"), ("rt60_min", "rt60_max")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"audio augment: {low} ({getattr(self, low)}) > {high} ({getattr(self, high)})")
        if self.speed_min <= 0 or self.rt60_min <= 0:
            raise ValueError("audio augment: speed_min and rt60_min must be positive")
        unknown = sorted(set(self.noise_colours) - set(NOISE_EXPONENTS))
        if unknown or not self.noise_colours:
            raise ValueError(f"audio augment: noise_colours must be a non-empty subset of {list(NOISE_EXPONENTS)}")


def _power(waveform: np.ndarray) -> float:
    """Mean square; 0 for an empty waveform."""
    return float(np.mean(np.square(waveform, dtype=np.float64))) if len(waveform) else 0.0


def coloured_noise(n_samples: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise ``(n_samples,)`` whose power spectrum falls as 1/f**0 (white), 1/f (pink), 1/f**2 (brown)."""
    n_bins = n_samples // 2 + 1
    spectrum = rng.standard_normal(n_bins) + 1j * rng.standard_normal(n_bins)  # (n_bins,)
    frequency = np.arange(n_bins, dtype=np.float64)
    frequency[0] = 1.0  # no infinite DC for pink/brown; DC is then removed
    spectrum *= frequency ** (-NOISE_EXPONENTS[colour] / 2)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=n_samples)
    return noise / np.sqrt(max(_power(noise), EPS))


def add_noise(waveform: np.ndarray, snr_db: float, colour: str, rng: np.random.Generator) -> np.ndarray:
    """`waveform` plus coloured noise scaled so that signal power / noise power is exactly `snr_db`."""
    signal_power = _power(waveform)
    if len(waveform) == 0 or signal_power == 0.0:
        return waveform  # silence has no SNR to honour
    noise = coloured_noise(len(waveform), colour, rng)
    return waveform + noise * np.sqrt(signal_power / 10 ** (snr_db / 10))


def change_speed(waveform: np.ndarray, speed: float) -> np.ndarray:
    """Kaldi-style speed perturbation: play `speed` times faster, so duration / speed and pitch x speed."""
    from encoders.audio_io import resample

    if len(waveform) == 0:
        return waveform
    # Reading the samples as if recorded at SAMPLE_RATE * speed, then resampling to SAMPLE_RATE.
    return resample(waveform.astype(np.float32), int(round(SAMPLE_RATE * speed)), SAMPLE_RATE)


def apply_gain(waveform: np.ndarray, gain_db: float) -> np.ndarray:
    return waveform * 10 ** (gain_db / 20)


def room_impulse_response(rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: a direct path, then Gaussian noise decaying 60 dB over `rt60_s` (Sabine's model)."""
    n_taps = max(int(rt60_s * SAMPLE_RATE), 2)
    t = np.arange(1, n_taps) / SAMPLE_RATE
    tail = rng.standard_normal(n_taps - 1) * np.exp(-DECAY_60_DB * t / rt60_s)
    tail *= np.sqrt(10 ** (-DIRECT_TO_REVERB_DB / 10) / max(np.sum(tail**2), EPS))
    return np.concatenate([[1.0], tail])  # (n_taps,)


def add_reverb(waveform: np.ndarray, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room response; same length as the input and the same power."""
    from scipy.signal import fftconvolve

    if len(waveform) == 0:
        return waveform
    wet = fftconvolve(waveform.astype(np.float64), room_impulse_response(rt60_s, rng))[: len(waveform)]
    return wet * np.sqrt(_power(waveform) / max(_power(wet), EPS))


def band_limit(waveform: np.ndarray, via_8k: bool = False) -> np.ndarray:
    """Telephone channel: zero-phase 300-3400 Hz band-pass; `via_8k` also resamples to 8 kHz and back."""
    from scipy.signal import butter, sosfiltfilt

    from encoders.audio_io import resample

    n_samples = len(waveform)
    if n_samples == 0:
        return waveform
    out = waveform.astype(np.float32)
    if via_8k:
        narrow = resample(out, SAMPLE_RATE, TELEPHONE_SAMPLE_RATE)
        out = resample(narrow, TELEPHONE_SAMPLE_RATE, SAMPLE_RATE)
        out = np.pad(out, (0, max(n_samples - len(out), 0)))[:n_samples]
    sos = butter(BANDPASS_ORDER, TELEPHONE_BAND_HZ, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), n_samples - 1)  # sosfiltfilt's default, shortened for tiny inputs
    return sosfiltfilt(sos, out, padlen=padlen)


def augment(waveform: np.ndarray, config: AudioAugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Apply the configured effects to a float32 16 kHz waveform ``(N,)``; returns float32 ``(N',)``.

    N' differs from N only under speed perturbation. With `config.enabled` false the input comes back as is
    (as float32). The result depends only on the inputs: the same rng state gives the same audio.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if not config.enabled:
        return waveform
    out = waveform.astype(np.float64)
    if rng.random() < config.speed_prob:
        out = change_speed(out, rng.uniform(config.speed_min, config.speed_max)).astype(np.float64)
    if rng.random() < config.reverb_prob:
        out = add_reverb(out, rng.uniform(config.rt60_min, config.rt60_max), rng)
    if rng.random() < config.noise_prob:
        colour = config.noise_colours[rng.integers(len(config.noise_colours))]
        out = add_noise(out, rng.uniform(config.snr_db_min, config.snr_db_max), colour, rng)
    if rng.random() < config.bandlimit_prob:
        out = band_limit(out, via_8k=bool(rng.random() < config.bandlimit_8k_prob))
    if rng.random() < config.gain_prob:
        out = apply_gain(out, rng.uniform(config.gain_db_min, config.gain_db_max))
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    if peak > 1.0:
        out = out / peak  # only when it would clip: keeps the drawn gain otherwise
    return out.astype(np.float32)
