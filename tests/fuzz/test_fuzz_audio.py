"""Fuzzing the audio readers: `load_audio` (captions' and training's decoder, `mm.load(...).transcribe` of arrays),
`AudioSource` (what `multimodal transcribe` reads files with, window by window) and `wav_declared_frames`.

Property: a float32 mono waveform of finite samples, or an `InputFileError` naming the file; within the time
and memory bounds of tests/fuzz/properties.py.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap

import numpy as np
import soundfile
import torchcodec.decoders  # noqa: F401 - the ffmpeg fallback's import: paid here once, not under tracemalloc
from hypothesis import example, given
from hypothesis import strategies as st

from encoders import InputFileError, load_audio
from encoders.audio_io import wav_declared_frames
from multimodal.transcribe import AudioSource
from tasks.long_audio import Window

from .properties import assert_clear_error, mutated_file, run_bounded, write

SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".bin")
WINDOW_SAMPLES = 16000 * 30  # what transcribe reads at once
DECLARED_DATA_BYTES = 0x7FFFFFFF  # a data chunk of 2 GiB: 18.6 hours of 16-bit 16 kHz mono


def _encoded(format: str, subtype: str | None, rate: int = 8000, channels: int = 1) -> bytes:
    t = np.arange(rate // 20) / rate  # 50 ms
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([tone] * channels, axis=1), rate, format=format, subtype=subtype)
    return buffer.getvalue()


SEEDS = {  # small valid files, mutated below
    ".wav": _encoded("WAV", "PCM_16"),
    ".flac": _encoded("FLAC", "PCM_16", 16000),
    ".ogg": _encoded("OGG", "VORBIS", 22050, 2),
    ".mp3": _encoded("MP3", "MPEG_LAYER_III", 16000),
}


def wav(rate: int = 16000, channels: int = 1, bits: int = 16, fmt_tag: int = 1, data: bytes = b"\0\0" * 100,
        data_size: int | None = None, riff_size: int | None = None) -> bytes:
    """A RIFF/WAVE file whose header fields are whatever the caller says, true or not."""
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, (rate * block_align) & 0xFFFFFFFF, block_align & 0xFFFF,
                      bits)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def check_audio(path) -> None:
    """load_audio, wav_declared_frames and AudioSource on one file keep the property."""
    loaded = run_bounded(load_audio, path)
    if loaded.error is not None:
        assert_clear_error(loaded.error, InputFileError, path)
    else:
        waveform = loaded.result
        assert waveform.dtype == np.float32 and waveform.ndim == 1 and len(waveform) > 0
        assert np.isfinite(waveform).all()
    header = run_bounded(wav_declared_frames, path)
    assert header.error is None, f"wav_declared_frames raised {header.error!r}"
    assert header.result is None or header.result >= 0
    streamed = run_bounded(_read_windows, path)
    if streamed.error is not None:
        assert_clear_error(streamed.error, InputFileError, path)
    else:
        for window in streamed.result:
            assert window.dtype == np.float32 and window.ndim == 1 and np.isfinite(window).all()


def _read_windows(path) -> list[np.ndarray]:
    """What `multimodal transcribe` reads: open, then every 30 s window (the fuzzed files are short)."""
    source = AudioSource(path)
    try:
        n = source.n_samples
        return [source.read(Window(i, start, min(start + WINDOW_SAMPLES, n)))
                for i, start in enumerate(range(0, n, WINDOW_SAMPLES))]
    finally:
        source.close()


@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(scratch, data, suffix):
    check_audio(write(scratch, data, suffix))


RATES = st.one_of(st.sampled_from([0, 1, 8000, 16000, 44100, 2**31 - 1, 2**32 - 1]), st.integers(0, 2**32 - 1))


@given(rate=RATES, channels=st.one_of(st.sampled_from([0, 1, 2, 3]), st.integers(0, 0xFFFF)),
       bits=st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64, 0xFFFF]), fmt_tag=st.sampled_from([0, 1, 2, 3, 6, 7, 0xFFFE]),
       data=st.binary(max_size=2048), data_size=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
       riff_size=st.one_of(st.none(), st.integers(0, 2**32 - 1)))
@example(rate=16000, channels=1, bits=16, fmt_tag=1, data=b"\1\0" * 50, data_size=DECLARED_DATA_BYTES, riff_size=None)
@example(rate=1, channels=1, bits=16, fmt_tag=1, data=b"\1\0" * 1000, data_size=None, riff_size=None)  # 1 Hz
@example(rate=2_000_000_000, channels=1, bits=16, fmt_tag=1, data=b"\1\0" * 1000, data_size=None, riff_size=None)
@example(rate=32001, channels=1, bits=0, fmt_tag=6, data=b"\0", data_size=None, riff_size=None)  # 1 A-law sample
@example(rate=1, channels=1, bits=0, fmt_tag=2, data=b"\0", data_size=None, riff_size=None)  # ffmpeg fails mid-file
def test_wav_header_fields(scratch, rate, channels, bits, fmt_tag, data, data_size, riff_size):
    check_audio(write(scratch, wav(rate, channels, bits, fmt_tag, data, data_size, riff_size), ".wav"))


@given(mutated_file(SEEDS, head=256))
def test_mutated_files(scratch, file):
    data, suffix = file
    check_audio(write(scratch, data, suffix))


# ---------------------------------------------------------------------------------------------------------
# What the fuzzers found, as plain regression tests


def test_a_one_hertz_header_is_refused_not_resampled_into_gigabytes(tmp_path):
    """Before: a WAV whose header says 1 Hz was resampled to 16 kHz, 16,000 samples out for each in (a 100 kB file
    became 3.1 GB); now it is refused."""
    path = tmp_path / "one_hertz.wav"
    path.write_bytes(wav(rate=1, data=b"\1\0" * 1000))
    outcome = run_bounded(load_audio, path)
    assert_clear_error(outcome.error, InputFileError, path)
    assert "sample rate 1 Hz" in str(outcome.error)
    with_source = run_bounded(AudioSource, path)  # transcribe would have planned 1000 s of windows
    assert_clear_error(with_source.error, InputFileError, path)


def test_a_two_gigahertz_header_is_refused_not_resampled_to_nothing(tmp_path):
    """Before: 1000 samples at 2 GHz resampled to an empty waveform, returned as if read; now refused."""
    path = tmp_path / "fast.wav"
    path.write_bytes(wav(rate=2_000_000_000, data=b"\1\0" * 1000))
    assert_clear_error(run_bounded(load_audio, path).error, InputFileError, path)


def test_hours_declared_in_a_tiny_file_are_not_allocated(tmp_path):
    """The WAV bomb: a 144-byte file whose data chunk declares 2 GiB (18.6 hours): the samples it holds are read,
    and the process's peak memory grows by less than 200 MB (measured in a fresh process: RSS, not tracemalloc)."""
    path = tmp_path / "bomb.wav"
    path.write_bytes(wav(data=b"\1\0" * 50, data_size=DECLARED_DATA_BYTES))
    assert wav_declared_frames(path) == DECLARED_DATA_BYTES // 2  # what the header promises
    script = textwrap.dedent(f"""
        import resource
        from encoders import load_audio
        from multimodal.transcribe import AudioSource
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        waveform = load_audio({str(path)!r})
        source = AudioSource({str(path)!r})
        print(len(waveform), source.n_samples, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    n_samples, n_streamed, grown_mb = map(int, out.stdout.split())
    assert n_samples == n_streamed == 50 and grown_mb < 200, out.stdout


def test_a_sample_too_short_for_16_khz_is_refused_not_returned_empty(tmp_path):
    """Before: one A-law sample at 32,001 Hz resampled to zero samples, returned as a waveform; now refused."""
    path = tmp_path / "one_sample.wav"
    path.write_bytes(wav(rate=32001, bits=0, fmt_tag=6, data=b"\0"))
    error = run_bounded(load_audio, path).error
    assert_clear_error(error, InputFileError, path)
    assert "shorter than one sample" in str(error)


def test_a_file_that_fails_to_decode_after_its_header_is_named_by_transcribe(tmp_path):
    """Before: FFmpeg opened this MS-ADPCM header, then AudioSource.read raised torchcodec's raw RuntimeError (a
    traceback from `multimodal transcribe`); now an InputFileError naming the file and the window."""
    path = tmp_path / "adpcm.wav"
    path.write_bytes(wav(rate=1, bits=0, fmt_tag=2, data=b"\0"))
    error = run_bounded(_read_windows, path).error
    assert_clear_error(error, InputFileError, path)
    assert "cannot decode 0.0-" in str(error)


def test_an_mp3_header_that_declares_a_million_frames_allocates_nothing_for_them(tmp_path):
    """Before: libsndfile took the Xing header's frame count (2^20 frames of 1152 samples) and soundfile allocated
    2.3 GB for a 1.2 kB file; now blocks are read until the data ends."""
    data = bytearray(SEEDS[".mp3"])
    at = data.index(b"Xing") + 8  # "Xing", 4 bytes of flags, then the frame count
    data[at : at + 4] = struct.pack(">I", 1 << 20)
    path = tmp_path / "xing.mp3"
    path.write_bytes(bytes(data))
    outcome = run_bounded(load_audio, path)  # fails (a raised AssertionError) when it allocates 200 MB or more
    assert outcome.error is None and 0 < len(outcome.result) < 16000
