"""Transcript writers: plain text, JSON, SubRip (.srt) and WebVTT (.vtt), and an atomic `write` to a file.

Subtitle cues hold at most MAX_LINES_PER_CUE lines of at most MAX_LINE_CHARS characters (the usual broadcast
limit), so a long segment becomes several cues: its words are wrapped at word boundaries and its time is shared
between the cues in proportion to their characters. A single word longer than a line stays whole on its own line.
Cue times are whole milliseconds; each cue lasts at least 1 ms and starts no earlier than the previous one ends.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tasks.long_audio import Segment, join_segments

MAX_LINE_CHARS = 42
MAX_LINES_PER_CUE = 2
FILE_MODE = 0o644  # of a written transcript
ARROW = "-->"  # separates a cue's start and end times; never allowed inside cue text


def to_txt(segments: Sequence[Segment]) -> str:
    """One line per segment."""
    lines = [s.text.strip() for s in segments if s.text.strip()]
    return "\n".join(lines) + "\n" if lines else ""


def to_json(segments: Sequence[Segment], file: str | None = None) -> dict[str, Any]:
    """{"file", "text", "segments": [{"start", "end", "text"}]}, times in seconds rounded to milliseconds; with
    word timestamps each segment also holds "words": [{"word", "start", "end"}]."""
    return {"file": file, "text": join_segments(segments), "segments": [segment_json(s) for s in segments if s.text.strip()]}


def segment_json(segment: Segment) -> dict[str, Any]:
    out: dict[str, Any] = {"start": round(segment.start_s, 3), "end": round(segment.end_s, 3), "text": segment.text.strip()}
    if segment.words is not None:
        out["words"] = [{"word": w.text, "start": w.start_s, "end": w.end_s} for w in segment.words]
    return out


def to_json_text(segments: Sequence[Segment], file: str | None = None) -> str:
    return json.dumps(to_json(segments, file), ensure_ascii=False, indent=2) + "\n"


# --- Cues --------------------------------------------------------------------------------------------------------


def wrap_lines(text: str, max_chars: int = MAX_LINE_CHARS) -> list[str]:
    """Greedy word wrap: each line as full as `max_chars` allows; a longer word gets a line of its own."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= max_chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def cues(segments: Sequence[Segment]) -> list[tuple[int, int, list[str]]]:
    """(start_ms, end_ms, lines) for each cue, in order, times strictly increasing within and between cues."""
    out: list[tuple[int, int, list[str]]] = []
    previous_end_ms = 0
    for segment in segments:
        lines = wrap_lines(segment.text.replace(ARROW, "->"))
        groups = [lines[i : i + MAX_LINES_PER_CUE] for i in range(0, len(lines), MAX_LINES_PER_CUE)]
        n_chars = [sum(len(line) for line in group) for group in groups]
        total_chars = sum(n_chars)
        duration_s = segment.end_s - segment.start_s
        chars_before = 0
        for group, chars in zip(groups, n_chars):
            start_s = segment.start_s + duration_s * chars_before / total_chars
            chars_before += chars
            end_s = segment.start_s + duration_s * chars_before / total_chars
            start_ms = max(round(start_s * 1000), previous_end_ms)
            end_ms = max(round(end_s * 1000), start_ms + 1)
            out.append((start_ms, end_ms, group))
            previous_end_ms = end_ms
    return out


def timestamp(ms: int, decimal_marker: str) -> str:
    """HH:MM:SS<marker>mmm (hours grow past two digits if they must)."""
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal_marker}{ms:03d}"


def to_srt(segments: Sequence[Segment]) -> str:
    """SubRip: numbered cues from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, a blank line after each cue."""
    blocks = [
        f"{n}\n{timestamp(start, ',')} {ARROW} {timestamp(end, ',')}\n" + "\n".join(lines) + "\n"
        for n, (start, end, lines) in enumerate(cues(segments), start=1)
    ]
    return "\n".join(blocks)


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT: a `WEBVTT` header, then cues `HH:MM:SS.mmm --> HH:MM:SS.mmm`; `&`, `<`, `>` escaped."""
    blocks = [
        f"{timestamp(start, '.')} {ARROW} {timestamp(end, '.')}\n" + "\n".join(map(_vtt_escape, lines)) + "\n"
        for start, end, lines in cues(segments)
    ]
    return "\n".join(["WEBVTT\n", *blocks])


FORMATS: dict[str, Callable[[Sequence[Segment]], str]] = {
    "txt": to_txt,
    "json": to_json_text,
    "srt": to_srt,
    "vtt": to_vtt,
}


def write(segments: Sequence[Segment], path: str | Path, fmt: str | None = None, file: str | None = None) -> Path:
    """Write `segments` as `fmt` (default: the path's suffix) atomically: a temp file, then `os.replace`.

    `file` names the source audio in the JSON output.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r} for {path}; choose one of {sorted(FORMATS)}")
    text = to_json_text(segments, file) if fmt == "json" else FORMATS[fmt](segments)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, FILE_MODE)  # mkstemp makes it private (0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
