"""Task-specific pieces: prompt/label formats, heads, losses, decoding rules, metrics and corpora.

Each task is named in `tasks.registry.TASKS`; `tasks` may import `encoders`, never `multimodal`.
"""

from tasks.base import Task
from tasks.registry import TASKS, get_task

__all__ = ["Task", "TASKS", "get_task"]
