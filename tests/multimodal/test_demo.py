"""`multimodal demo` end to end with a tiny model and the small corpora: data, multi-task training, the
checkpoint at work, the held-out table; a second run reuses everything."""

import dataclasses
import json
import time
from pathlib import Path

import pytest

from multimodal.cli import main
from multimodal.config import load_config
from multimodal import shipped
from multimodal.demo import DATA_SIZES, demo_config, format_table
from multimodal.demo_sets import classify_metrics, within

ROOT = Path(__file__).resolve().parents[2]


def test_demo_trains_once_then_reuses(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = ["demo", "--config", "configs/tiny.yaml", "--output", str(tmp_path / "demo"), "--data", "small",
            "--max-steps", "3", "data.num_workers=0"]
    start = time.perf_counter()
    assert main(args) == 0
    first_s = time.perf_counter() - start
    out = capsys.readouterr().out
    for expected in ("1. demo data sets", "trained 3 steps", "captions of held-out images", "a held-out recording",
                     "texts classified", "captions fully correct", ">= 80% (issue 5)", "<= 5% (issue 4)", "macro-F1"):
        assert expected in out, expected
    assert "[00:00.0 - " in out, "the long recording has no timestamped segment"
    run = tmp_path / "demo"
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "eval_score" in line]
    assert {"eval_caption_cider_d", "eval_transcribe_wer", "eval_classify_head_accuracy"} <= set(evals[-1])
    table = json.loads((run / "demo_metrics.json").read_text())["table"]
    assert {r["task"] for r in table} == {"caption", "transcribe", "classify"}

    start = time.perf_counter()
    assert main(args) == 0
    second_s = time.perf_counter() - start
    out = capsys.readouterr().out
    assert "reusing the finished 3-step run" in out and "written in" not in out  # neither trained nor regenerated
    assert second_s < first_s, (first_s, second_s)


def test_demo_shows_only_the_tasks_it_trained(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["demo", "--config", "configs/tiny.yaml", "--output", str(tmp_path / "demo"), "--data", "small",
                 "--max-steps", "2", "data.num_workers=0", "data.mixture=[{task: classify_head}]"]) == 0
    out = capsys.readouterr().out
    assert "texts classified" in out and "captions" not in out and "recording" not in out
    assert {r["task"] for r in json.loads((tmp_path / "demo/demo_metrics.json").read_text())["table"]} == {"classify"}


def test_demo_config_points_the_mixture_at_the_demo_data(tmp_path):
    config = demo_config(ROOT / "configs/multitask_synthetic.yaml", tmp_path, max_steps=7)
    assert config.training.max_steps == 7
    assert [(e.task, e.train, e.eval) for e in config.data.mixture] == [
        ("caption", str(tmp_path / "scenes/train"), str(tmp_path / "scenes/eval")),
        ("transcribe", str(tmp_path / "speech/train"), str(tmp_path / "speech/eval")),
        ("classify_head", str(tmp_path / "text/train.jsonl"), str(tmp_path / "text/eval.jsonl"))]
    config = demo_config(ROOT / "configs/tiny.yaml", tmp_path, None)  # no mixture: the synthetic one
    assert [e.task for e in config.data.mixture] == ["caption", "transcribe", "classify_head"]
    with pytest.raises(ValueError, match="not ner"):
        demo_config(ROOT / "configs/tiny.yaml", tmp_path, None, ["data.mixture=[{task: ner}]"])


def test_the_make_demo_config_starts_from_shipped_models_and_reads_the_real_sets(tmp_path):
    config = demo_config(ROOT / "configs/demo.yaml", tmp_path, None)
    assert [(e.name, e.task, e.train) for e in config.data.mixture] == [
        ("objects", "caption", str(tmp_path / "objects/train")),
        ("voices", "transcribe", str(tmp_path / "voices/train")),
        ("reviews", "classify_head", str(tmp_path / "reviews/train.jsonl")),
        ("tweets", "ner", str(tmp_path / "tweets/train.jsonl"))]
    sources = config.training.init_from
    assert set(sources) <= set(shipped.names())
    ranks = [load_config(shipped.verified_dir(name) / "config.yaml").training.backbone.lora_r for name in sources]
    assert config.training.backbone.lora_r >= sum(ranks)  # room for every source's LoRA update


def test_within_ten_percent_goes_the_right_way_for_error_rates():
    assert within(0.85, 0.90, lower_is_better=False) and not within(0.80, 0.90, lower_is_better=False)
    assert within(0.50, 0.46, lower_is_better=True) and not within(0.52, 0.46, lower_is_better=True)
    assert within(0.5, None, lower_is_better=False) is None


def test_metrics_table_lines_up():
    table = [{"task": "caption", "set": "s", "metric": "captions fully correct", "value": 0.5, "goal": ">= 95%",
              "met": False},
             {"task": "caption", "set": "s", "metric": "CIDEr-D", "value": 1.25, "goal": "", "met": None}]
    lines = format_table(table).splitlines()
    assert lines[0].index("metric") == lines[2].index("captions") == lines[3].index("CIDEr-D")
    assert "50.0%" in lines[2] and lines[2].endswith("no") and "1.250" in lines[3]
    assert "single-task" not in lines[0]
    compared = [{**table[0], "single": "caption-en", "single_value": 0.6, "within": False},
                {"task": "caption", "set": "photos", "metric": "main object named", "value": 2, "goal": ">= 5 of 7",
                 "met": False, "single": "caption-en", "single_value": 2, "within": True}]
    lines = format_table(compared).splitlines()
    assert lines[0].endswith("single-task model  its value  within 10%")
    assert lines[2].endswith("no") and "60.0%" in lines[2] and "caption-en" in lines[2]
    assert "2 of 7" in lines[3] and lines[3].endswith("yes")
    assert set(DATA_SIZES) == {"full", "small"}


def test_classification_is_scored_on_every_eval_text(tmp_path):
    """`n` caps the generative sets only; 64 texts would leave 1.6 points of accuracy per label."""
    rows = [{"text": f"t{i}", "label": "a" if i < 2 else "b"} for i in range(5)]
    (tmp_path / "text").mkdir()
    (tmp_path / "text/eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    class AlwaysA:
        def classify(self, texts):
            return [type("P", (), {"label": "a"})() for _ in texts]

    sizes = dataclasses.replace(DATA_SIZES["small"], heldout_examples=2)
    accuracy = next(r for r in classify_metrics(AlwaysA(), tmp_path, sizes) if r["metric"] == "accuracy")
    assert accuracy["value"] == pytest.approx(2 / 5)  # 1.0 if only the first 2 texts were scored


def test_the_shipped_models_scores_are_computed_once_and_redone_when_the_model_changes(tmp_path, monkeypatch):
    """Each shipped model is scored once per set and sizes (kept in the data dir); a changed file of the model
    (weights or config) makes its key new. The table marks "within 10 %" against that score."""
    from multimodal import demo
    from multimodal.shipped import Manifest

    files = {"model.safetensors": {"sha256": "a" * 64, "bytes": 1}}
    monkeypatch.setattr("multimodal.shipped.read_manifest",
                        lambda name, root=None: Manifest(name, "classify_head", {}, dict(files), {}))
    loads = []
    monkeypatch.setattr("multimodal.load", lambda name: loads.append(name) or f"model {name}")
    calls = []

    def accuracy(model, data_dir, sizes):
        calls.append(model)
        return {"accuracy": 0.80}

    sizes = DATA_SIZES["small"]
    assert demo.SingleScores(tmp_path, sizes)["sentiment-en"](accuracy) == {"accuracy": 0.80}
    assert demo.SingleScores(tmp_path, sizes)["sentiment-en"](accuracy) == {"accuracy": 0.80}  # from the file
    assert calls == ["model sentiment-en"] and loads == ["sentiment-en"]
    files["config.yaml"] = {"sha256": "b" * 64, "bytes": 1}  # e.g. shipped again with another run-time setting
    demo.SingleScores(tmp_path, sizes)["sentiment-en"](accuracy)
    assert len(calls) == 2
    demo.SingleScores(tmp_path, dataclasses.replace(sizes, reviews_test=3))["sentiment-en"](accuracy)
    assert len(calls) == 3  # other sizes, other rows

    class Entry:
        name, task = "reviews", "classify_head"

    class Model:
        config = type("C", (), {"data": type("D", (), {"mixture": [Entry()]})()})()

    monkeypatch.setitem(demo.SETS, "reviews", dataclasses.replace(
        demo.SETS["reviews"], metrics=lambda model, data_dir, sizes, singles: [
            {"task": "sentiment", "set": "s", "metric": "accuracy", "value": 0.71, "goal": "", "met": None,
             "single": "sentiment-en", "single_value": singles["sentiment-en"](accuracy)["accuracy"]}]))
    (row,) = demo.heldout_metrics(Model(), tmp_path, sizes)
    assert row["single_value"] == 0.80 and row["within"] is False  # 0.71 < 0.9 * 0.80
