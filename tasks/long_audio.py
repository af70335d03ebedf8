"""Long audio: cut it into overlapping windows, then merge the windows' transcripts into one timed transcript.

The recogniser reads at most `window_s` of audio at a time. `plan_windows` cuts audio of any length into windows
that overlap by `overlap_s` (optionally ending each window in the quietest 100 ms near its nominal end); the
caller transcribes the windows, in batches if it likes; `merge_windows` joins the window transcripts so that the
words heard twice in an overlap appear once, and gives one `Segment` per window with start/end times.

Merge rule for consecutive windows A, B. The tail of A and the head of B transcribe the same audio. Words are
compared lowercased without punctuation; the longest common contiguous run of words between A's last k and
B's first k words (k bounded by how many words the overlap can hold) is the anchor: A's words are kept up to
the middle of the run and B's from there on. Without an anchor (the recogniser disagreed) the overlap is split
at its midpoint in time, each word's time estimated from its position in its window. Keep the overlap longer
than the usual pause (>= 3 s): an overlap that is all pause gives no anchor, and the position-based time split can
then drop or double a word at that boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
WINDOW_S = 20.0  # audio the recogniser reads at once
OVERLAP_S = 4.0  # audio shared by consecutive windows
SILENCE_FRAME_S = 0.1  # frame over which energy is measured when looking for a quiet cut point
MAX_WORDS_PER_S = 4.0  # fast speech; bounds how many words an overlap can hold
MATCH_SLACK_WORDS = 2  # extra words searched beyond the overlap's capacity (words cut at window edges)
SLACK_COST = 0.5  # a common run anchors the merge if its length > SLACK_COST * (words between it and the edges)


@dataclass(frozen=True)
class Window:
    index: int
    start: int  # first sample
    end: int  # one past the last sample

    @property
    def n_samples(self) -> int:
        return self.end - self.start

    def start_s(self, sample_rate: int = SAMPLE_RATE) -> float:
        return self.start / sample_rate

    def end_s(self, sample_rate: int = SAMPLE_RATE) -> float:
        return self.end / sample_rate


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float


@dataclass
class Segment:
    start_s: float
    end_s: float
    text: str
    words: list[Word] | None = None  # with word timestamps: one per word of `text`, in order


# --- Planning ----------------------------------------------------------------------------------------------------


def _check_plan_args(n_samples: int, sample_rate: int, window_s: float, overlap_s: float) -> None:
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not window_s > 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    if not overlap_s >= 0:
        raise ValueError(f"overlap_s must be >= 0, got {overlap_s}")
    if overlap_s >= window_s:
        raise ValueError(f"overlap_s ({overlap_s}) must be smaller than window_s ({window_s})")


def _quietest_cut(waveform: np.ndarray, lo: int, hi: int, frame: int) -> int:
    """Centre of the quietest `frame`-sample frame tiling [lo, hi); the latest one among equals. `hi` if none fits."""
    n_frames = (hi - lo) // frame
    if n_frames < 1:
        return hi
    frames = np.asarray(waveform[hi - n_frames * frame : hi], dtype=np.float64).reshape(n_frames, frame)
    energy = np.mean(frames**2, axis=1)  # (n_frames,)
    quietest = n_frames - 1 - int(np.argmin(energy[::-1]))  # ties go to the frame nearest the nominal end
    return hi - n_frames * frame + quietest * frame + frame // 2


def plan_windows(
    n_samples: int,
    sample_rate: int = SAMPLE_RATE,
    window_s: float = WINDOW_S,
    overlap_s: float = OVERLAP_S,
    waveform: Any = None,
) -> list[Window]:
    """Windows of at most `window_s` covering all `n_samples`, consecutive ones sharing exactly `overlap_s`.

    The audio is shared out evenly: the windows left to place all get the same length, so the last is never a
    sliver. With a `waveform` (a 1-D array, or any object whose `[a:b]` gives those samples, such as a file read
    piece by piece), each window ends instead at the quietest 100 ms frame within the last `overlap_s` of its
    nominal end (the next window still starts `overlap_s` before that cut); only those regions are read.
    Audio no longer than a window is one window; empty audio is no window.
    """
    _check_plan_args(n_samples, sample_rate, window_s, overlap_s)
    if isinstance(waveform, (np.ndarray, list)):
        waveform = np.asarray(waveform)
        if waveform.ndim != 1 or len(waveform) != n_samples:
            raise ValueError(f"waveform must be 1-D with n_samples={n_samples} samples, got shape {waveform.shape}")
    window = max(1, round(window_s * sample_rate))
    overlap = min(round(overlap_s * sample_rate), window - 1)
    hop = window - overlap
    frame = max(1, round(SILENCE_FRAME_S * sample_rate))

    windows: list[Window] = []
    start = 0
    while n_samples - start > window:
        remaining = n_samples - start
        n_left = math.ceil((remaining - overlap) / hop)  # windows still needed, >= 2 here
        end = start + math.ceil((remaining + (n_left - 1) * overlap) / n_left)  # even share, <= window
        if waveform is not None:
            earliest = max(end - overlap, start + overlap + 1)  # the next window must start after this one
            end = _quietest_cut(waveform, earliest, end, frame)
        windows.append(Window(len(windows), start, end))
        start = end - overlap
    if n_samples > 0:
        windows.append(Window(len(windows), start, n_samples))
    return windows


# --- Merging -----------------------------------------------------------------------------------------------------


def _key(word: str) -> str:
    """What two transcripts must agree on for a word to match: lowercase letters and digits only."""
    return "".join(c for c in word.casefold() if c.isalnum())


def _common_runs(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int, int]]:
    """Every maximal common contiguous run of words of `a` and `b`: (start in a, start in b, length)."""
    runs = []
    for i in range(len(a)):
        for j in range(len(b)):
            if a[i] and a[i] == b[j] and not (i and j and a[i - 1] and a[i - 1] == b[j - 1]):  # a run starts here
                length = 1
                while i + length < len(a) and j + length < len(b) and a[i + length] and a[i + length] == b[j + length]:
                    length += 1
                runs.append((i, j, length))
    return runs


def _word_time(window: Window, position: float, n_words: int) -> float:
    """Estimated time (samples) at word `position` (0: before the first word), words spread evenly over the window."""
    return window.start + window.n_samples * position / max(n_words, 1)


def _split_at_midpoint(
    a: Window, words_a: list[str], first_a: int, b: Window, words_b: list[str]
) -> tuple[int, int, float]:
    """No anchor: cut the overlap at its midpoint in time, each word placed by its position in its own window."""
    midpoint = (a.end + b.start) / 2
    keep_a = sum(_word_time(a, i + 0.5, len(words_a)) < midpoint for i in range(len(words_a)))
    keep_b = sum(_word_time(b, i + 0.5, len(words_b)) < midpoint for i in range(len(words_b)))
    return max(keep_a, first_a), keep_b, midpoint


def _split_pair(
    a: Window, words_a: list[str], first_a: int, b: Window, words_b: list[str], sample_rate: int
) -> tuple[int, int, float]:
    """(keep A's words before this index, keep B's words from this index, boundary time in samples).

    Only A's words from `first_a` on (the rest went to the window before) take part.
    """
    overlap = a.end - b.start
    if overlap <= 0 or not words_a or not words_b:
        return _split_at_midpoint(a, words_a, first_a, b, words_b)

    rate = (len(words_a) / a.n_samples + len(words_b) / b.n_samples) / 2  # words per sample
    max_words_per_sample = max(MAX_WORDS_PER_S / sample_rate, 1.5 * rate)
    k = math.ceil(max_words_per_sample * overlap) + MATCH_SLACK_WORDS
    tail_start = max(first_a, len(words_a) - k)
    tail = [_key(w) for w in words_a[tail_start:]]
    head = [_key(w) for w in words_b[:k]]

    # Clean transcripts agree from B's first word to A's last. Words outside a run on those sides ("slack") are
    # misrecognised or cut at a window edge; a short run far from the edges is a chance repeat, not an anchor.
    def score(run: tuple[int, int, int]) -> tuple[float, int]:
        i, j, length = run
        slack = len(tail) - (i + length) + j
        return length - SLACK_COST * slack, length

    runs = _common_runs(tail, head)
    if runs and score(best := max(runs, key=score))[0] > 0:
        i, j, length = best
        middle = length // 2
        keep_a, keep_b = tail_start + i + middle, j + middle
        boundary = (_word_time(a, keep_a, len(words_a)) + _word_time(b, keep_b, len(words_b))) / 2
        return keep_a, keep_b, min(max(boundary, b.start), a.end)
    return _split_at_midpoint(a, words_a, first_a, b, words_b)


def merge_windows(windows: Sequence[Window], texts: Sequence[str], sample_rate: int = SAMPLE_RATE,
                  word_times: Sequence[Sequence[tuple[float, float] | None]] | None = None) -> list[Segment]:
    """One segment per window with its own words, words heard in two windows kept once; empty segments dropped.

    A segment spans its window's core: from the boundary chosen in the overlap with the previous window to the
    one with the next (the first starts at the first window's start, the last ends at the audio's end).
    `word_times`: per window, one (start_s, end_s) within the window (or None) per word of its text; each
    segment then lists its words with times in the audio (a word without a time gets its neighbour's bound).
    """
    if len(windows) != len(texts):
        raise ValueError(f"{len(windows)} windows but {len(texts)} texts; they must pair up")
    if word_times is not None and [len(t) for t in word_times] != [len(text.split()) for text in texts]:
        raise ValueError("word_times must hold one entry per word of each window's text")
    for previous, window in zip(windows, windows[1:]):
        if not previous.start < window.start <= previous.end or window.end <= previous.end:
            raise ValueError(f"windows must move forward and touch or overlap: {previous} then {window}")
    if not windows:
        return []

    words = [text.split() for text in texts]
    first = [0] * len(windows)  # first kept word of each window
    last = [len(w) for w in words]  # one past the last kept word
    boundaries = [float(windows[0].start)]  # segment boundaries, samples
    for n in range(len(windows) - 1):
        keep_a, keep_b, boundary = _split_pair(
            windows[n], words[n], first[n], windows[n + 1], words[n + 1], sample_rate
        )
        last[n], first[n + 1] = keep_a, keep_b
        boundaries.append(max(boundary, boundaries[-1]))
    boundaries.append(max(float(windows[-1].end), boundaries[-1]))

    segments = []
    for n in range(len(windows)):
        text = " ".join(words[n][first[n] : last[n]])
        if text:
            segment = Segment(boundaries[n] / sample_rate, boundaries[n + 1] / sample_rate, text)
            if word_times is not None:
                segment.words = _timed_words(words[n][first[n] : last[n]], word_times[n][first[n] : last[n]],
                                             windows[n].start_s(sample_rate), segment.start_s, segment.end_s)
            segments.append(segment)
    return segments


def _timed_words(words: list[str], times: Sequence[tuple[float, float] | None], offset_s: float,
                 segment_start_s: float, segment_end_s: float) -> list[Word]:
    """Words with times in the audio, inside their segment and in order: a time is held between the end of the
    word before (or the segment's start) and the segment's end; an untimed word sits at the end of the word before.
    (The segment boundary is an estimate; a kept word can be aligned a little outside it.)"""
    out, previous_end = [], segment_start_s
    for word, span in zip(words, times):
        start, end = (offset_s + span[0], offset_s + span[1]) if span is not None else (previous_end, previous_end)
        start = min(max(start, previous_end), segment_end_s)
        end = min(max(end, start), segment_end_s)
        out.append(Word(word, round(start, 3), round(end, 3)))
        previous_end = end
    return out


def join_segments(segments: Sequence[Segment]) -> str:
    """The full transcript: the segments' texts joined by single spaces."""
    return " ".join(s.text.strip() for s in segments if s.text.strip())
