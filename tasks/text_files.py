"""Texts read from a file (to classify or tag, a lexicon, n-gram LM text): JSONL / JSON / CSV with a `text`
column, or plain text.

- `.jsonl`: one JSON object per line with a `text` field (other fields are ignored);
- `.json`: a list of such objects (or of strings);
- `.csv`: a header row with a `text` column (other columns are ignored);
- anything else: plain text, one text per line (blank lines are skipped).
Files must be UTF-8 (a byte-order mark is allowed). A file that is not, a line that is not JSON, a missing
`text` column or an empty text is a ValueError naming the file and the line.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any


def read_utf8(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"'{path}' does not exist" if not path.exists() else f"'{path}' is not a file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(f"'{path}' is not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start} (line {line}); "
                         "convert it, e.g. `iconv -f latin1 -t utf-8`") from None


def read_records(path: str | Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows (dicts) of a JSONL / JSON / CSV file, `columns` checked present and non-empty in every row."""
    path = Path(path)
    text = read_utf8(path)
    suffix = path.suffix.lower()
    records: list[tuple[int, Any]]
    if suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((n, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"'{path}' line {n} is not JSON: {e.msg}") from None
    elif suffix == ".json":
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"'{path}' is not JSON: {e.msg} (line {e.lineno})") from None
        if not isinstance(loaded, list):
            raise ValueError(f"'{path}' must hold a JSON list of objects with {', '.join(columns)}")
        records = [(i, {"text": r} if isinstance(r, str) and columns == ("text",) else r) for i, r in enumerate(loaded)]
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"'{path}' has no column(s) {missing}; its header: {reader.fieldnames}")
        records = [(reader.line_num, row) for row in reader]
    else:
        raise ValueError(f"'{path}': expected .jsonl, .json or .csv")
    where = "item" if suffix == ".json" else "line"
    out = []
    for n, record in records:
        if not isinstance(record, dict):
            raise ValueError(f"'{path}' {where} {n} is not an object with {', '.join(columns)}")
        for c in columns:
            value = record.get(c)
            if value is None or not str(value).strip():
                raise ValueError(f"'{path}' {where} {n}: {'missing' if value is None else 'empty'} '{c}'")
        out.append(record)
    if not out:
        raise ValueError(f"'{path}' holds no rows")
    return out


def read_texts(path: str | Path) -> list[str]:
    """The texts of a file, in file order (see the module docstring for the formats)."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json", ".csv"):
        return [str(r["text"]) for r in read_records(path, ("text",))]
    texts = [line for line in read_utf8(path).splitlines() if line.strip()]
    if not texts:
        raise ValueError(f"'{path}' holds no text")
    return texts


def read_shots(path: str | Path) -> list[tuple[str, str]]:
    """In-context examples (text, label) from a JSONL / JSON / CSV file with `text` and `label`."""
    return [(str(r["text"]), str(r["label"]).strip()) for r in read_records(path, ("text", "label"))]
