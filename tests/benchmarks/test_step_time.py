"""benchmarks/step_time.py: the synthetic batch fits the config's encoders, and one timed step trains."""

import pytest
import torch

import multimodal as mm

from ..conftest import TINY
from . import load_benchmark


@pytest.mark.parametrize("dropped, kinds", [
    ([], {"image", "audio"}),
    (["encoders.audio=null"], {"image"}),
    (["encoders.image=null", "encoders.audio=null"], set()),  # text only: it once built an empty batch
])
def test_batch_fits_the_encoders_and_a_step_trains(dropped, kinds):
    bench = load_benchmark("step_time")
    model = mm.build(TINY, dropped).train()
    batch = bench.batch_of(model, 4, audio_s=0.5)
    assert batch["input_ids"].shape[0] == 4
    present = {kind for kind, key in (("image", "pixel_values"), ("audio", "audio_values")) if key in batch}
    assert present == kinds
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    bench.step_of(model, batch)()
    after = [p for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(b, a) for b, a in zip(before, after))
