"""The Amazon Fine Food reviews: R's lazy-load DB read without R, the text clean-up, and a split by text hash."""

import bz2
import json
import lzma
import zlib

import pytest

from tasks.corpora import amazon_reviews
from tasks.corpora.amazon_reviews import (
    MissingFineFoodsSource, clean_text, decode_entry, review_sets, split_reviews, write_amazon_corpus,
)

SERIALIZED = b"X\n\x00\x00\x00\x03" + bytes(range(256)) * 3  # stands for an R serialization: any bytes will do


def _entry(raw: bytes, kind: bytes) -> bytes:
    """An entry as R's lazy-load DB writes it with compression 2 or 3: length, type byte, body."""
    body = {b"Z": lambda b: lzma.compress(b, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}]),
            b"2": bz2.compress, b"1": zlib.compress, b"0": lambda b: b}[kind](raw)
    return len(raw).to_bytes(4, "big") + kind + body


@pytest.mark.parametrize("kind", [b"Z", b"2", b"1", b"0"])
def test_entries_of_every_type_decode(kind):
    assert decode_entry(_entry(SERIALIZED, kind), compressed=3) == SERIALIZED
    assert decode_entry(_entry(SERIALIZED, kind), compressed=2) == SERIALIZED


def test_plain_zlib_entries_and_bad_entries():
    assert decode_entry(len(SERIALIZED).to_bytes(4, "big") + zlib.compress(SERIALIZED), compressed=1) == SERIALIZED
    with pytest.raises(ValueError, match="unknown entry type b'x'"):
        decode_entry(b"\x00\x00\x00\x01x1", compressed=3)
    with pytest.raises(ValueError, match="header says 5"):
        decode_entry(b"\x00\x00\x00\x05" + b"0abc", compressed=3)
    with pytest.raises(ValueError, match="compression 7"):
        decode_entry(b"\x00\x00\x00\x00", compressed=7)


def test_html_becomes_plain_text():
    assert clean_text("Great.<br /><br />I &quot;love&quot; <a href=\"http://x.com/p\">this tea</a>  <3 ") == \
        'Great. I "love" this tea <3'


def _lazyload_db(folder, frames):
    """Rdata.rdx + Rdata.rdb holding `frames` ({name: DataFrame}), one LZMA2 entry each, as R writes them."""
    rdata = pytest.importorskip("rdata")
    import numpy as np
    from rdata.conversion import convert_python_to_r_data
    from rdata.unparser import unparse_data

    db, index = b"", {}
    for name, frame in frames.items():
        entry = _entry(unparse_data(convert_python_to_r_data(frame)), b"Z")
        index[name] = np.array([len(db), len(entry)], dtype=np.int32)
        db += entry
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Rdata.rdb").write_bytes(db)
    rdata.write_rds(folder / "Rdata.rdx", {"variables": index, "references": {}, "compressed": 3})
    return folder


def _frame(reviews, scores):
    import pandas as pd

    return pd.DataFrame({"product": pd.Series([f"B{i:03d}" for i in range(len(reviews))], dtype=object),
                         "review": pd.Series(reviews, dtype=object),
                         "score": pd.Categorical(scores, categories=["great", "other"])})


def test_a_synthetic_lazyload_db_reads_as_two_sets(tmp_path):
    folder = _lazyload_db(tmp_path / "data", {
        "training_data": _frame(["Lovely jam.<br />Buy it.", "Too  sweet &amp; sticky"], ["great", "other"]),
        "testing_data": _frame(["Fine, I guess."], ["other"]),
        "other_object": _frame(["not read"], ["great"]),
    })
    assert review_sets(folder) == {"train": [{"text": "Lovely jam. Buy it.", "label": "great"},
                                             {"text": "Too sweet & sticky", "label": "other"}],
                                   "test": [{"text": "Fine, I guess.", "label": "other"}]}


def test_split_keeps_the_test_set_and_holds_out_a_tenth_of_train_by_text():
    sets = {"train": [{"text": f"review {i % 1800}", "label": "great"} for i in range(2000)],
            "test": [{"text": f"test review {i}", "label": "other"} for i in range(50)]}
    splits = split_reviews(sets)
    assert splits["test"] == sets["test"]
    assert len(splits["train"]) + len(splits["validation"]) == 2000
    assert 0.07 < len(splits["validation"]) / 2000 < 0.13
    texts = {name: {r["text"] for r in rows} for name, rows in splits.items()}
    assert not texts["train"] & texts["validation"]  # a repeated text is always in the same split
    assert split_reviews(sets) == splits
    with pytest.raises(ValueError, match="eval_fraction must be between 0 and 1, got 0"):
        split_reviews(sets, eval_fraction=0)


def test_a_missing_package_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTIMODAL_CACHE", str(tmp_path))
    with pytest.raises(MissingFineFoodsSource, match="r-cran-modeldata.*multimodal data amazon.*make setup"):
        amazon_reviews.source_dir(fetch=False)


def test_the_real_reviews_keep_their_counts(tmp_path):
    pytest.importorskip("rdata")
    try:
        amazon_reviews.source_dir(fetch=False)
    except MissingFineFoodsSource:
        pytest.skip("r-cran-modeldata is not unpacked in the cache (multimodal data amazon fetches it)")
    summary = write_amazon_corpus(tmp_path)
    assert sum(summary["train"].values()) + sum(summary["eval"].values()) == 4000
    assert summary["train"] + summary["eval"] == {"great": 2600, "other": 1400}
    assert summary["test"] == {"great": 658, "other": 342}
    rows = {s: [json.loads(line) for line in (tmp_path / f"{s}.jsonl").open()] for s in ("train", "eval", "test")}
    assert all(r["text"] and "<br" not in r["text"] for part in rows.values() for r in part)
    assert not {r["text"] for r in rows["train"]} & {r["text"] for r in rows["eval"]}
