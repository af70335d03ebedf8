"""What a task is: a prompt/label format, a decoding budget and the metrics that judge it.

A task turns one data row into a plain example dict — `prompt` (with `<image>` / `<audio>` markers),
`target`, `images`, `audios` — and scores generated texts against references. It knows no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Modality = Literal["image", "audio", "text"]


@dataclass(frozen=True)
class Task:
    name: str
    modality: Modality
    prompt: str  # the exact prompt at training and inference; `{text}` is filled from the row for text tasks
    target_column: str  # row column that holds the target text or label
    metrics: tuple[str, ...]  # names in tasks.metrics.METRICS, the first is the one that picks the best checkpoint
    max_new_tokens: int = 64
    head: str = ""  # "" = the LM generates the target; "classify" / "tag" = a head in model.heads predicts it
    text_column: str = "text"  # the input column of a text task (NER reads `tokens`)

    @property
    def input_column(self) -> str:
        return {"image": "image", "audio": "audio", "text": self.text_column}[self.modality]

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.input_column, self.target_column)))

    def prepare_rows(self, rows: Any, source: str) -> Any:
        """Rows as loaded (a `datasets.Dataset`) -> rows with this task's columns; e.g. NER spans -> tags."""
        return rows

    def check(self, row: dict[str, Any]) -> str:
        """A problem with one row's input and target beyond a missing or empty value ("" when fine)."""
        return ""

    def example(self, row: dict[str, Any], with_target: bool = True) -> dict[str, Any]:
        """One row (media already decoded) -> {prompt, target, images, audios}."""
        target = str(row[self.target_column]).strip() if with_target else None
        if self.modality == "text":
            return {"prompt": self.prompt.format(text=row["text"]), "target": target, "images": [], "audios": []}
        media = [row[self.input_column]]
        return {
            "prompt": self.prompt,
            "target": target,
            "images": media if self.modality == "image" else [],
            "audios": media if self.modality == "audio" else [],
            "voice": row.get("voice") if self.modality == "audio" else None,  # speaker accent, for phone targets
        }
