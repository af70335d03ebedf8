"""benchmarks/multitask_vs_single.py: the equal per-task budget, the sign of the relative difference, and the
whole comparison with a tiny model on the demo's small corpora (every run draws exactly its budget)."""

import json
from collections import Counter

import pytest

from multimodal.config import to_dict
from multimodal.demo import demo_config
from multimodal.mixture import Mixture, draw_task

from ..conftest import ROOT
from . import load_benchmark


def test_each_task_gets_the_micro_batches_the_mixture_drew(tmp_path):
    bench = load_benchmark("multitask_vs_single")
    config = demo_config(ROOT / "configs/multitask_synthetic.yaml", tmp_path, 40, ["training.grad_accum_steps=3"])
    budget = bench.task_budget(config)
    assert sum(budget.values()) == 40 * 3
    weights = [e.weight for e in config.data.mixture]
    probabilities = [w / sum(weights) for w in weights]
    drawn = Counter(draw_task(probabilities, 0, step, k) for step in range(40) for k in range(3))
    assert budget == {"caption": drawn[0], "transcribe": drawn[1], "classify_head": drawn[2]}
    assert budget["classify_head"] > budget["caption"]  # 1.5x the weight

    for name, micro_batches in budget.items():
        single = bench.single_task_config(config, name, micro_batches)
        assert [e.task for e in single.data.mixture] == [name]
        assert single.training.max_steps == -(-micro_batches // 3)
        assert single.training.warmup_steps == round(20 * single.training.max_steps / 40)
        changed = {k for k, v in to_dict(single.training).items() if v != to_dict(config.training)[k]}
        assert changed <= {"max_steps", "warmup_steps"}
        for part in ("encoders", "adapters", "backbone", "heads"):
            assert to_dict(getattr(single, part)) == to_dict(getattr(config, part))
        assert {**to_dict(single.data), "mixture": []} == {**to_dict(config.data), "mixture": []}
    assert len(config.data.mixture) == 3  # the multi-task config is left as it was
    with pytest.raises(ValueError, match="drew no 'caption' micro-batch"):
        bench.single_task_config(config, "caption", 0)


def test_relative_difference_is_negative_when_the_multi_task_model_is_worse():
    bench = load_benchmark("multitask_vs_single")
    assert bench.relative_difference("accuracy", 0.50, 0.40) == pytest.approx(-0.2)
    assert bench.relative_difference("WER", 0.50, 0.60) == pytest.approx(-0.2)  # more errors: worse
    assert bench.relative_difference("CER", 0.50, 0.40) == pytest.approx(0.2)
    assert bench.relative_difference("CIDEr-D", 0.0, 0.3) is None
    assert bench.within_goal("accuracy", 0.50, 0.45) and not bench.within_goal("accuracy", 0.50, 0.44)
    assert bench.within_goal("WER", 0.50, 0.55) and not bench.within_goal("WER", 0.50, 0.56)
    assert bench.within_goal("accuracy", 0.50, 0.90)  # better is within the goal
    assert bench.within_goal("captions fully correct", 0.0, 0.0) and bench.within_goal("WER", 0.0, 0.0)
    assert not bench.within_goal("WER", 0.0, 0.1)
    rows = bench.compare([{"task": "t", "set": "s", "metric": "WER", "value": 0.6}],
                         [{"task": "t", "set": "s", "metric": "WER", "value": 0.5}])
    assert rows[0]["within_10pct"] is False and "-20.0% (worse)" in bench.format_comparison(rows)


def test_compares_tiny_runs_end_to_end(tmp_path, tiny_config_path, monkeypatch, capsys):
    bench = load_benchmark("multitask_vs_single")
    drawn = []  # every micro-batch's task, in the order the runs drew them
    next_batch = Mixture.next_batch

    def counting(self, step, micro_batch):
        name, batch = next_batch(self, step, micro_batch)
        drawn.append(name)
        return name, batch

    monkeypatch.setattr(Mixture, "next_batch", counting)
    out, data = tmp_path / "out", tmp_path / "data"
    argv = ["--config", str(tiny_config_path), "--data", "small", "--data-dir", str(data), "--max-steps", "6",
            "--output-dir", str(out), "--json", str(tmp_path / "results.json"), "data.num_workers=0"]
    results = bench.main(argv)

    budget = results["budget"]
    assert sum(budget.values()) == 6 and min(budget.values()) >= 1  # seed 0 draws every task within 6 steps
    assert Counter(drawn[:6]) == budget  # the multi-task run drew what the budget says
    singles = drawn[6:]
    assert singles == [name for name, count in budget.items() for _ in range(count)]  # each run: its own budget
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert {r["task"] for r in results["rows"]} == {"caption", "transcribe", "classify"}
    assert all(isinstance(r["within_10pct"], bool) for r in results["rows"])
    assert all(run["wall_s"] > 0 and run["timed"] == "here" for run in [results["multi"], *results["single"].values()])
    printed = capsys.readouterr().out
    assert "multi vs single" in printed and "WER (lower is better)" in printed

    drawn.clear()  # a second call reuses every run and the cached tables
    assert bench.main(argv)["rows"] == results["rows"] and drawn == []
    reused = bench.main([*argv[:-1], "--multi", str(out / "multi")])  # the same run, named as a finished one
    assert reused["rows"] == results["rows"] and reused["multi"]["timed"] == "here" and drawn == []
