"""Gradient accumulation gives the gradient of one large batch: every target token weighs the same."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import multimodal as mm
from multimodal.model import loss_items
from multimodal.train import accumulate
from tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
# Targets of very different lengths (2 to 14 tokens), so a mean of micro-batch means would weigh them unequally.
CAPTIONS = ["red", "a large red square drawn on a pale background with a thin dark border around it",
            "blue", "a small green circle in the middle of the picture, and a yellow one beside it"]


def model_and_batches(captions: list[str] = CAPTIONS):
    """A tiny random model (dropout off) and a batching function over `captions`, one image each."""
    model = mm.build(ROOT / "configs/tiny.yaml", ["training.backbone.lora_dropout=0.0"]).eval()
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in captions]
    prompt = get_task("caption").prompt
    processor = mm.Processor(model)

    def batch(rows: list[int]) -> dict[str, torch.Tensor]:
        return processor([mm.Example(prompt, captions[r], images=[images[r]]) for r in rows])

    return model, batch


def gradients(model, backward) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads and any("lora_" in n for n in grads) and any(n.startswith("adapters.") for n in grads)
    return grads


def all_close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[n], b[n], rtol=1e-4, atol=1e-7) for n in a)


@pytest.fixture(scope="module")
def accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def test_accumulated_micro_batches_give_the_large_batch_gradient(accelerator):
    model, batch = model_and_batches()
    micro = [batch([0, 2]), batch([1, 3])]  # short targets, then long ones
    n_targets = [loss_items(b)["lm"] for b in micro]
    assert n_targets[1] > 4 * n_targets[0], n_targets  # the two micro-batches really differ
    large = batch([0, 1, 2, 3])
    large_loss = model(**large).loss
    expected = gradients(model, lambda: large_loss.backward())
    out = {}
    accumulated = gradients(model, lambda: out.update(loss=accumulate(model, [(None, b) for b in micro], accelerator)))
    assert all_close(accumulated, expected)
    loss, per_task = out["loss"]
    assert loss == pytest.approx(large_loss.item(), rel=1e-5) and per_task == {}  # the logged loss: token-weighted

    def mean_of_means():  # the formula before: each micro-batch's mean loss / grad_accum_steps
        for b in micro:
            (model(**b).loss / len(micro)).backward()

    old = gradients(model, mean_of_means)
    assert not all_close(old, expected)  # so the test can tell the two apart on this data
    worst = max(float((old[n] - expected[n]).norm() / expected[n].norm()) for n in expected if expected[n].norm() > 0)
    assert worst > 0.05, worst


def test_mixture_weighs_tasks_by_micro_batches_and_tokens_within_a_task(accelerator):
    model, batch = model_and_batches()
    # Task "x" holds rows 0-1 in two micro-batches, task "y" rows 2-3 in one: x is 2/3 of the step, y 1/3.
    step = [("x", batch([0])), ("y", batch([2, 3])), ("x", batch([1]))]
    x_loss, y_loss = model(**batch([0, 1])).loss, model(**batch([2, 3])).loss
    expected = gradients(model, lambda: (2 / 3 * x_loss + 1 / 3 * y_loss).backward())
    out = {}
    accumulated = gradients(model, lambda: out.update(loss=accumulate(model, step, accelerator)))
    assert all_close(accumulated, expected)
    loss, per_task = out["loss"]
    assert per_task == pytest.approx({"x": x_loss.item(), "y": y_loss.item()}, rel=1e-5)
    assert loss == pytest.approx(2 / 3 * x_loss.item() + 1 / 3 * y_loss.item(), rel=1e-5)


def test_ctc_and_lm_terms_each_average_over_their_own_items(accelerator):
    model = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "training.ctc_loss_weight=0.5",
                                                  "training.backbone.lora_dropout=0.0"]).eval()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(8000).astype(np.float32) for _ in range(3)]  # equal lengths: padding cannot differ
    texts = ["hi", "a much longer transcript of this clip", "ok"]
    prompt = get_task("transcribe").prompt
    processor = mm.Processor(model)

    def batch(rows):
        return processor([mm.Example(prompt, texts[r], audios=[clips[r]]) for r in rows])

    micro = [batch([0, 2]), batch([1])]
    assert all(loss_items(b)["ctc"] > 0 for b in micro)
    large_loss = model(**batch([0, 1, 2])).loss
    expected = gradients(model, lambda: large_loss.backward())
    assert any(n.startswith("heads.ctc") for n in expected)
    accumulated = gradients(model, lambda: accumulate(model, [(None, b) for b in micro], accelerator))
    assert all_close(accumulated, expected)


DDP_SCRIPT = """
import sys, torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from tests.multimodal.test_train_accumulate import model_and_batches
from multimodal.train import accumulate

# As train() does: an image batch leaves the audio encoder without gradients.
accelerator = Accelerator(cpu=True, kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
model, batch = model_and_batches()
ddp = accelerator.prepare(model)
rows = [[0, 2], [1, 3]][accelerator.process_index]  # rank 0 the short targets, rank 1 the long ones
accumulate(ddp, [(None, batch(rows[:1])), (None, batch(rows[1:]))], accelerator)
if accelerator.is_main_process:
    torch.save({n: p.grad for n, p in model.named_parameters() if p.grad is not None}, sys.argv[1])
"""


def test_two_processes_give_the_large_batch_gradient(tmp_path):
    """Under DDP the token counts are summed over the processes and DDP's averaging is undone."""
    script = tmp_path / "ddp_accumulate.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29531"]
    out = subprocess.run([*torchrun, str(script), str(tmp_path / "grads.pt")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    model, batch = model_and_batches()
    expected = gradients(model, lambda: model(**batch([0, 1, 2, 3])).loss.backward())
    assert all_close(torch.load(tmp_path / "grads.pt", weights_only=True), expected)
