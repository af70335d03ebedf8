"""Multi-task training: every task's loss is computed, tasks are drawn by weight, resume is exact, and
evaluation logs each task's metrics and a combined score."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import multimodal as mm
from multimodal.config import ConfigError, TaskData, load_config
from multimodal.mixture import check_mixture, draw_task
from multimodal.train import train

from .corpora import audio_folder, image_folder, text_file
from .interrupt import train_until_interrupted

ROOT = Path(__file__).resolve().parents[2]
FAST = ["data.num_workers=0", "training.batch_size=3", "training.warmup_steps=1", "heads.ctc=true",
        "training.ctc_loss_weight=0.5"]


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k == "step" or k.startswith("loss")} for r in records(run) if "loss" in r]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixture")
    return {
        "images": image_folder(root / "images", n=12),
        "audio": audio_folder(root / "audio", n=9),
        "text": text_file(root / "text.jsonl", n=12),
    }


def three_tasks(corpora, weights=(1.0, 1.0, 1.0)) -> list[TaskData]:
    return [
        TaskData(task="caption", train=str(corpora["images"]), eval=str(corpora["images"]), weight=weights[0]),
        TaskData(task="transcribe", train=str(corpora["audio"]), eval=str(corpora["audio"]), weight=weights[1]),
        TaskData(task="classify_head", train=str(corpora["text"]), eval=str(corpora["text"]), weight=weights[2],
                 name="topic"),
    ]


def test_every_task_trains_and_is_evaluated(corpora, tmp_path):
    config = load_config(ROOT / "configs/tiny.yaml", FAST + ["training.max_steps=8", "training.log_every=2",
                                                              "training.eval_every=0", "data.eval_max_examples=4"])
    config.data.mixture = three_tasks(corpora)
    summary = train(config, tmp_path / "run", progress=False)

    names = ["caption", "transcribe", "topic"]
    probabilities = np.full(3, 1 / 3)
    logged = [r for r in records(tmp_path / "run") if "loss" in r]
    assert [r["step"] for r in logged] == [2, 4, 6, 8]
    for r in logged:  # each log line has the loss of exactly the tasks drawn in its two steps, each finite
        drawn = {names[draw_task(probabilities, 0, s, 0)] for s in (r["step"] - 2, r["step"] - 1)}
        assert {k[5:] for k in r if k.startswith("loss_")} == drawn
        assert all(np.isfinite(r[f"loss_{n}"]) and r[f"loss_{n}"] > 0 for n in drawn)
    assert {k[5:] for r in logged for k in r if k.startswith("loss_")} == set(names), "a task was never trained"

    evals = [r for r in records(tmp_path / "run") if "eval_score" in r]
    assert len(evals) == 1
    for key in ("caption_cider_d", "caption_bleu4", "transcribe_wer", "transcribe_cer", "topic_accuracy",
                "topic_macro_f1", "caption_loss", "topic_loss"):
        assert f"eval_{key}" in evals[0], key
        assert key in summary["eval"]
    e = evals[0]  # the score: the mean of each task's first metric on a 0-1 higher-is-better scale
    units = [min(e["eval_caption_cider_d"] / 10, 1.0), 1.0 - min(e["eval_transcribe_wer"], 1.0),
             e["eval_topic_accuracy"]]
    assert e["eval_score"] == pytest.approx(sum(units) / 3, abs=1e-9)
    best = json.loads((tmp_path / "run/best/eval.json").read_text())
    assert best["score"] == evals[0]["eval_score"] and best["step"] == 8
    assert (tmp_path / "run/curves.png").is_file()

    model = mm.load(tmp_path / "run")  # the run dir: its best/ checkpoint
    assert set(model.heads) == {"ctc", "classify"} and model.config.heads.classify.labels == ["fruit", "weather"]
    assert model.classify("apples are sweet").label in ("fruit", "weather")
    assert isinstance(model.caption(str(corpora["images"] / "img_000.png")).text, str)
    assert model.transcribe(str(corpora["audio"] / "clip_000.wav"), decoder="ctc").error is None


def test_draw_task_follows_the_weights():
    probabilities = np.array([0.6, 0.3, 0.1])
    draws = [draw_task(probabilities, 7, step, k) for step in range(3000) for k in range(2)]
    shares = np.bincount(draws, minlength=3) / len(draws)
    assert np.allclose(shares, probabilities, atol=0.02), shares
    assert draws == [draw_task(probabilities, 7, step, k) for step in range(3000) for k in range(2)]  # no hidden state
    assert draws != [draw_task(probabilities, 8, step, k) for step in range(3000) for k in range(2)]  # the seed counts


def test_weights_decide_the_tasks_trained(corpora, tmp_path):
    config = load_config(ROOT / "configs/tiny.yaml", FAST + ["training.max_steps=6", "training.log_every=6"])
    config.data.mixture = three_tasks(corpora, weights=(1.0, 1e-9, 1e-9))[:1] + [
        TaskData(task="classify_head", train=str(corpora["text"]), weight=1e-9)]
    train(config, tmp_path / "run", progress=False)
    (line,) = [r for r in records(tmp_path / "run") if "loss" in r]
    assert "loss_caption" in line and "loss_classify_head" not in line


def test_killed_mixture_resumes_bitwise(corpora, tmp_path):
    config = load_config(ROOT / "configs/tiny.yaml", FAST + ["training.max_steps=8", "training.save_every=2",
                                                              "training.grad_accum_steps=2", "training.log_every=2"])
    config.data.mixture = [three_tasks(corpora)[0], three_tasks(corpora)[2]]
    train(config, tmp_path / "straight", progress=False)

    calls = train_until_interrupted(train, config, tmp_path / "stopped", 4, progress=False)
    assert calls == [2, 4]
    state = torch.load(tmp_path / "stopped/last/trainer_state.pt", weights_only=True)
    positions = state["data_positions"][0]
    # 12 rows in batches of 3: 4 micro-batches an epoch per task; 4 steps x 2 micro-batches consumed in all
    assert set(positions) == {"caption", "topic"} and sum(4 * e + m for e, m in positions.values()) == 8

    train(config, tmp_path / "stopped", resume=True, progress=False)
    a = load_file(tmp_path / "straight/last/model.safetensors")
    b = load_file(tmp_path / "stopped/last/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    assert losses(tmp_path / "straight") == losses(tmp_path / "stopped"), "resumed losses differ"

    config.data.mixture[0].name = "pictures"  # another mixture cannot continue this run
    with pytest.raises(ValueError, match=r"data positions are for \['caption', 'topic'\]"):
        train(config, tmp_path / "stopped", resume=True, progress=False)


def test_bad_mixtures_are_named(corpora, tmp_path):
    good = three_tasks(corpora)
    with pytest.raises(ValueError, match=r"data.mixture\[1\]: unknown task 'captoin'"):
        check_mixture([good[0], TaskData(task="captoin", train="x")])
    with pytest.raises(ValueError, match=r"data.mixture\[0\] \(caption\): weight must be > 0"):
        check_mixture([TaskData(task="caption", train="x", weight=0)])
    with pytest.raises(ValueError, match=r"data.mixture\[1\] \(caption\) has no training data"):
        check_mixture([good[0], TaskData(task="caption")])
    with pytest.raises(ValueError, match=r"data.mixture\[1\]: the name 'caption' is used twice"):
        check_mixture([good[0], good[0]])
    with pytest.raises(ValueError, match="data.streaming"):
        check_mixture(good, streaming=True)
    config = load_config(ROOT / "configs/tiny.yaml", FAST)
    config.data.mixture = good
    with pytest.raises(ValueError, match="--train/--eval are for single-task configs"):
        train(config, tmp_path / "run", train_data=str(corpora["images"]), progress=False)
    config.data.mixture = [good[2], TaskData(task="classify_head", train=str(corpora["text"]), name="again")]
    with pytest.raises(ValueError, match="both train heads.classify"):
        train(config, tmp_path / "run", progress=False)


def test_mixture_in_yaml(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text("data:\n  mixture:\n    - {task: caption, train: a/, eval: [b/, c/], weight: 2}\n"
                    "    - {task: transcribe, train: d/}\n")
    mixture = load_config(path).data.mixture
    assert mixture == [TaskData(task="caption", train="a/", eval=["b/", "c/"], weight=2.0),
                       TaskData(task="transcribe", train="d/")]
    path.write_text("data:\n  mixture:\n    - {task: caption, train: a/, wieght: 2}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'data.mixture\[0\].wieght'.*weight"):
        load_config(path)


def test_torchrun_two_processes_draw_the_same_tasks(corpora, tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "ddp_mixture.py"
    script.write_text(
        "import os, sys, torch\n"
        "from multimodal.config import TaskData, load_config\n"
        "from multimodal import train as train_module\n"
        "captured = {}\n"
        "original = train_module.build\n"
        "def keep(config):\n"
        "    captured['model'] = original(config)\n"
        "    return captured['model']\n"
        "train_module.build = keep\n"
        "config = load_config(sys.argv[1], sys.argv[5:])\n"
        "config.data.mixture = [TaskData(task='caption', train=sys.argv[3], weight=2.0),\n"
        "                       TaskData(task='classify_head', train=sys.argv[4], eval=sys.argv[4])]\n"
        "train_module.train(config, sys.argv[2], progress=False)\n"
        "torch.save(captured['model'].state_dict(), f\"{sys.argv[2]}/rank{os.environ['RANK']}.pt\")\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29518"]
    out = subprocess.run([*torchrun, str(script), str(ROOT / "configs/tiny.yaml"), str(tmp_path / "run"),
                          str(corpora["images"]), str(corpora["text"]), *FAST, "training.max_steps=4",
                          "training.log_every=2", "training.batch_size=2"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    r0 = torch.load(tmp_path / "run/rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "run/rank1.pt", weights_only=True)
    assert all(torch.equal(r0[k], r1[k]) for k in r0), "the processes' weights differ"
    assert "eval_classify_head_accuracy" in records(tmp_path / "run")[-1]
