"""Stop a training run like a Ctrl-C right after the checkpoint of a given step (for exact-resume tests)."""

from __future__ import annotations

import pytest


def train_until_interrupted(train, config, output, stop_at: int, **kwargs) -> list[int]:
    """Run `train(config, output, **kwargs)` and interrupt it after `last/` is saved at step `stop_at`.

    Returns the steps whose checkpoints were saved before the interruption.
    """
    import multimodal.train as t

    real_save, saved = t._save_last, []

    def save_then_stop(*args, **kw):
        real_save(*args, **kw)
        saved.append(args[3].step)
        if args[3].step == stop_at:
            raise KeyboardInterrupt

    t._save_last = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(config, output, **kwargs)
    finally:
        t._save_last = real_save
    return saved
