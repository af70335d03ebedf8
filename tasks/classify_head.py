"""Text classification by a head on pooled backbone states: the row format and its labels.

Rows hold `text` and `label`. Single-label: `label` is one string. Multi-label (`heads.classify.multi_label`):
`label` is a list of strings (JSONL) or one string with labels separated by `|` (CSV), possibly empty (no
label applies). The label set is the config's (`heads.classify.labels`) or, when that is empty, every label
of the training data, sorted; a label outside the set is an error that names it and the row.
"""

from __future__ import annotations

from typing import Any

from tasks.base import Task

MULTI_LABEL_SEPARATOR = "|"


def parse_labels(value: Any, multi_label: bool) -> list[str]:
    """A row's `label` value -> its labels (exactly one unless multi_label)."""
    if isinstance(value, (list, tuple)):
        labels = [str(v).strip() for v in value]
    elif value is None:
        labels = []
    elif multi_label:
        labels = [part.strip() for part in str(value).split(MULTI_LABEL_SEPARATOR)] if str(value).strip() else []
    else:
        labels = [str(value).strip()]
    if any(not label for label in labels):
        raise ValueError(f"empty label in {value!r}")
    if not multi_label and len(labels) != 1:
        raise ValueError(f"label {value!r} must be one label (set heads.classify.multi_label=true for lists)")
    return labels


def check_labels(values: list[Any], texts: list[Any], known: list[str] | None, multi_label: bool, what: str) -> None:
    """Raise a ValueError naming the first rows whose label is malformed or (with `known`) outside `known`."""
    known_set, bad = set(known or ()), []
    for i, (value, text) in enumerate(zip(values, texts)):
        try:
            labels = parse_labels(value, multi_label)
        except ValueError as e:
            bad.append(f"row {i} ({_short(text)}): {e}")
            continue
        missing = [label for label in labels if known is not None and label not in known_set]
        if missing:
            bad.append(f"row {i} ({_short(text)}): unknown label {missing[0]!r}")
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        listed = f"; known labels: {', '.join(known)}" if known is not None else ""
        raise ValueError(f"{what}: {'; '.join(bad[:5])}{more}{listed}")


def label_set(values: list[Any], texts: list[Any], multi_label: bool, what: str = "training data") -> list[str]:
    """Every label of the training rows, sorted; a malformed label is an error naming its row."""
    check_labels(values, texts, None, multi_label, what)
    return sorted({label for value in values for label in parse_labels(value, multi_label)})


def _short(text: Any, width: int = 40) -> str:
    text = " ".join(str(text).split())
    return repr(text if len(text) <= width else text[: width - 3] + "...")


class ClassifyHeadTask(Task):
    """Rows `text,label` -> {text, label} for the classification head (the label is parsed by the batcher,
    which knows whether the head is multi-label)."""

    def check(self, row: dict[str, Any]) -> str:
        value = row[self.target_column]
        if isinstance(value, (list, tuple)) and any(not str(v).strip() for v in value):
            return f"empty label in {value!r}"
        return ""

    def example(self, row: dict[str, Any], with_target: bool = True) -> dict[str, Any]:
        return {"text": str(row[self.text_column]), "label": row[self.target_column] if with_target else None}
