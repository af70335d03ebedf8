"""The tasks by name: adding a task is one module in `tasks/` and one line here."""

from __future__ import annotations

from tasks.base import Task
from tasks.classify_head import ClassifyHeadTask
from tasks.ner import NerTask

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
    "classify_head": ClassifyHeadTask(  # a head on pooled backbone states (heads.classify); no generation
        name="classify_head",
        modality="text",
        prompt="{text}",
        target_column="label",
        metrics=("accuracy", "macro_f1"),
        head="classify",
    ),
    "ner": NerTask(  # BIO tags per word from a token tagging head (heads.tag)
        name="ner",
        modality="text",
        prompt="{text}",
        target_column="tags",
        metrics=("entity_f1",),
        head="tag",
        text_column="tokens",
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}'; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]
