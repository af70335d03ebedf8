"""An adapter-only checkpoint on a "pretrained" backbone (a tiny GPT-2 in a folder): stored without the backbone,
loaded back onto it exactly, and refused on any other backbone than the one its checkpoint.json attaches to."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

import multimodal as mm
from multimodal.model import PretrainedPartsError

from .tiny_text_backbones import build as build_backbone
from .tiny_text_backbones import gpt2

ROOT = Path(__file__).resolve().parents[2]


def on_backbone(backbone: Path) -> list[str]:
    return [f"backbone.name={backbone}", "backbone.pretrained=true", "backbone.overrides={}",
            "training.backbone.lora_targets=[c_attn]", "encoders.audio=null"]


def batch_for(model) -> dict[str, torch.Tensor]:
    return mm.Processor(model)([mm.Example("Look <image>", "a cat", images=[Image.new("RGB", (32, 32), "green")]),
                                mm.Example("Look again <image>", "two dogs", images=[Image.fromarray(
                                    np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))])])


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Path, torch.Tensor]:
    """(checkpoint dir, its backbone dir, the logits it gave before saving)."""
    root = tmp_path_factory.mktemp("attach")
    backbone = build_backbone("gpt2", root / "gpt2")
    model = mm.build(ROOT / "configs/tiny.yaml", on_backbone(backbone))
    assert model.pretrained_parts == {"backbone": str(backbone)}
    with torch.no_grad():  # move what trains (LoRA, adapter, image encoder) off its init, as training would
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    logits = model(**batch_for(model), return_logits=True).logits
    return model.save(root / "adapter", adapter_only=True), backbone, logits


def test_adapter_only_checkpoint_reloads_onto_its_backbone(saved):
    checkpoint, backbone, logits = saved
    meta = json.loads((checkpoint / "checkpoint.json").read_text())
    assert meta["format"] == "adapter" and meta["attaches_to"] == {"backbone": str(backbone)}
    stored = load_file(checkpoint / "model.safetensors")
    assert not any(k.startswith("backbone.") and "lora_" not in k for k in stored)  # the backbone stays in its folder
    assert any(k.startswith("backbone.") and "lora_" in k for k in stored)
    loaded = mm.load(checkpoint)
    assert torch.equal(loaded(**batch_for(loaded), return_logits=True).logits, logits)


def test_a_checkpoint_on_another_backbone_is_refused(saved, tmp_path):
    checkpoint, backbone, _ = saved
    torch.manual_seed(1)
    other = gpt2(tmp_path / "other_gpt2")  # same shapes and tokenizer, other weights: loading would "work"
    config = yaml.safe_load((checkpoint / "config.yaml").read_text())
    config["backbone"]["name"] = str(other)
    (checkpoint / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        with pytest.raises(PretrainedPartsError,
                           match=rf"backbone: the checkpoint's '{backbone}', the config's '{other}'"):
            mm.load(checkpoint)
    finally:
        config["backbone"]["name"] = str(backbone)
        (checkpoint / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_check_attaches_to_names_each_differing_part(saved):
    checkpoint, backbone, _ = saved
    model = mm.build(ROOT / "configs/tiny.yaml", on_backbone(backbone))
    model.check_attaches_to({"backbone": str(backbone)}, "ckpt")  # the same parts: fine
    with pytest.raises(PretrainedPartsError, match=r"backbone: the checkpoint's 'gpt2-large', the config's '.*gpt2'; "
                                                   r"image_encoder: the checkpoint's 'vit \(timm\)', the config's "
                                                   r"'none \(random init\)'"):
        model.check_attaches_to({"backbone": "gpt2-large", "image_encoder": "vit (timm)"}, "ckpt")
    with pytest.raises(PretrainedPartsError, match=r"backbone: the checkpoint's 'none \(trained, stored\)'"):
        model.check_attaches_to({}, "ckpt")


def test_resuming_onto_another_backbone_is_refused(saved, tmp_path):
    """--resume puts `last/` into a model built from the run's config: a config now naming another backbone stops."""
    from multimodal.checkpoint import load_weights

    checkpoint, backbone, _ = saved
    torch.manual_seed(1)
    other = gpt2(tmp_path / "other_gpt2")
    model = mm.build(ROOT / "configs/tiny.yaml", on_backbone(other))
    with pytest.raises(PretrainedPartsError, match=rf"backbone: the checkpoint's '{backbone}', the config's '{other}'"):
        load_weights(model, checkpoint)
