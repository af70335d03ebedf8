"""Real sentiment: Amazon Fine Food reviews, "great" (5 stars) or "other" (1-4 stars), with the set's own test split.

Source: the `small_fine_foods` data of the R package modeldata, from the Debian package `r-cran-modeldata`
(1.1.0-1), read without R. `multimodal data amazon` fetches it once: `apt-get download` into `CACHE/debs`, then
`dpkg-deb -x` into `CACHE/modeldata_src` (the cache is `encoders.cache.cache_dir()`); only the package is
fetched, not R (its dependency). The data sit in R's lazy-load database: `data/Rdata.rdx` (a gzip RDS file)
names each object's offset and length in `data/Rdata.rdb`; each entry there is a 4-byte big-endian length of the
serialized object, then zlib (`compressed` 1), or a type byte and a body (`compressed` 2 or 3): `Z` raw LZMA2,
`2` bzip2, `1` zlib, `0` stored. PyPI `rdata==1.1.0` parses the serialized data frames. The package is MIT; the
texts are Amazon users' reviews as SNAP published them (snap.stanford.edu/data/web-FineFoods.html), with no
licence of their own: they stay in the cache and are never committed. Two objects:
- `training_data`: 4,000 reviews (2,600 great / 1,400 other) and `testing_data`: 1,000 (658 / 342), columns
  `product`, `review` and `score`: whether the reviewer gave 5 stars (great) or not (other, which holds neutral
  and mildly positive reviews too), so the labels keep the data set's names, not positive / negative.
Texts: HTML tags (`<br />` line breaks, `<a href>` links; in 1,182 of the 5,000 reviews) become spaces, HTML
entities (`&quot;`, in 23) characters, runs of white space one space; none is empty (10 to 1,464 words). 12 reviews
hold U+FFFD (20 characters broken in the source). Each review is of a different product (4,000 + 1,000 product
ids), so no product is in two splits; modeldata's help page says the training set holds all the reviews of 10
products, which these files do not bear out.

Splits:
- test: modeldata's `testing_data`, all 1,000, read once, for the figure a model card reports;
- validation: the training reviews whose text hashes under `EVAL_SEED` into the first `eval_fraction` (10 %);
  it picks the checkpoint and every setting; identical texts always fall in the same split;
- train: the rest of the training reviews.
Same files, same seed: same splits, on any machine. With the defaults: train 3,619 (2,348 great / 1,271 other),
validation 381 (252 / 129), test 1,000 (658 / 342). Duplicate texts (after the clean-up above): 19 training texts
occur more than once (21 extra copies, each copy with the same label, all in one split by the rule above); 7 test
texts are also training texts (6 in train, 1 in validation), with the same label; they are kept, as modeldata's
sets have them.
"""

from __future__ import annotations

import bz2
import html
import lzma
import re
import shutil
import subprocess
import tempfile
import warnings
import zlib
from collections import Counter
from pathlib import Path

from tasks.corpora.splits import share, write_splits

PACKAGE = "r-cran-modeldata"  # Debian, 1.1.0-1: the R package modeldata (MIT); only its data are read
DATA_DIR = "usr/lib/R/site-library/modeldata/data"  # inside the unpacked package
OBJECTS = {"train": "training_data", "test": "testing_data"}  # R objects of `small_fine_foods`
LABELS = ("great", "other")  # the data set's own `score` levels: 5 stars, or any other rating
EVAL_SEED = 0
SPLITS = ("train", "validation", "test")
HTML_TAG = re.compile(r"</?[A-Za-z][^<>]{0,400}>")  # <br />, <a href=...>, </a>, <p>, <span ...>
R_LZMA2 = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]  # R's filters for xz entries (serialize.c)


class MissingFineFoodsSource(FileNotFoundError):
    """The Debian package that carries the reviews, or the reader of R's files, is not there."""


def sources_dir() -> Path:
    """`CACHE/modeldata_src`: the unpacked Debian package."""
    from encoders.cache import cache_dir

    return cache_dir() / "modeldata_src"


def source_dir(fetch: bool = True) -> Path:
    """The package's `data/` folder (Rdata.rdx, Rdata.rdb); fetched and unpacked the first time if `fetch`."""
    root = sources_dir()
    data = root / DATA_DIR
    if (data / "Rdata.rdx").is_file() and (data / "Rdata.rdb").is_file():
        return data
    how = (f"the Amazon Fine Food reviews come from the Debian package '{PACKAGE}', unpacked into {root}: "
           f"`multimodal data amazon` fetches it (apt-get download {PACKAGE}; dpkg-deb -x {PACKAGE}_*.deb {root}); "
           "`make setup` installs the reader of its files (rdata)")
    tools = [t for t in ("apt-get", "dpkg-deb") if shutil.which(t) is None]
    if not fetch or tools:
        raise MissingFineFoodsSource(how + (f"; this machine has no {' or '.join(tools)}" if tools else ""))
    from tasks.corpora.object_sources import _download, _downloaded

    debs = root.parent / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    try:
        deb = _downloaded(debs, PACKAGE) or _download(debs, PACKAGE)
    except RuntimeError as e:
        raise MissingFineFoodsSource(f"{how}; {e}") from e
    unpacked = Path(tempfile.mkdtemp(dir=root.parent, prefix=".modeldata_src-"))  # renamed into place when complete
    try:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        unpacked.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)  # a partial folder from an older run
        unpacked.rename(root)
    except BaseException:
        shutil.rmtree(unpacked, ignore_errors=True)
        raise
    return data


def _rdata():
    try:
        import rdata
    except ImportError as e:
        raise MissingFineFoodsSource("R's files are read with the PyPI package 'rdata': `make setup` installs it "
                                     "(pip install rdata==1.1.0)") from e
    return rdata


def decode_entry(blob: bytes, compressed: int) -> bytes:
    """One entry of a lazy-load DB -> R serialization bytes (R's R_decompress1/2/3)."""
    size = int.from_bytes(blob[:4], "big")
    if compressed == 1:
        raw = zlib.decompress(blob[4:])
    elif compressed in (2, 3):
        kind, body = blob[4:5], blob[5:]
        if kind == b"Z":
            raw = lzma.decompress(body, format=lzma.FORMAT_RAW, filters=R_LZMA2)
        elif kind == b"2":
            raw = bz2.decompress(body)
        elif kind == b"1":
            raw = zlib.decompress(body)
        elif kind == b"0":
            raw = body
        else:
            raise ValueError(f"unknown entry type {kind!r} in a lazy-load DB")
    else:
        raise ValueError(f"unknown lazy-load DB compression {compressed!r}")
    if len(raw) != size:
        raise ValueError(f"a lazy-load DB entry holds {len(raw)} bytes, its header says {size}")
    return raw


def read_lazyload(folder: str | Path, names: tuple[str, ...]) -> dict[str, object]:
    """The named objects of `folder`/Rdata.rdx + Rdata.rdb, converted by rdata (data frames -> pandas)."""
    rdata = _rdata()
    folder = Path(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS", "Missing constructor for tbl_df"
        index = rdata.read_rds(folder / "Rdata.rdx")
        compressed = int(index["compressed"][0])  # an R scalar: a vector of length 1
        out = {}
        with open(folder / "Rdata.rdb", "rb") as f:
            for name in names:
                if name not in index["variables"]:
                    raise KeyError(f"{folder}/Rdata.rdx has no object {name!r}")
                offset, length = (int(v) for v in index["variables"][name])
                f.seek(offset)
                raw = decode_entry(f.read(length), compressed)
                out[name] = rdata.conversion.convert(rdata.parser.parse_data(raw))
    return out


def clean_text(review: str) -> str:
    """HTML tags -> spaces, HTML entities -> characters, white space collapsed."""
    return " ".join(html.unescape(HTML_TAG.sub(" ", review)).split())


def review_sets(folder: str | Path | None = None) -> dict[str, list[dict[str, str]]]:
    """{train, test}: modeldata's two sets as {text, label} rows, in the files' order."""
    frames = read_lazyload(folder or source_dir(), tuple(OBJECTS.values()))
    out = {}
    for split, name in OBJECTS.items():
        frame = frames[name]
        rows = [{"text": clean_text(str(text)), "label": str(score)} for text, score in zip(frame["review"], frame["score"])]
        bad = sorted({r["label"] for r in rows} - set(LABELS))
        if bad:
            raise ValueError(f"{name}: unexpected score level(s) {bad}; expected {LABELS}")
        out[split] = rows
    return out


def split_reviews(sets: dict[str, list[dict[str, str]]], eval_fraction: float = 0.1) -> dict[str, list[dict[str, str]]]:
    """{train, validation, test}: the given test set as it is, `eval_fraction` of its training set by text hash."""
    if not 0 < eval_fraction < 1:
        raise ValueError(f"eval_fraction must be between 0 and 1, got {eval_fraction}")
    out: dict[str, list[dict[str, str]]] = {"train": [], "validation": [], "test": list(sets["test"])}
    for row in sets["train"]:
        out["validation" if share(EVAL_SEED, row["text"]) < eval_fraction else "train"].append(row)
    return out


def amazon_fine_foods(eval_fraction: float = 0.1):
    """The splits as a `datasets.DatasetDict` (columns text, label)."""
    import datasets

    splits = split_reviews(review_sets(), eval_fraction)
    return datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()})


def write_amazon_corpus(out: str | Path, eval_fraction: float = 0.1) -> dict[str, Counter]:
    """Write train.jsonl, eval.jsonl (the validation split) and test.jsonl into `out`; label counts per split."""
    written = write_splits(out, split_reviews(review_sets(), eval_fraction))
    return {stem: Counter(r["label"] for r in rows) for stem, rows in written.items()}
