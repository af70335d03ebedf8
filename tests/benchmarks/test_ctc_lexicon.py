"""benchmarks/ctc_lexicon.py with a tiny random model: the word score is chosen on one half, reported on the other."""

import json

import numpy as np
import pytest
import soundfile

import multimodal as mm

from ..conftest import ROOT
from . import load_benchmark


def test_greedy_and_lexicon_side_by_side(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i, text in enumerate(["the cat sat", "a hat", "on the mat", "the cat"]):
        soundfile.write(clips / f"{i}.wav", 0.3 * rng.standard_normal(16000).astype(np.float32), 16000)
        rows.append({"file_name": f"{i}.wav", "text": text})
    (clips / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "words.txt").write_text("the cat sat a hat\n")  # "on" and "mat" are missing
    model = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "backbone.overrides.initializer_range=0.5"])
    model.save(tmp_path / "model")
    results = load_benchmark("ctc_lexicon").main([
        "--model", str(tmp_path / "model"), "--clips", str(clips), "--lexicon", str(tmp_path / "words.txt"),
        "--word-scores", "0", "-3", "--json", str(tmp_path / "out.json")])
    assert results["n_tune"] == 2 and results["n_report"] == 2 and set(results["by_word_score"]) == {0.0, -3.0}
    tune_wer = {ws: r["tune"]["wer"] for ws, r in results["by_word_score"].items()}
    assert tune_wer[results["chosen_word_score"]] == min(tune_wer.values())
    assert results["out_of_lexicon"] == 2 / 5 and results["lexicon_words"] == 5
    assert json.loads((tmp_path / "out.json").read_text())["greedy"]["report"]["wer"] >= 0

    from tasks.ngram_lm import write_arpa

    write_arpa([r["text"] for r in rows], tmp_path / "words.arpa")
    results = load_benchmark("ctc_lexicon").main([
        "--model", str(tmp_path / "model"), "--clips", str(clips), "--lexicon", str(tmp_path / "words.txt"),
        "--word-scores", "-3", "--lm", str(tmp_path / "words.arpa"), "--lm-weights", "0.5", "2",
        "--lm-word-scores", "0", "--rescore", "--nbest", "3", "--rescore-weights", "0", "1", "--rescore-word-bonuses", "2"])
    assert set(results["by_lm_weight"]) == {"0.5/0", "2/0"} and results["chosen_lm"] in results["by_lm_weight"]
    rescored = results["rescoring"]
    assert rescored["lm_setting"] == results["chosen_lm"] and set(rescored["grid"]) == {"0/2", "1/2"}
    assert rescored["oracle_report_wer"] <= min(r["report"]["wer"] for r in rescored["grid"].values())
    assert rescored["distinct_texts"] >= 1


def test_a_missing_word_list_stops_before_the_model_runs(tmp_path):
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.wav", "text": "a"}\n{"file_name": "b.wav", "text": "b"}\n')
    with pytest.raises(SystemExit, match="nowhere.txt"):
        load_benchmark("ctc_lexicon").main(["--model", str(tmp_path / "no_model"), "--clips", str(tmp_path),
                                            "--lexicon", str(tmp_path / "nowhere.txt")])
    (tmp_path / "words.txt").write_text("a b\n")
    with pytest.raises(SystemExit, match="nowhere.arpa"):
        load_benchmark("ctc_lexicon").main(["--model", str(tmp_path / "no_model"), "--clips", str(tmp_path),
                                            "--lexicon", str(tmp_path / "words.txt"), "--lm", str(tmp_path / "nowhere.arpa")])
    with pytest.raises(SystemExit, match="--beam-size must be at least 1, got 0"):  # 0 is not "the default"
        load_benchmark("ctc_lexicon").main(["--model", str(tmp_path / "no_model"), "--clips", str(tmp_path),
                                            "--lexicon", str(tmp_path / "words.txt"), "--beam-size", "0"])


def test_phone_head_is_scored_on_phones_greedy_and_words_in_the_search(tmp_path, monkeypatch):
    clips = tmp_path / "clips"
    clips.mkdir()
    rows = [{"file_name": f"{i}.wav", "text": t, "voice": "en-gb+m1"} for i, t in enumerate(["the cat", "a hat"])]
    for row in rows:
        soundfile.write(clips / row["file_name"], np.zeros(16000, dtype=np.float32), 16000)
    (clips / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "heads.ctc_units=phonemes"])
    model.save(tmp_path / "model")
    from tasks import metrics, phonemes

    scored = []
    monkeypatch.setattr(metrics, "wer", lambda refs, hyps: scored.append(list(refs)) or 0.0)
    results = load_benchmark("ctc_lexicon").main([
        "--model", str(tmp_path / "model"), "--clips", str(clips), "--lexicon", str(clips / "metadata.jsonl"),
        "--word-scores", "0"])
    assert results["units"] == "phonemes" and results["lexicon_words"] == 4
    assert scored[0] == [" ".join(phonemes.phones("the cat", "en-gb"))]  # greedy, tune half: phones
    assert scored[2] == ["the cat"]  # the lexicon search, tune half: words
