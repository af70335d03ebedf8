"""Fuzzing the data reader `load_rows` (what `multimodal train --train/--eval`, `evaluate --data` and the Python
API's training read data with): JSONL and CSV files, and media folders with metadata.jsonl / metadata.csv.

Property: rows every one of which makes a task example (text where text belongs; media that decode, or an
`InputFileError` naming the file when only the pixels or samples are bad), or a `DataError` naming the source;
within the time and memory bounds of tests/fuzz/properties.py.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import torchcodec.decoders  # noqa: F401 - the ffmpeg fallback's import: paid here once, not under tracemalloc
from hypothesis import event, example, given
from hypothesis import strategies as st
from PIL import Image

from encoders import InputFileError
from multimodal.data import DataError, TaskDataset, load_rows
from tasks import get_task

from .properties import assert_clear_error, run_bounded

TASKS = ("classify", "classify_head", "ner", "caption", "transcribe")
COLUMNS = ("text", "label", "file_name", "entities", "tokens", "tags", "voice")
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=30)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(COLUMNS + ("start", "end")) | st.text(max_size=6), inner, max_size=4), max_leaves=12)
TEXTISH = st.one_of(st.text(min_size=1, max_size=30), st.text(max_size=30), JSON)  # mostly text, sometimes anything
ROW = st.one_of(  # rows that nearly fit a task, half the time, so the loaded branch of the property is exercised too
    st.fixed_dictionaries({"text": TEXTISH, "label": TEXTISH}, optional={
        "entities": JSON | st.lists(st.fixed_dictionaries({"start": st.integers(-2, 40), "end": st.integers(-2, 40),
                                                           "label": st.sampled_from(["PER", "LOC", ""])}), max_size=3),
        "tokens": st.lists(st.text(max_size=8), max_size=4) | JSON,
        "tags": st.lists(st.sampled_from(["O", "B-PER", "I-PER", "B-", "x"]), max_size=4) | JSON}),
    st.dictionaries(st.sampled_from(COLUMNS) | st.text(max_size=6), JSON, max_size=5))
FILE_NAMES = st.one_of(st.sampled_from(["img.png", "clip.wav", "sub/../img.png"]), st.sampled_from(
    ["bad.png", "missing.png", "../outside.png", "/etc/passwd", "link.png", "sub", "", " "]), st.text(max_size=12),
    st.integers())


def _line(row: dict) -> bytes:
    return json.dumps(row).encode()  # NaN and Infinity as JSON's readers write them


@st.composite
def jsonl(draw) -> bytes:
    lines = draw(st.lists(ROW.map(_line), min_size=1, max_size=6))
    if draw(st.integers(0, 3)) == 0:  # and, a quarter of the time, some raw damage: a line of any bytes
        lines.insert(draw(st.integers(0, len(lines))), draw(st.binary(max_size=60)))
    return b"\n".join(lines)


@st.composite
def csv_text(draw) -> bytes:
    header = draw(st.sampled_from([["text", "label"], ["label", "text", "voice"]])
                  | st.lists(st.sampled_from(COLUMNS) | st.text(max_size=6), min_size=1, max_size=4))
    cell = st.text(max_size=20) | st.integers().map(str) | st.floats().map(str) | st.just("")
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=len(header) + 1), max_size=6))
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    data = out.getvalue().encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 3)) == 0:  # and, a quarter of the time, some raw damage
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
    return data


def check_rows(source: Path, task_name: str) -> None:
    for on_bad_rows in ("error", "skip"):  # skip: the rows that are fine load, so the loaded branch runs too
        _check_rows(source, get_task(task_name), on_bad_rows)


def _check_rows(source: Path, task, on_bad_rows: str) -> None:
    outcome = run_bounded(load_rows, source, task, on_bad_rows)
    event(f"{task.name}, {on_bad_rows}: {'a DataError' if outcome.error else 'rows'}")  # --hypothesis-show-statistics
    if outcome.error is not None:
        assert_clear_error(outcome.error, DataError, source)
        return
    rows = outcome.result
    assert len(rows) > 0 and len(rows["length"]) == len(rows)
    dataset = TaskDataset(rows, task)
    for i in range(len(rows)):
        made = run_bounded(dataset.__getitem__, i)
        if made.error is not None:  # headers were checked on load; pixels or samples may still be bad
            assert task.modality != "text", f"row {i} of {source} loaded but makes no example: {made.error!r}"
            assert_clear_error(made.error, InputFileError, rows[i][task.input_column])
            continue
        reference = made.result["reference"]
        assert isinstance(reference, str) and reference.strip(), f"row {i}: empty target {reference!r}"
        if task.modality == "text" and not task.head:  # the LM reads the row's text in its prompt
            assert made.result["prompt"] == task.prompt.format(text=rows[i]["text"]), made.result["prompt"]


def _folder(scratch: Path) -> Path:
    """A media folder with one good image, one good clip, a damaged image, a subfolder and a link to outside."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    Image.new("RGB", (8, 6), (200, 30, 30)).save(folder / "img.png")
    soundfile.write(folder / "clip.wav", np.zeros(1600, np.float32), 16000)
    (folder / "bad.png").write_bytes((folder / "img.png").read_bytes()[:40])
    (folder / "sub").mkdir()
    (scratch / "outside.png").write_bytes((folder / "img.png").read_bytes())
    (folder / "link.png").symlink_to(scratch / "outside.png")
    return folder


def _write(scratch: Path, data: bytes, suffix: str) -> Path:
    path = Path(tempfile.mkdtemp(dir=scratch)) / f"data{suffix}"
    path.write_bytes(data)
    return path


@given(data=jsonl(), task=st.sampled_from(TASKS))
@example(data=b'{"text": "h\xff\xfe", "label": "x"}', task="classify")
@example(data=b'{"text": "hi", "label": NaN}', task="classify")
@example(data=b'{"text": {"a": 1}, "label": "x"}', task="classify")
@example(data=b'{"text": "hi", "label": [1, 2]}', task="classify")
@example(data=b'{"text": "hi", "entities": 5}', task="ner")
@example(data=b"", task="classify")
@example(data=b'{"text": true, "entities": null}\n{"text": true, "tags": null}', task="ner")  # two `tags` columns
@example(data=b'{"text": true, "entities": null}', task="ner")  # a bool text
def test_jsonl_files(scratch, data, task):
    check_rows(_write(scratch, data, ".jsonl"), task)


@given(data=csv_text(), task=st.sampled_from(TASKS))
@example(data=b"text,label\n\xff,\xfe\n", task="classify")
def test_csv_files(scratch, data, task):
    check_rows(_write(scratch, data, ".csv"), task)


@given(rows=st.lists(st.tuples(FILE_NAMES, TEXTISH), min_size=1, max_size=5), as_csv=st.booleans(),
       task=st.sampled_from(["caption", "transcribe"]))
@example(rows=[("img.png", "a cat"), (3, "a dog")], as_csv=False, task="caption")
@example(rows=[("img.png", "a cat"), ({"a": 1}, "a dog")], as_csv=False, task="caption")
@example(rows=[("\x00", False)], as_csv=False, task="caption")  # a NUL in a name: os.path raises ValueError
def test_media_folders(scratch, rows, as_csv, task):
    folder = _folder(scratch)
    if as_csv:
        out = io.StringIO()
        csv.writer(out).writerows([["file_name", "text"], *[[str(name), json.dumps(text)] for name, text in rows]])
        (folder / "metadata.csv").write_bytes(out.getvalue().encode("utf-8", "surrogatepass"))
    else:
        (folder / "metadata.jsonl").write_bytes(b"\n".join(_line({"file_name": n, "text": t}) for n, t in rows))
    check_rows(folder, task)


# ---------------------------------------------------------------------------------------------------------
# What the fuzzers found, as plain regression tests


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path):
    """Before: pyarrow read the bytes into a string column and `load_rows` raised a raw UnicodeDecodeError when it
    iterated the rows; now a DataError naming the file and the line."""
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "fine", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n')
    error = run_bounded(load_rows, path, get_task("classify")).error
    assert_clear_error(error, DataError, path)
    assert "is not UTF-8 text (line 2" in str(error)


def test_a_file_name_that_is_not_a_string_is_a_bad_row(tmp_path):
    """Before: `file_name: 3` passed the row check (it took it for a decoded image) and raised TypeError from
    `base / 3` while resolving paths; now row 1 is listed as a bad row."""
    folder = _folder(tmp_path)
    (folder / "metadata.jsonl").write_text('{"file_name": "img.png", "text": "a"}\n{"file_name": 3, "text": "b"}\n')
    error = run_bounded(load_rows, folder, get_task("caption")).error
    assert_clear_error(error, DataError, folder)
    assert "row 1: file_name 3 is not a file name (a int)" in str(error)
    assert len(load_rows(folder, get_task("caption"), on_bad_rows="skip")) == 1


def test_nan_labels_and_mappings_where_text_belongs_are_bad_rows(tmp_path):
    """Before: a NaN label became the label 'nan', and a {"a": 1} text the prompt "Text: {'a': 1}"; now both
    rows are listed, and a list label (fine for the multi-label head) is refused for the LM task only."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "ok", "label": "x"}\n{"text": "hi", "label": NaN}\n{"text": {"a": 1}, "label": "x"}\n'
                    '{"text": "hi", "label": ["x", "y"]}\n')
    error = run_bounded(load_rows, path, get_task("classify")).error
    assert_clear_error(error, DataError, path)
    message = str(error)
    assert "row 1: empty 'label'" in message and "row 2: 'text' holds a dict, not text: {'a': 1}" in message
    assert "row 3: 'label' holds a list, not text: ['x', 'y']" in message
    with_head = load_rows(path, get_task("classify_head"), on_bad_rows="skip")
    assert with_head["label"][-1] == ["x", "y"] and len(with_head) == 2


def test_a_task_that_refuses_its_rows_raises_a_data_error(tmp_path):
    """Before: NER's `entities: 5` came out as the task's plain ValueError; now a DataError (still naming the file)."""
    path = tmp_path / "ner.jsonl"
    path.write_text('{"text": "hi", "entities": 5}\n')
    assert_clear_error(run_bounded(load_rows, path, get_task("ner")).error, DataError, path)


def test_an_empty_file_says_so(tmp_path):
    """Before: "cannot read data file '...': " and nothing after the colon."""
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    error = run_bounded(load_rows, path, get_task("classify")).error
    assert_clear_error(error, DataError, path)
    assert str(error).endswith("is empty")
