"""How long training runs: `training.epochs` counts passes over the data, `early_stop_patience` stops on a plateau."""

import json
from pathlib import Path

import pytest
import torch

from multimodal.config import load_config
from multimodal.train import train

from .corpora import text_file

ROOT = Path(__file__).resolve().parents[2]
TEXT = ["data.num_workers=0", "data.task=classify", "training.log_every=1", "training.batch_size=4"]


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("epochs, accumulate, steps", [(2, 2, 6), (0.5, 1, 3), (1, 4, 2)])
def test_epochs_set_the_step_count_from_the_rows(tmp_path, epochs, accumulate, steps):
    data = text_file(tmp_path / "t.jsonl")  # 24 rows: 6 micro-batches of 4 an epoch
    config = load_config(ROOT / "configs/tiny.yaml", TEXT + [
        f"training.epochs={epochs}", f"training.grad_accum_steps={accumulate}", "training.max_steps=1000",
        "training.warmup_steps=50"])
    summary = train(config, tmp_path / "run", train_data=data, progress=False)
    assert summary["steps"] == steps
    logged = [r for r in records(tmp_path / "run") if "loss" in r]
    assert [r["step"] for r in logged] == list(range(1, steps + 1))
    lrs = [r["lr"] for r in logged]  # the schedule spans these steps: no 50-step warmup, cosine down to 0 at the end
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(0.0, abs=1e-12) and lrs[0] > 0
    epochs_seen = max(r["epoch"] for r in records(tmp_path / "run") if "loss" in r)
    assert epochs_seen == (steps * accumulate - 1) // 6  # the epoch the last micro-batch was drawn from


def test_early_stop_waits_patience_evaluations_after_the_last_improvement(tmp_path, monkeypatch):
    data = text_file(tmp_path / "t.jsonl")
    scores = iter([0.1, 0.2, 0.2, 0.3, 0.3, 0.3, 0.9, 0.9])  # improvements at evaluations 1, 2 and 4
    monkeypatch.setattr("multimodal.train.evaluate", lambda *a, **k: {"loss": 1.0, "accuracy": next(scores),
                                                                      "n_examples": 24})
    config = load_config(ROOT / "configs/tiny.yaml", TEXT + [
        "training.max_steps=20", "training.eval_every=1", "training.early_stop_patience=2", "training.save_every=0"])
    summary = train(config, tmp_path / "run", train_data=data, eval_data=data, progress=False)
    assert summary["steps"] == 6 and summary["stopped_early"]  # evaluations 5 and 6 found nothing better than 4's
    assert json.loads((tmp_path / "run/best/eval.json").read_text())["step"] == 4
    assert records(tmp_path / "run")[-1] == {"step": 6, "stopped_early": True}
    # the stop is a resume point: last/ holds step 6 even with save_every=0
    state = torch.load(tmp_path / "run/last/trainer_state.pt", weights_only=True)
    assert state["position"]["step"] == 6


def test_no_early_stop_while_it_improves(tmp_path, monkeypatch):
    data = text_file(tmp_path / "t.jsonl")
    scores = iter([0.1 * k for k in range(1, 9)])
    monkeypatch.setattr("multimodal.train.evaluate", lambda *a, **k: {"loss": 1.0, "accuracy": next(scores),
                                                                      "n_examples": 24})
    config = load_config(ROOT / "configs/tiny.yaml", TEXT + [
        "training.max_steps=8", "training.eval_every=1", "training.early_stop_patience=1"])
    summary = train(config, tmp_path / "run", train_data=data, eval_data=data, progress=False)
    assert summary["steps"] == 8 and not summary["stopped_early"]


@pytest.mark.parametrize("overrides, message", [
    (["training.epochs=-1"], "must be >= 0"),
    (["training.epochs=2", "data.streaming=true"], "streamed data has no epoch length"),
    (["training.early_stop_patience=2", "training.eval_every=0"], "set training.eval_every > 0"),
])
def test_length_settings_that_cannot_work_are_refused(tmp_path, overrides, message):
    data = text_file(tmp_path / "t.jsonl")
    config = load_config(ROOT / "configs/tiny.yaml", TEXT + overrides)
    with pytest.raises(ValueError, match=message):
        train(config, tmp_path / "run", train_data=data, progress=False)


def test_early_stop_without_evaluation_data_warns_and_trains_to_the_end(tmp_path, caplog):
    data = text_file(tmp_path / "t.jsonl")
    config = load_config(ROOT / "configs/tiny.yaml", TEXT + ["training.max_steps=2", "training.early_stop_patience=2"])
    with caplog.at_level("WARNING", logger="multimodal.train"):
        summary = train(config, tmp_path / "run", train_data=data, progress=False)
    assert summary["steps"] == 2 and "no evaluation data" in caplog.text
