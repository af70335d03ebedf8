"""Reading audio: any file or array -> float32 mono waveform at 16 kHz."""

from __future__ import annotations

import os

import numpy as np
import torch

from .errors import InputFileError, check_readable_file

SAMPLE_RATE = 16000  # every audio encoder consumes 16 kHz mono
# The rates a file or array may declare. Below 4 kHz no speech band is left; a header that says 1 Hz is a corrupt
# field, and resampling it to 16 kHz would turn a 100 kB file into 3 GB. 768 kHz is the fastest audio hardware.
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 768_000
READ_BLOCK_SAMPLES = 1 << 22  # soundfile decodes 16 MB at a time, never the amount a header declares
RESAMPLE_QUALITY = "HQ"  # soxr high quality, the same resampler librosa uses by default (soxr_hq)
AUDIO = "audio"


def _read_soundfile(path: str) -> tuple[np.ndarray, int]:
    """``(samples (1, N), sample_rate)``, channels averaged, read block by block until the data ends: a header that
    declares hours in a small file (an MP3's Xing frame count, a FLAC's total) allocates nothing for them."""
    import soundfile

    with soundfile.SoundFile(path) as f:
        block_frames = max(1, READ_BLOCK_SAMPLES // max(f.channels, 1))
        blocks = []
        while len(block := f.read(block_frames, dtype="float32", always_2d=True)):  # (n, C)
            blocks.append(block.mean(axis=1, dtype=np.float32))  # (n,)
        return np.concatenate(blocks or [np.zeros(0, np.float32)])[None, :], int(f.samplerate)  # (1, N)


def _read_ffmpeg(path: str) -> tuple[np.ndarray, int]:
    from torchcodec.decoders import AudioDecoder  # ffmpeg through torchcodec: mp3, m4a, opus, video files...

    decoded = AudioDecoder(path).get_all_samples()
    return decoded.data.numpy().astype(np.float32, copy=False), int(decoded.sample_rate)  # (C, N)


def _read_file(path: str) -> tuple[np.ndarray, int]:
    """Decode with soundfile (wav/flac/ogg), falling back to ffmpeg; returns ``(samples (C, N), sample_rate)``."""
    check_readable_file(AUDIO, path)
    try:
        return _read_soundfile(path)
    except Exception as soundfile_error:  # noqa: BLE001 - any decoder failure falls through to ffmpeg
        reasons = [f"soundfile: {soundfile_error}"]
    try:
        return _read_ffmpeg(path)
    except Exception as ffmpeg_error:  # noqa: BLE001 - both decoders failed: report both
        reasons.append(f"ffmpeg: {ffmpeg_error}")
    raise InputFileError(AUDIO, path, "not a readable audio file (" + "; ".join(reasons) + ")")


def wav_declared_frames(path: str | os.PathLike) -> int | None:
    """Frames a RIFF/WAVE file's header says its data chunk holds (None: not a WAV, or no data chunk found).

    libsndfile trusts the file's length over the header, so a truncated file reads as the audio it has; this
    is what the header promised, to tell the user a file was cut short.
    """
    import struct

    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None
    order = "<" if head[:4] == b"RIFF" else ">"
    at, block_align = 12, 0
    while at + 8 <= len(head):
        chunk, size = head[at : at + 4], struct.unpack(order + "I", head[at + 4 : at + 8])[0]
        if chunk == b"fmt " and at + 22 <= len(head):
            block_align = struct.unpack(order + "H", head[at + 20 : at + 22])[0]
        if chunk == b"data":
            return size // block_align if block_align else None
        at += 8 + size + (size & 1)
    return None


def _array_to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM scaled to [-1, 1]; floats kept; anything else rejected."""
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    if samples.dtype.kind == "i":
        return (samples.astype(np.float64) / -np.iinfo(samples.dtype).min).astype(np.float32)
    if samples.dtype.kind == "u":
        midpoint = (np.iinfo(samples.dtype).max + 1) / 2
        return ((samples.astype(np.float64) - midpoint) / midpoint).astype(np.float32)
    raise InputFileError(AUDIO, None, f"unsupported sample dtype {samples.dtype}")


def _to_channels_first(samples: np.ndarray) -> np.ndarray:
    """(N,), (C, N) or (N, C) -> (C, N); the channel axis is the smaller one."""
    if samples.ndim == 1:
        return samples[None, :]  # (1, N)
    if samples.ndim == 2:
        return samples if samples.shape[0] <= samples.shape[1] else samples.T  # (C, N)
    raise InputFileError(AUDIO, None, f"expected shape (N,), (C, N) or (N, C), got {samples.shape}")


def resample(waveform: np.ndarray, orig_sample_rate: int, target_sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 ``(N,)`` from one rate to another (soxr: librosa's default, without librosa's import cost)."""
    if orig_sample_rate == target_sample_rate:
        return waveform
    import soxr

    resampled = soxr.resample(waveform, orig_sample_rate, target_sample_rate, quality=RESAMPLE_QUALITY)
    return resampled.astype(np.float32, copy=False)


def check_sample_rate(sample_rate: int | None, path: str | None) -> None:
    """Raise InputFileError naming `path` (None: an array) for a rate outside MIN_SAMPLE_RATE..MAX_SAMPLE_RATE."""
    if sample_rate is None or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputFileError(AUDIO, path, f"sample rate {sample_rate} Hz is outside the {MIN_SAMPLE_RATE}.."
                                          f"{MAX_SAMPLE_RATE} Hz that audio is read at")


def load_audio(source: str | os.PathLike | np.ndarray | torch.Tensor, sample_rate: int | None = None) -> np.ndarray:
    """Read a file or array into a float32 mono waveform ``(N,)`` at 16 kHz.

    Files: their own header gives the rate (``sample_rate`` is ignored). Arrays ``(N,)``, ``(C, N)`` or ``(N, C)``
    need ``sample_rate``; integer PCM is scaled to [-1, 1]. Channels are averaged; any rate is resampled.
    Raises ``InputFileError`` naming the file (or ``<array>``) for missing, empty, corrupt or non-audio input.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        samples, sample_rate = _read_file(path)  # (C, N)
    elif isinstance(source, (np.ndarray, torch.Tensor)):
        path = None
        if sample_rate is None:
            raise InputFileError(AUDIO, None, "an array needs its sample_rate")
        array = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else source
        samples = _to_channels_first(_array_to_float(np.asarray(array)))  # (C, N)
    else:
        raise InputFileError(AUDIO, None, f"expected a path, numpy array or torch tensor, got {type(source).__name__}")

    check_sample_rate(sample_rate, path)
    if samples.shape[-1] == 0:
        raise InputFileError(AUDIO, path, "no audio samples (empty)")
    if not np.all(np.isfinite(samples)):
        raise InputFileError(AUDIO, path, "samples contain NaN or infinity")

    waveform = samples.mean(axis=0, dtype=np.float32)  # (N,)
    waveform = resample(waveform, sample_rate, SAMPLE_RATE)
    if len(waveform) == 0:  # e.g. one sample at 32 kHz
        raise InputFileError(AUDIO, path, f"shorter than one sample at {SAMPLE_RATE} Hz")
    return np.ascontiguousarray(waveform, dtype=np.float32)
