"""Exact resume of an audio run with augmentation and data-loader workers on."""

from pathlib import Path

import torch
from safetensors.torch import load_file

from multimodal.config import load_config
from multimodal.train import train

from .corpora import audio_folder
from .interrupt import train_until_interrupted

ROOT = Path(__file__).resolve().parents[2]


def test_audio_run_with_augmentation_and_workers_resumes_bitwise(tmp_path):
    data = audio_folder(tmp_path / "clips", n=10)  # 10 rows / 4: epochs end mid-run, a short last batch
    config = load_config(ROOT / "configs/tiny.yaml", [
        "data.task=transcribe", "encoders.image=null", "data.augment.enabled=true", "data.num_workers=2",
        "training.batch_size=4", "training.max_steps=6", "training.save_every=3", "training.eval_every=0"])
    assert config.encoders.audio.mask_time_prob > 0  # SpecAugment draws masks while training, too
    train(config, tmp_path / "straight", train_data=data, progress=False)
    assert train_until_interrupted(train, config, tmp_path / "stopped", 3, train_data=data, progress=False) == [3]
    train(config, tmp_path / "stopped", train_data=data, resume=True, progress=False)
    a = load_file(tmp_path / "straight/last/model.safetensors")
    b = load_file(tmp_path / "stopped/last/model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
