"""The training loop: loss falls, a killed run resumes bit for bit, DDP ranks agree."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import multimodal as mm
from multimodal.config import load_config
from multimodal.train import train

from .corpora import image_folder, text_file
from .interrupt import train_until_interrupted

ROOT = Path(__file__).resolve().parents[2]
FAST = ["data.num_workers=0", "training.log_every=5", "data.task=caption"]


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "multimodal", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, **kwargs)


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tiny_config_loss_falls(tmp_path):
    data = image_folder(tmp_path / "images")
    config = load_config(ROOT / "configs/tiny.yaml", FAST + ["training.max_steps=20", "training.eval_every=20"])
    summary = train(config, tmp_path / "run", train_data=data, eval_data=data, progress=False)
    losses = [r["loss"] for r in records(tmp_path / "run") if "loss" in r]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.1, losses
    assert {"loss", "cider_d", "bleu4"} <= set(summary["eval"])
    for name in ("last/model.safetensors", "last/trainer_state.pt", "best/eval.json", "curves.png"):
        assert (tmp_path / "run" / name).is_file(), name
    assert all(r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 for r in records(tmp_path / "run") if "loss" in r)
    saved = yaml.safe_load((tmp_path / "run/last/config.yaml").read_text())["data"]
    assert saved["train"] == saved["eval"] == str(data), "the checkpoint names the data it was trained on"


def test_text_task_trains_on_a_jsonl_file(tmp_path, monkeypatch):
    data = text_file(tmp_path / "t.jsonl")  # 24 rows, "fruit" and "weather" in turn
    config = load_config(ROOT / "configs/tiny.yaml", FAST + ["data.task=classify", "training.max_steps=4",
                                                              "training.grad_accum_steps=2"])
    # The tiny model answers nothing right after 4 steps; answering "fruit" to everything gives known metrics.
    monkeypatch.setattr(mm.MultimodalModel, "generate",
                        lambda self, batch, config=None: ["fruit"] * len(batch["input_ids"]))
    summary = train(config, tmp_path / "run", train_data=data, eval_data=data, progress=False)
    assert summary["steps"] == 4 and summary["eval"]["n_examples"] == 24
    # 12 of 24 right; F1 of "fruit" 2 * 12 / (24 + 12), of "weather" 0
    assert summary["eval"]["accuracy"] == 0.5 and summary["eval"]["macro_f1"] == pytest.approx((24 / 36 + 0) / 2)


def test_existing_run_needs_resume(tmp_path):
    data = image_folder(tmp_path / "images", n=8)
    config = load_config(ROOT / "configs/tiny.yaml", FAST + ["training.max_steps=1"])
    train(config, tmp_path / "run", train_data=data, progress=False)
    with pytest.raises(ValueError, match="--resume"):
        train(config, tmp_path / "run", train_data=data, progress=False)


def test_killed_run_resumes_bitwise(tmp_path):
    data = image_folder(tmp_path / "images")
    args = ["train", "configs/tiny.yaml", "--train", str(data), "--max-steps", "24", *FAST,
            "training.save_every=4", "training.batch_size=5"]  # 24 rows / 5: epochs end mid-run, a short last batch
    reference = run_cli(*args, "--output", str(tmp_path / "straight"), timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "multimodal", *args, "--output", str(tmp_path / "killed")],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "last" / "trainer_state.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if torch.load(state, weights_only=True)["position"]["step"] >= 8:
                break
        except (FileNotFoundError, RuntimeError, EOFError):  # not written yet, or being replaced
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    from multimodal.checkpoint import recover

    killed_at = torch.load(recover(state.parent) / state.name, weights_only=True)["position"]["step"]
    assert 8 <= killed_at < 24

    resumed = run_cli(*args, "--output", str(tmp_path / "killed"), "--resume", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_file(tmp_path / "straight" / "last" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "last" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    steps = [r["step"] for r in records(tmp_path / "killed")]
    assert steps == sorted(set(steps)), "resumed metrics repeat steps"




def test_torchrun_two_processes_agree(tmp_path):
    data = image_folder(tmp_path / "images")
    script = tmp_path / "ddp_train.py"
    script.write_text(
        "import os, sys, torch\n"
        "from multimodal.config import load_config\n"
        "from multimodal import train as train_module\n"
        "from multimodal.build import build\n"
        "captured = {}\n"
        "original = train_module.build\n"
        "def keep(config):\n"
        "    captured['model'] = original(config)\n"
        "    return captured['model']\n"
        "train_module.build = keep\n"
        "config = load_config(sys.argv[1], sys.argv[4:])\n"
        "train_module.train(config, sys.argv[2], train_data=sys.argv[3], progress=False)\n"
        "rank = int(os.environ['RANK'])\n"
        "torch.save({k: v for k, v in captured['model'].state_dict().items()}, f'{sys.argv[2]}/rank{rank}.pt')\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517"]
    out = subprocess.run([*torchrun, str(script), str(ROOT / "configs/tiny.yaml"), str(tmp_path / "run"), str(data),
                          *FAST, "training.max_steps=6", "training.batch_size=3"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    r0 = torch.load(tmp_path / "run" / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "run" / "rank1.pt", weights_only=True)
    initial = load_config(ROOT / "configs/tiny.yaml")
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    from multimodal.build import build

    fresh = build(initial).state_dict()
    assert any(not torch.equal(fresh[k], r0[k]) for k in r0 if "adapters" in k), "nothing trained"
    log = records(tmp_path / "run")
    assert log[-1]["step"] == 6


def test_evaluate_cli_prints_json(tmp_path, capsys):
    from multimodal.cli import main

    data = image_folder(tmp_path / "images", n=6)
    config = load_config(ROOT / "configs/tiny.yaml", FAST + ["training.max_steps=2"])
    train(config, tmp_path / "run", train_data=data, progress=False)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "run/last"), "--task", "caption", "--data", str(data),
                 "--format", "json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["n_examples"] == 6 and {"loss", "cider_d", "bleu4"} <= set(metrics)
    assert main(["evaluate", "--model", str(tmp_path / "nope"), "--task", "caption", "--data", str(data)]) == 2


def test_prompt_only_keeps_prompts_right_aligned():
    from multimodal.evaluate import _prompt_only

    batch = {
        "input_ids": torch.tensor([[0, 5, 6, 7, 8], [1, 2, 3, 4, 9]]),
        "attention_mask": torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]]),
        "labels": torch.tensor([[-100, -100, -100, 7, 8], [-100, -100, -100, -100, 9]]),
    }
    out = _prompt_only(batch)
    assert out["input_ids"].tolist() == [[0, 0, 5, 6], [1, 2, 3, 4]]
    assert out["attention_mask"].tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]


def test_streaming_trains_and_resumes_bitwise(tmp_path):
    data = text_file(tmp_path / "t.jsonl", n=14)
    base = FAST + ["data.task=classify", "data.streaming=true", "training.batch_size=4", "training.save_every=3"]
    config = load_config(ROOT / "configs/tiny.yaml", base + ["training.max_steps=9"])
    train(config, tmp_path / "straight", train_data=data, progress=False)
    calls = train_until_interrupted(train, config, tmp_path / "stopped", 6, train_data=data, progress=False)
    assert calls == [3, 6]
    train(config, tmp_path / "stopped", train_data=data, resume=True, progress=False)
    a = load_file(tmp_path / "straight/last/model.safetensors")
    b = load_file(tmp_path / "stopped/last/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_streaming_bad_row_is_named(tmp_path):
    data = tmp_path / "t.jsonl"
    data.write_text('{"text": "fine", "label": "a"}\n{"text": "", "label": "b"}\n' * 3)
    config = load_config(ROOT / "configs/tiny.yaml", FAST + ["data.task=classify", "data.streaming=true",
                                                              "training.max_steps=3", "training.batch_size=2"])
    from multimodal.data import DataError

    with pytest.raises(DataError, match=r"bad row .*: empty 'text'"):
        train(config, tmp_path / "run", train_data=data, progress=False)
    config.data.on_bad_rows = "skip"
    assert train(config, tmp_path / "run2", train_data=data, progress=False)["steps"] == 3


def test_gradient_checkpointing_gives_the_same_gradients(tmp_path):
    from multimodal.build import build
    from multimodal.data import Collator, TaskDataset, load_rows
    from multimodal.processor import Processor
    from tasks import get_task

    task = get_task("caption")
    rows = load_rows(image_folder(tmp_path / "images", n=4), task)
    grads = []
    for checkpointing in (False, True):
        model = build(load_config(ROOT / "configs/tiny.yaml", ["training.backbone.lora_dropout=0.0"])).train()
        if checkpointing:
            model.backbone.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            assert model.backbone.model.layers[0].gradient_checkpointing  # really on, so the comparison means something
        batch = Collator(Processor(model))([TaskDataset(rows, task)[i] for i in range(4)])
        batch.pop("references")
        model(**batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any("lora_" in n for n in grads[0])
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-6) for n in grads[0])


def test_bf16_autocast_trains_on_cpu(tmp_path):
    from multimodal.train import mixed_precision

    data = image_folder(tmp_path / "images")
    losses = {}
    for precision in ("no", "bf16"):
        config = load_config(ROOT / "configs/tiny.yaml", FAST + ["training.max_steps=10", "training.eval_every=0",
                                                                 f"training.mixed_precision={precision}"])
        assert mixed_precision(config.training) == precision
        train(config, tmp_path / precision, train_data=data, progress=False)
        losses[precision] = [r["loss"] for r in records(tmp_path / precision) if "loss" in r]
    assert losses["bf16"] != losses["no"], "bf16 was asked for but the steps ran in fp32"
    assert all(abs(b - f) < 0.05 * f for b, f in zip(losses["bf16"], losses["no"])), losses
    assert losses["bf16"][-1] < losses["bf16"][0]
    auto = load_config(ROOT / "configs/tiny.yaml").training
    assert mixed_precision(auto) == ("bf16" if torch.cuda.is_available() else "no")
