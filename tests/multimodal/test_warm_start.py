"""`training.init_from` with several checkpoints (multimodal/warm_start.py): LoRA updates stacked rank by rank and
rescaled, plain weights taken from the one source that has them, and the errors that name what is wrong."""

from pathlib import Path

import pytest
import torch

import multimodal as mm
from multimodal.checkpoint import CheckpointError
from multimodal.warm_start import init_from

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs/tiny.yaml"
TEXT_ONLY = ["encoders.image=null", "encoders.audio=null"]


def lora(r: int, alpha: int) -> list[str]:
    return [f"training.backbone.lora_r={r}", f"training.backbone.lora_alpha={alpha}"]


def moved(model, parts: tuple[str, ...] = ("lora_", "adapters.", "encoders."), seed: int = 0, scale: float = 0.1):
    """`model` with the weights it trains (names holding one of `parts`) moved off their init, as training would
    (`build` seeds the global RNG from the config: `seed` makes two moves differ)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(part in name for part in parts):
                p.add_(torch.randn(p.shape, generator=generator) * scale)
    return model


def deltas(model) -> dict[str, torch.Tensor]:
    """LoRA layer -> its update scaling * B @ A."""
    return {name: m.scaling["default"] * m.lora_B["default"].weight @ m.lora_A["default"].weight
            for name, m in model.named_modules() if hasattr(m, "lora_A") and "default" in getattr(m, "r", {})}


def test_lora_updates_of_several_sources_add_up_and_plain_weights_come_from_their_source(tmp_path):
    vision = moved(mm.build(TINY, lora(2, 4)))  # LoRA scaling 2, its adapters and encoders moved too
    # scaling 4; no encoder, no adapter
    text = moved(mm.build(TINY, [*lora(3, 12), *TEXT_ONLY]), parts=("lora_",), seed=1)
    # The tiny backbone is random, so both store it: the same weights (same seed), which is no conflict.
    vision.save(tmp_path / "vision")
    text.save(tmp_path / "text")
    model = mm.build(TINY, lora(6, 6))  # scaling 1, one rank to spare
    copied = init_from(model, [tmp_path / "vision", tmp_path / "text"])
    expected = {k: deltas(vision)[k] + deltas(text)[k] for k in deltas(vision)}
    got = deltas(model)
    assert set(got) == set(expected) and len(got) == 4  # q, v in 2 layers
    for k in got:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-6)
    spare = model.state_dict()
    assert all(torch.count_nonzero(spare[f"{k}.lora_B.default.weight"][:, 5:]) == 0 for k in got)  # no update yet
    state, theirs = model.state_dict(), vision.state_dict()
    adapters = [k for k in state if k.startswith("adapters.image.")]
    assert adapters and all(torch.equal(state[k], theirs[k]) for k in adapters) and set(adapters) <= set(copied)


def test_one_source_gives_back_its_own_model(tmp_path):
    source = moved(mm.build(TINY, lora(2, 4)))
    source.save(tmp_path / "source")
    model = mm.build(TINY, lora(2, 4))
    init_from(model, [tmp_path / "source"])
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(model.backbone(input_ids=ids).logits, source.eval().backbone(input_ids=ids).logits)


def test_too_few_ranks_and_two_sources_disagreeing_are_errors_naming_them(tmp_path):
    for seed, name in enumerate(("a", "b")):
        moved(mm.build(TINY, lora(2, 4)), seed=seed).save(tmp_path / name)
    with pytest.raises(CheckpointError, match=r"'.*b'.*needs ranks 2..3, the model has 3: raise .* lora_r"):
        init_from(mm.build(TINY, lora(3, 6)), [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(CheckpointError, match=r"both '.*a' and '.*b' hold the weight adapters\..*, differently"):
        init_from(mm.build(TINY, lora(4, 8)), [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ValueError, match=r"names .*a more than once"):
        init_from(mm.build(TINY, lora(4, 8)), [tmp_path / "a", tmp_path / "a"])
    with pytest.raises(ValueError, match="at least one checkpoint"):
        init_from(mm.build(TINY, lora(4, 8)), [])
