"""The synthetic speech corpus: ~20 utterances from the real espeak-ng and fortune files, in a few seconds."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

import tasks.corpora.sentences as sentences_module
from tasks.corpora import speech
from tasks.corpora.sentences import MissingSentenceSource, normalize_sentence, sentences
from tasks.corpora.speech import (
    EVAL_ONLY_VARIANTS,
    MissingSpeechSynthesizer,
    generate_speech_corpus,
    is_eval_sentence,
    long_recording,
)

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or not sentences_module.FORTUNE_DIR.is_dir(),
    reason="needs Debian's espeak-ng and fortunes (make setup)",
)
HOURS = 0.02  # ~20 utterances
ROW_KEYS = {"file_name", "text", "voice", "speed", "pitch", "duration_s"}


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("speech")
    summary = generate_speech_corpus(out, hours=HOURS, eval_fraction=0.3, seed=3, workers=2)
    return out, summary


def variant_of(voice: str) -> str:
    return voice.split("+", 1)[1]


def test_sentences_are_many_clean_and_unique():
    found = sentences()
    assert len(found) > 10000
    assert len(set(found)) == len(found)
    for text in found:
        assert 3 <= len(text.split()) <= 25
        assert not re.search(r"\d", text) and text.isascii() and text[-1] in ".?!"


@pytest.mark.parametrize("raw, expected", [
    ('He said "hello there" -- and left.', "He said hello there, and left."),
    ("It was 1984 and all was well.", None),
    ("The U.S. is large and wide.", None),
    ("Use IBM machines for this job.", None),
    ("Too short.", None),
    ("Why not go now?!", "Why not go now!"),
])
def test_normalize_sentence(raw, expected):
    assert normalize_sentence(raw) == expected


def test_corpus_files_are_16k_mono_with_complete_rows(corpus):
    out, summary = corpus
    for split in ("train", "eval"):
        rows = read_rows(out / split)
        assert len(rows) == summary[split]["utterances"] > 0
        assert sum(r["duration_s"] for r in rows) / 3600 == pytest.approx(summary[split]["hours"], rel=1e-3)
        for row in rows:
            assert set(row) == ROW_KEYS
            audio, sample_rate = soundfile.read(out / split / row["file_name"], always_2d=True)
            assert sample_rate == 16000 and audio.shape[1] == 1
            assert audio.shape[0] / 16000 == pytest.approx(row["duration_s"], abs=1e-3)
            assert np.abs(audio).max() > 0.01  # speech, not silence
            words = len(row["text"].split())
            assert row["text"].strip() and not re.search(r"\d", row["text"])
            # 120-260 wpm (short words go faster, pauses slower): the duration fits the word count
            assert words / 450 * 60 < row["duration_s"] < words / 80 * 60 + 2.0
            assert 120 <= row["speed"] <= 260 and 20 <= row["pitch"] <= 80


def test_hours_reached(corpus):
    _, summary = corpus
    assert summary["train"]["hours"] >= HOURS * 0.7 and summary["eval"]["hours"] >= HOURS * 0.3


def test_same_seed_same_metadata(corpus, tmp_path):
    out, _ = corpus
    generate_speech_corpus(tmp_path, hours=HOURS, eval_fraction=0.3, seed=3, workers=1)
    for split in ("train", "eval"):
        assert read_rows(tmp_path / split) == read_rows(out / split)
        for row in read_rows(out / split):  # the audio too, across worker counts
            a, _ = soundfile.read(out / split / row["file_name"])
            b, _ = soundfile.read(tmp_path / split / row["file_name"])
            np.testing.assert_array_equal(a, b)


def test_eval_sentences_disjoint_from_train(corpus):
    out, _ = corpus
    train = {r["text"] for r in read_rows(out / "train")}
    evaluation = {r["text"] for r in read_rows(out / "eval")}
    assert not train & evaluation
    assert all(is_eval_sentence(t) for t in evaluation) and not any(is_eval_sentence(t) for t in train)


def test_held_out_variants_only_in_eval(corpus):
    out, summary = corpus
    assert summary["voices"]["eval_only_variants"] == sorted(EVAL_ONLY_VARIANTS)
    train = {variant_of(r["voice"]) for r in read_rows(out / "train")}
    evaluation = {variant_of(r["voice"]) for r in read_rows(out / "eval")}
    assert not train & set(EVAL_ONLY_VARIANTS)
    assert evaluation & set(EVAL_ONLY_VARIANTS)
    assert set(summary["voices"]["train_variants"]).isdisjoint(EVAL_ONLY_VARIANTS)


def test_long_recording_segments_match_audio(tmp_path):
    reference = long_recording(tmp_path / "long.wav", minutes=0.25, seed=1, workers=1)
    audio, sample_rate = soundfile.read(tmp_path / "long.wav")
    assert sample_rate == 16000 and audio.ndim == 1
    assert json.loads((tmp_path / "long.json").read_text()) == reference
    assert len(audio) / 16000 == pytest.approx(reference["duration_s"], abs=1e-3) and reference["duration_s"] >= 15
    segments = reference["segments"]
    assert reference["text"] == " ".join(s["text"] for s in segments)
    for before, after in zip(segments, segments[1:]):
        assert before["end_s"] + 0.19 < after["start_s"]  # a pause between utterances
        gap = audio[int(before["end_s"] * 16000) + 1 : int(after["start_s"] * 16000) - 1]
        assert np.abs(gap).max() < 1e-3
    for segment in segments:
        assert np.abs(audio[int(segment["start_s"] * 16000) : int(segment["end_s"] * 16000)]).max() > 0.01
        assert is_eval_sentence(segment["text"])


def test_missing_espeak_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(MissingSpeechSynthesizer, match="apt-get install -y espeak-ng"):
        generate_speech_corpus(tmp_path, hours=HOURS)


def test_missing_fortunes_gives_a_clear_error(tmp_path):
    with pytest.raises(MissingSentenceSource, match="apt-get install -y fortunes"):
        sentences(tmp_path / "nowhere")
    with pytest.raises(MissingSentenceSource, match="fortunes"):
        sentences(tmp_path)  # exists, but holds no fortune files


def test_other_seed_other_corpus(corpus, tmp_path):
    out, _ = corpus
    generate_speech_corpus(tmp_path, hours=0.005, eval_fraction=0.3, seed=4, workers=1)
    assert read_rows(tmp_path / "train")[0] != read_rows(out / "train")[0]
