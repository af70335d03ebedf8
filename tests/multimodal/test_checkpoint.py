import json

import numpy as np
import pytest
import torch
from PIL import Image

import multimodal as mm
from multimodal.checkpoint import CheckpointError, sha256


def batch_for(model):
    rng = np.random.RandomState(1)
    return mm.Processor(model)([
        mm.Example("Look <image>", "a cat", images=[Image.new("RGB", (32, 32), "green")]),
        mm.Example("Hear <audio>", "a dog", audios=[rng.randn(12000).astype("float32")]),
    ])


def perturbed(model):
    """Move every trainable weight off its initial value, as training would."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.mark.parametrize("adapter_only", [False, True])
def test_save_load_gives_identical_logits(tiny_config_path, tmp_path, adapter_only):
    model = perturbed(mm.build(tiny_config_path))
    batch = batch_for(model)
    expected = model(**batch, return_logits=True).logits
    model.save(tmp_path / "ckpt", adapter_only=adapter_only)
    loaded = mm.load(tmp_path / "ckpt")
    assert not loaded.training
    assert torch.equal(loaded(**batch, return_logits=True).logits, expected)
    meta = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert meta["format"] == ("adapter" if adapter_only else "full")


def test_adapter_only_stores_just_what_trained(tiny_config_path, tmp_path):
    overrides = ["training.image_encoder.mode=frozen", "encoders.image.name=resnet10t",
                 "encoders.image.model_kwargs={}"]
    model = mm.build(tiny_config_path, overrides)
    from safetensors.torch import load_file

    model.save(tmp_path / "a", adapter_only=True)
    keys = set(load_file(tmp_path / "a" / "model.safetensors"))
    # a random-init backbone and image encoder are not pretrained: they must be stored even if frozen
    assert any(k.startswith("encoders.image.") for k in keys)
    assert any(k.startswith("backbone.") and "lora_" not in k for k in keys)


@pytest.mark.pretrained
def test_adapter_only_with_pretrained_backbone_is_small(tmp_path):
    model = mm.build("configs/default.yaml")
    model.save(tmp_path / "a", adapter_only=True)
    meta = json.loads((tmp_path / "a" / "checkpoint.json").read_text())
    assert meta["attaches_to"]["backbone"] == "smollm2-135m-instruct"
    assert "image_encoder" in meta["attaches_to"]
    keys = meta["stored_keys"]
    assert keys and all("lora_" in k for k in keys if k.startswith("backbone."))
    assert not any(k.startswith("encoders.image.") for k in keys)  # frozen pretrained: named, not stored
    size_mb = (tmp_path / "a" / "model.safetensors").stat().st_size / 1e6
    assert size_mb < 60, size_mb  # the 517 MB backbone is not in it


def test_save_is_atomic_and_replaces(tiny_config_path, tmp_path, monkeypatch):
    model = mm.build(tiny_config_path)
    target = model.save(tmp_path / "ckpt")
    before = (target / "model.safetensors").read_bytes()

    import multimodal.checkpoint as ckpt

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ckpt, "save_model", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        model.save(target)
    assert (target / "model.safetensors").read_bytes() == before  # the old checkpoint is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no half-written sibling left behind


def test_load_errors_name_the_problem(tiny_config_path, tmp_path):
    with pytest.raises(CheckpointError, match="config.yaml is missing"):
        mm.load(tmp_path)
    model = mm.build(tiny_config_path)
    model.save(tmp_path / "c", adapter_only=True)
    from safetensors.torch import load_file, save_file

    state = load_file(tmp_path / "c" / "model.safetensors")
    state.pop(next(iter(state)))
    save_file(state, tmp_path / "c" / "model.safetensors")
    meta = json.loads((tmp_path / "c" / "checkpoint.json").read_text())  # a consistent file: its hash recorded
    meta["sha256"]["model.safetensors"] = sha256(tmp_path / "c" / "model.safetensors")
    (tmp_path / "c" / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="missing"):
        mm.load(tmp_path / "c")


def test_a_save_interrupted_between_renames_recovers_the_previous(tiny_config_path, tmp_path):
    model = mm.build(tiny_config_path)
    target = model.save(tmp_path / "ckpt")
    aside = tmp_path / ".ckpt.old-12345678"
    target.rename(aside)  # the state a crash between the two renames leaves
    (tmp_path / ".ckpt.tmp-87654321").mkdir()  # a partial new dir must never be used
    loaded = mm.load(tmp_path / "ckpt")
    assert isinstance(loaded, mm.MultimodalModel)
