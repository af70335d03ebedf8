"""The tasks by name: adding a task is one module in `tasks/` and one line here."""

from __future__ import annotations

from tasks.base import Task

TASKS: dict[str, Task] = {
    "caption": Task(
        name="caption",
        modality="image",
        prompt="<image>\nDescribe the image.",
        target_column="text",
        metrics=("cider_d", "bleu4"),
        max_new_tokens=32,
    ),
    "transcribe": Task(
        name="transcribe",
        modality="audio",
        prompt="<audio>\nTranscribe the audio.",
        target_column="text",
        metrics=("wer", "cer"),
        max_new_tokens=128,
    ),
    "classify": Task(
        name="classify",
        modality="text",
        prompt="Text: {text}\nLabel:",
        target_column="label",
        metrics=("accuracy", "macro_f1"),
        max_new_tokens=8,
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}'; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]
