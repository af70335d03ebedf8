"""load_audio: files at any rate and channel count, compressed formats through ffmpeg, arrays, and bad input."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import torch

from encoders import SAMPLE_RATE, InputFileError, load_audio

TONE_HZ = 440.0
DURATION_S = 1.0


def sine(sample_rate: int, n_channels: int = 1, frequency_hz: float = TONE_HZ) -> np.ndarray:
    t = np.arange(int(sample_rate * DURATION_S)) / sample_rate
    wave = 0.5 * np.sin(2 * np.pi * frequency_hz * t).astype(np.float32)  # (N,)
    return wave if n_channels == 1 else np.stack([wave] * n_channels, axis=1)  # (N, C)


def dominant_frequency_hz(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(waveform))
    return float(np.fft.rfftfreq(len(waveform), 1 / sample_rate)[spectrum.argmax()])


@pytest.mark.parametrize("sample_rate, n_channels", [(8000, 1), (22050, 1), (44100, 2), (16000, 1)])
def test_files_are_resampled_to_16k_mono(tmp_path, sample_rate, n_channels):
    path = tmp_path / f"tone_{sample_rate}_{n_channels}.wav"
    soundfile.write(path, sine(sample_rate, n_channels), sample_rate, subtype="PCM_16")
    waveform = load_audio(path)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - SAMPLE_RATE * DURATION_S) <= 1
    assert abs(dominant_frequency_hz(waveform) - TONE_HZ) <= 2
    assert 0.4 < np.abs(waveform).max() < 0.6


def test_stereo_channels_are_averaged(tmp_path):
    left, right = sine(16000), np.zeros(16000, dtype=np.float32)
    path = tmp_path / "stereo.flac"
    soundfile.write(path, np.stack([left, right], axis=1), 16000)
    np.testing.assert_allclose(load_audio(str(path)), left / 2, atol=1e-3)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary to make the files")
@pytest.mark.parametrize("extension", ["mp3", "ogg", "m4a"])
def test_compressed_formats_decode(tmp_path, extension):
    path = tmp_path / f"tone.{extension}"
    command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency={TONE_HZ:g}:duration=1"]
    subprocess.run(command + ["-ar", "44100", "-ac", "2", str(path)], check=True)
    waveform = load_audio(path)
    assert abs(len(waveform) - SAMPLE_RATE * DURATION_S) < 0.1 * SAMPLE_RATE  # encoders add a little padding
    assert abs(dominant_frequency_hz(waveform) - TONE_HZ) <= 3


def test_int16_arrays_are_scaled():
    pcm = (sine(8000) * 32767 / 0.5 * 0.25).astype(np.int16)  # amplitude 0.25 of full scale
    waveform = load_audio(pcm, sample_rate=8000)
    assert waveform.dtype == np.float32 and len(waveform) == 16000
    assert 0.2 < np.abs(waveform).max() < 0.3


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_multichannel_arrays_and_tensors(layout):
    stereo = sine(16000, 2)  # (N, 2)
    array = stereo.T if layout == "channels_first" else stereo
    waveform = load_audio(torch.from_numpy(np.ascontiguousarray(array)), sample_rate=16000)
    np.testing.assert_allclose(waveform, stereo[:, 0], atol=1e-6)


def test_array_without_sample_rate():
    with pytest.raises(InputFileError, match="<array>.*sample_rate"):
        load_audio(np.zeros(100, dtype=np.float32))


def test_empty_array():
    with pytest.raises(InputFileError, match="<array>.*empty"):
        load_audio(np.zeros(0, dtype=np.float32), sample_rate=16000)


def _corrupt_wav(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _empty_file(path):
    path.write_bytes(b"")


def _zero_sample_wav(path):
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)


def _text_file(path):
    path.write_text("this is not audio\n" * 20)


def _truncated_header(path):
    soundfile.write(path, sine(16000), 16000)
    path.write_bytes(path.read_bytes()[:20])


@pytest.mark.parametrize("make", [_corrupt_wav, _empty_file, _zero_sample_wav, _text_file, _truncated_header])
def test_bad_files_raise_naming_the_file(tmp_path, make):
    path = tmp_path / f"bad_{make.__name__.strip('_')}.wav"
    make(path)
    with pytest.raises(InputFileError) as error:
        load_audio(path)
    assert str(path) in str(error.value)
    assert str(error.value).startswith(f"cannot read audio file '{path}'")
    assert isinstance(error.value, ValueError)


def test_missing_file(tmp_path):
    path = tmp_path / "missing.wav"
    with pytest.raises(InputFileError, match="missing.wav.*no such file"):
        load_audio(str(path))


def test_wrong_type():
    with pytest.raises(InputFileError, match="list"):
        load_audio([0.0, 0.1])
