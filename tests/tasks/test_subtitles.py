"""Transcript writers: SRT/VTT checked by a strict parser written here (and pysrt / webvtt-py where installed)."""

import html
import json
import os
import re

import pytest

from tasks import subtitles
from tasks.long_audio import Segment, join_segments
from tasks.subtitles import FORMATS, MAX_LINE_CHARS, MAX_LINES_PER_CUE, to_json, to_srt, to_txt, to_vtt, write

LONG = (
    "this sentence is far too long for one subtitle line and goes on and on about nothing in particular "
    "until a reader would need three lines to hold it all, which a cue must not have"
)
SEGMENTS = [
    Segment(0.0, 2.5, "Hello there."),
    Segment(2.5, 14.25, LONG),
    Segment(15.0, 15.5, "<b>Tom & Jerry</b> --> end"),
    Segment(3723.0, 3724.456, "an hour later"),
]

TIME = r"(\d{{2,}}):([0-5]\d):([0-5]\d){sep}(\d{{3}})"


def to_ms(match: tuple[str, ...]) -> int:
    h, m, s, ms = map(int, match)
    return ((h * 60 + m) * 60 + s) * 1000 + ms


def parse_cues(blocks: list[str], sep: str, numbered: bool) -> list[tuple[int, int, list[str]]]:
    """Strict: optional cue number 1, 2, ...; `start --> end`; 1-2 non-empty lines; start < end; in order."""
    line_re = re.compile(rf"^{TIME.format(sep=sep)} --> {TIME.format(sep=sep)}$")
    cues, previous_end = [], 0
    for n, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        if numbered:
            assert lines.pop(0) == str(n), block
        match = line_re.match(lines.pop(0))
        assert match, block
        start, end = to_ms(match.groups()[:4]), to_ms(match.groups()[4:])
        assert previous_end <= start < end, block
        assert 1 <= len(lines) <= MAX_LINES_PER_CUE and all(line.strip() == line and line for line in lines), block
        assert all(len(html.unescape(line)) <= MAX_LINE_CHARS or " " not in line for line in lines), block
        assert all("-->" not in line for line in lines), block
        cues.append((start, end, lines))
        previous_end = end
    return cues


def parse_srt(text: str) -> list[tuple[int, int, list[str]]]:
    assert text.endswith("\n") and not text.endswith("\n\n\n")
    return parse_cues(text.rstrip("\n").split("\n\n"), ",", numbered=True)


def parse_vtt(text: str) -> list[tuple[int, int, list[str]]]:
    header, _, body = text.partition("\n\n")
    assert header == "WEBVTT"
    cues = parse_cues(body.rstrip("\n").split("\n\n"), ".", numbered=False)
    assert all(re.fullmatch(r"([^&<>]|&amp;|&lt;|&gt;)*", line) for _, _, lines in cues for line in lines)
    unescape = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
    return [(s, e, [re.sub(r"&(lt|gt|amp);", lambda m: unescape[m.group()], x) for x in lines]) for s, e, lines in cues]


def words_of(cues) -> list[str]:
    return [w for _, _, lines in cues for line in lines for w in line.split()]


def expected_words(segments) -> list[str]:
    return join_segments(segments).replace("-->", "->").split()


@pytest.mark.parametrize("parse,write_fn", [(parse_srt, to_srt), (parse_vtt, to_vtt)])
def test_cues_are_valid_and_give_back_the_text(parse, write_fn):
    cues = parse(write_fn(SEGMENTS))
    assert words_of(cues) == expected_words(SEGMENTS)
    assert len(cues) > len(SEGMENTS)  # the long segment became several cues
    assert (cues[0][0], cues[0][1]) == (0, 2500)
    assert (cues[-1][0], cues[-1][1]) == (3_723_000, 3_724_456)


def test_long_segment_is_split_on_words_with_time_in_proportion_to_characters():
    cues = parse_srt(to_srt([Segment(10.0, 20.0, LONG)]))
    assert len(cues) >= 2 and cues[0][0] == 10_000 and cues[-1][1] == 20_000
    for (_, end, _), (start, _, _) in zip(cues, cues[1:]):
        assert end == start  # contiguous
    chars = [sum(len(line) for line in lines) for _, _, lines in cues]
    for (start, end, _), n_chars in zip(cues, chars):
        assert (end - start) == pytest.approx(10_000 * n_chars / sum(chars), abs=2)
    assert " ".join(words_of(cues)) == LONG


def test_timestamps_and_edge_cases():
    assert subtitles.timestamp(3_723_456, ",") == "01:02:03,456"
    assert subtitles.timestamp(0, ".") == "00:00:00.000"
    assert subtitles.timestamp(360_000_000 + 1, ".") == "100:00:00.001"
    assert subtitles.wrap_lines("a" * 50 + " b") == ["a" * 50, "b"]  # a word longer than a line stays whole
    assert to_srt([]) == "" and to_vtt([]) == "WEBVTT\n" and to_txt([]) == ""
    # a zero-length segment still gets a cue that lasts, and the next cue does not start before it ends
    cues = parse_srt(to_srt([Segment(1.0, 1.0, "blip"), Segment(1.0, 2.0, "next")]))
    assert [(s, e) for s, e, _ in cues] == [(1000, 1001), (1001, 2000)]
    cues = parse_srt(to_srt([Segment(0.0, 1.0, "a"), Segment(1.0, 2.0, ""), Segment(2.0, 3.0, "b")]))
    assert [c[2] for c in cues] == [["a"], ["b"]]  # empty segments make no cue


def test_txt_and_json():
    assert to_txt(SEGMENTS[:2]) == f"Hello there.\n{LONG}\n"
    data = to_json(SEGMENTS, file="talk.wav")
    assert data["file"] == "talk.wav" and data["text"] == join_segments(SEGMENTS)
    assert data["segments"][3] == {"start": 3723.0, "end": 3724.456, "text": "an hour later"}
    assert json.loads(FORMATS["json"](SEGMENTS)) == to_json(SEGMENTS)


def test_optional_parsers_agree():
    pysrt = pytest.importorskip("pysrt")
    webvtt = pytest.importorskip("webvtt")
    ours = parse_srt(to_srt(SEGMENTS))
    theirs = pysrt.from_string(to_srt(SEGMENTS))
    assert [(c.index, c.start.ordinal, c.end.ordinal, c.text.split("\n")) for c in theirs] == [
        (n, s, e, lines) for n, (s, e, lines) in enumerate(ours, start=1)
    ]
    vtt = webvtt.from_string(to_vtt(SEGMENTS))
    ours = parse_vtt(to_vtt(SEGMENTS))
    assert [c.text.split("\n") for c in vtt] == [[subtitles._vtt_escape(x) for x in lines] for _, _, lines in ours]
    assert [(c.start, c.end) for c in vtt] == [
        (subtitles.timestamp(s, "."), subtitles.timestamp(e, ".")) for s, e, _ in ours
    ]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_write_is_atomic_and_matches_the_writer(tmp_path, fmt):
    path = write(SEGMENTS, tmp_path / "out" / f"talk.{fmt}")
    expected = FORMATS[fmt](SEGMENTS)
    assert path.read_text(encoding="utf-8") == expected
    assert sorted(p.name for p in path.parent.iterdir()) == [f"talk.{fmt}"]  # no temp file left
    assert write(SEGMENTS, tmp_path / "plain", fmt=fmt).read_text(encoding="utf-8") == expected


def test_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "talk.srt"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write(SEGMENTS, path)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["talk.srt"]


def test_write_json_names_the_file_and_rejects_unknown_formats(tmp_path):
    path = write(SEGMENTS, tmp_path / "t.json", file="talk.wav")
    assert json.loads(path.read_text())["file"] == "talk.wav"
    with pytest.raises(ValueError, match="unknown transcript format"):
        write(SEGMENTS, tmp_path / "t.doc")
