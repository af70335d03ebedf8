"""`training.init_from`: weights copied where name and shape match, the run starting from them, and --resume not
copying them again."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import multimodal as mm
from multimodal.checkpoint import CheckpointError
from multimodal.warm_start import init_from
from multimodal.config import load_config
from multimodal.data import Collator, TaskDataset, load_rows
from multimodal.train import train
from tasks import get_task

from .corpora import image_folder
from .interrupt import train_until_interrupted
from .tiny_text_backbones import build as build_backbone

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs/tiny.yaml"
# The source: the same architecture from another seed, its weights moved off their init as training would.
SOURCE = ["training.seed=7", "data.task=caption"]
# The target: an image adapter that reads 2x2 fewer tokens (another input width) and a CTC head the source lacks.
TARGET = ["adapters.image.factor=1", "heads.ctc=true", "data.task=caption"]


def source_checkpoint(directory: Path) -> Path:
    model = mm.build(TINY, SOURCE)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.save(directory)


def test_init_from_copies_matching_weights_and_keeps_the_rest(tmp_path):
    source = load_file(source_checkpoint(tmp_path / "source") / "model.safetensors")
    model = mm.build(TINY, TARGET)
    fresh = {k: v.clone() for k, v in mm.build(TINY, TARGET).state_dict().items()}
    copied = init_from(model, tmp_path / "source")
    state = model.state_dict()
    same_shape = {k for k in state if k in source and source[k].shape == state[k].shape}
    other_shape = {k for k in state if k in source and source[k].shape != state[k].shape}
    # A tied weight (the LM head = the embeddings) is stored once, under one name: it follows its twin.
    tied = {k for k in state if k not in source and any(state[k].data_ptr() == state[j].data_ptr() for j in same_shape)}
    new_names = {k for k in state if k not in source} - tied
    assert any(k.startswith("adapters.image.") for k in other_shape)
    assert any(k.startswith("heads.ctc") for k in new_names)
    assert set(copied) == same_shape and any(k.startswith("encoders.image.") for k in same_shape)
    assert all(torch.equal(state[k], source[k]) for k in same_shape)
    assert not any(torch.equal(fresh[k], source[k]) for k in same_shape if fresh[k].is_floating_point()
                   and fresh[k].numel() > 1)  # so the copies show
    assert all(torch.equal(state[k], fresh[k]) for k in other_shape | new_names)  # kept their init


def test_a_checkpoint_that_fits_nothing_is_an_error(tmp_path):
    # A text-only model on a GPT-2 backbone: no encoder or adapter, and GPT-2's weights are named otherwise.
    gpt2 = build_backbone("gpt2", tmp_path / "gpt2")
    text_only = [f"backbone.name={gpt2}", "backbone.overrides={}", "encoders.image=null", "encoders.audio=null",
                 "training.backbone.lora_targets=[c_attn]"]
    path = mm.build(TINY, text_only).save(tmp_path / "text_only")
    weights = load_file(path / "model.safetensors")
    model = mm.build(TINY, TARGET)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=rf"none of its {len(weights)} weights fits this model"):
        init_from(model, path)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_starts_from_the_checkpoint_and_resume_does_not_copy_it_again(tmp_path):
    data = image_folder(tmp_path / "images", n=8)
    source_dir = source_checkpoint(tmp_path / "source")
    base = ["data.task=caption", "data.num_workers=0", "training.batch_size=8", "training.log_every=1",
            "training.eval_every=0", "training.save_every=2", "training.max_steps=4"]
    config = load_config(TINY, base + [f"training.init_from={source_dir}"])
    train(config, tmp_path / "straight", train_data=data, progress=False)

    # Step 1's batch holds all 8 rows: its loss is the source model's loss on them.
    source = mm.load(source_dir)
    task = get_task("caption")
    rows = load_rows(data, task)
    batch = Collator(mm.Processor(source))([TaskDataset(rows, task)[i] for i in range(len(rows))])
    batch.pop("references")
    with torch.no_grad():
        source_loss = float(source(**batch).loss)
        fresh_loss = float(mm.build(TINY, base)(**batch).loss)
    first = records(tmp_path / "straight")[0]
    assert first["step"] == 1 and first["loss"] == pytest.approx(source_loss, rel=1e-5)
    assert abs(fresh_loss - source_loss) > 0.01  # without init_from the first loss would differ

    # Stopped after step 2, the source moved away, resumed: it needs no source and ends where the straight run did.
    assert train_until_interrupted(train, config, tmp_path / "stopped", 2, train_data=data, progress=False) == [2]
    shutil.move(source_dir, tmp_path / "moved")
    train(config, tmp_path / "stopped", train_data=data, resume=True, progress=False)
    a = load_file(tmp_path / "straight/last/model.safetensors")
    b = load_file(tmp_path / "stopped/last/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
