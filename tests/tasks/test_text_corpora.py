"""The offline text corpora: emoji names -> group, fortunes -> topic, Faker NER sentences."""

import json

import pytest

from tasks.corpora.ner_sentences import HELDOUT_TEMPLATES, TRAIN_TEMPLATES, generate_ner_corpus
from tasks.corpora.sentences import FORTUNE_DIR
from tasks.corpora.text_classes import FORTUNE_TOPICS, clean_quote, generate_text_corpus, split_rows
from tasks.ner import check_tags, entities_of, split_words


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_split_is_stratified_stable_and_drops_ambiguous_texts():
    rows = [(f"text {i}", "ab"[i % 2]) for i in range(40)] + [("same", "a"), ("same", "b")]
    first, again = split_rows(rows, 0.25), split_rows(list(reversed(rows)), 0.25)
    assert first == again
    assert sum(r["label"] == "a" for r in first["eval"]) == sum(r["label"] == "b" for r in first["eval"]) == 5
    assert not {r["text"] for r in first["train"]} & {r["text"] for r in first["eval"]}
    assert all(r["text"] != "same" for split in first.values() for r in split)
    assert len(split_rows(rows, 0.25, max_per_label=8)["train"]) == 12


def test_emoji_corpus(tmp_path):
    summary = generate_text_corpus("emoji", tmp_path, eval_fraction=0.15)
    assert len(summary["train"]) == 9 and "Food & Drink" in summary["train"]
    rows = read(tmp_path / "train.jsonl")
    assert {"text": "red apple", "label": "Food & Drink"} in rows + read(tmp_path / "eval.jsonl")
    assert not any("skin tone" in r["text"] for r in rows)


@pytest.mark.skipif(not FORTUNE_DIR.is_dir(), reason="Debian fortunes not installed")
def test_fortunes_corpus(tmp_path):
    summary = generate_text_corpus("fortunes", tmp_path, max_per_label=50)
    assert set(summary["train"]) == set(FORTUNE_TOPICS)
    assert all(summary["train"][t] + summary["eval"][t] <= 50 for t in FORTUNE_TOPICS)
    assert clean_quote("caf\xe9 society is fun") is None and clean_quote("two words") is None
    assert clean_quote("A   bug in\n the hand.") == "A bug in the hand."


def test_ner_corpus_is_deterministic_with_held_out_templates(tmp_path):
    generate_ner_corpus(tmp_path / "a", 60, 20, seed=3)
    generate_ner_corpus(tmp_path / "b", 60, 20, seed=3)
    assert (tmp_path / "a/train.jsonl").read_text() == (tmp_path / "b/train.jsonl").read_text()
    train, evaluation = read(tmp_path / "a/train.jsonl"), read(tmp_path / "a/eval.jsonl")
    assert not set(TRAIN_TEMPLATES) & set(HELDOUT_TEMPLATES)
    kinds = {e["label"] for r in train for e in r["entities"]}
    assert kinds == {"PER", "LOC", "ORG", "DATE"}
    for row in train + evaluation:
        assert check_tags(row["tokens"], row["tags"]) == ""
        found = entities_of(row["text"], split_words(row["text"]), row["tags"])
        assert [(e.start, e.end, e.label) for e in found] == [(e["start"], e["end"], e["label"]) for e in row["entities"]]
    first_words = {r["text"].split()[0] for r in evaluation}
    assert "Yesterday" in first_words  # a held-out template's wording
    assert not any(r["text"].startswith("Yesterday") for r in train)
