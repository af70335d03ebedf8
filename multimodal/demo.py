"""`make demo` until the trained multi-task checkpoint lands (issue 7): build the default model, show each path.

1. the pretrained backbone answers prompts through the library's own generation path;
2. an image goes through the pretrained encoder (its ImageNet guess shown) and the adapter into LM inputs;
3. a spoken sentence (espeak-ng) goes through the audio encoder and the adapter into LM inputs.
The adapters are untrained here, so no caption or transcript is claimed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import multimodal as mm
from encoders import load_audio
from multimodal.trainable import count_parameters

DEMO_SENTENCE = "The quick brown fox jumps over the lazy dog."


def _demo_image():
    """A real photo when scikit-image's samples are installed (a cat), else a drawn scene."""
    from PIL import Image, ImageDraw

    try:
        from skimage import data

        return Image.fromarray(data.chelsea()), "scikit-image's 'chelsea' photo (a cat)"
    except ImportError:
        image = Image.new("RGB", (224, 224), "skyblue")
        ImageDraw.Draw(image).ellipse((60, 60, 160, 160), fill="red")
        return image, "a drawn red circle on blue"


def _speak(text: str, folder: Path) -> Path:
    if shutil.which("espeak-ng") is None:
        raise FileNotFoundError("espeak-ng is not installed (make demo installs it with apt-get)")
    path = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return path


def _imagenet_top(config, pixel_values: torch.Tensor, k: int = 3) -> str:
    """The ImageNet top-k of the packaged EfficientNet-Lite0 classifier, when that is the image encoder."""
    if config.name != "tf_efficientnet_lite0" or config.pretrained != "package":
        return ""
    from timm.data import ImageNetInfo

    from encoders.efficientnet_lite import build_efficientnet_lite0

    classifier = build_efficientnet_lite0(pretrained=True).eval()  # the encoder itself has no class head
    probs = classifier(pixel_values).softmax(-1)[0]
    top = probs.topk(k)
    info = ImageNetInfo()
    return ", ".join(f"{info.index_to_description(int(i))} {p:.0%}" for p, i in zip(top.values, top.indices))


@torch.no_grad()
def run(config_path: str = "configs/default.yaml") -> None:
    start = time.perf_counter()
    model = mm.build(config_path).eval()
    total, trainable = count_parameters(model)
    print(f"built {config_path} in {time.perf_counter() - start:.1f} s: {total / 1e6:.1f}M parameters, "
          f"{trainable / 1e6:.2f}M trainable")
    for name, module in model.components().items():
        n = sum(p.numel() for p in module.parameters())
        mode = getattr(model.config.training, name).mode
        print(f"  {name:<14} {n / 1e6:8.2f}M  {mode:<6} {model.pretrained_parts.get(name, 'random init')}")

    processor = mm.Processor(model)
    print("\n1. the backbone answers (greedy, through the library's generate):")
    if model.is_causal:
        chat = model.tokenizer.apply_chat_template(
            [{"role": "user", "content": "What is the capital of France?"}], tokenize=False, add_generation_prompt=True
        ) if model.tokenizer.chat_template else "Q: What is the capital of France?\nA:"
        prompts = ["The capital of France is", chat]
        batch = processor([mm.Example(p) for p in prompts], padding_side="left")
        answers = model.generate(batch, mm.GenerationConfig(max_new_tokens=24))
        for prompt, answer in zip(["The capital of France is", "(chat) What is the capital of France?"], answers):
            print(f"  {prompt!r} -> {answer!r}")

    if "image" in model.encoders:
        image, what = _demo_image()
        pixels = model.encoders["image"].preprocess([image])  # (1, 3, H, W)
        features = model.encoders["image"](pixels)
        tokens, _ = model.adapters["image"](features)
        print(f"\n2. image: {what}")
        guess = _imagenet_top(model.config.encoders.image, pixels)
        if guess:
            print(f"  the pretrained encoder's ImageNet guess: {guess}")
        print(f"  pixels {tuple(pixels.shape)} -> encoder features {tuple(features.features.shape)} "
              f"(grid {features.grid}) -> adapter tokens {tuple(tokens.shape)}")
        batch = processor([mm.Example("<image>\nDescribe the image.", images=[image])])
        embeds = model.embed(batch["input_ids"], pixel_values=batch["pixel_values"])
        print(f"  prompt '<image>\\nDescribe the image.' -> LM input embeddings {tuple(embeds.shape)}")

    if "audio" in model.encoders:
        with tempfile.TemporaryDirectory() as tmp:
            wav = _speak(DEMO_SENTENCE, Path(tmp))
            audio = load_audio(wav)  # espeak-ng writes 22,050 Hz; resampled to 16 kHz mono
        values, mask = model.encoders["audio"].preprocess([audio])
        features = model.encoders["audio"](values, mask)
        tokens, _ = model.adapters["audio"](features)
        print(f"\n3. audio: espeak-ng says {DEMO_SENTENCE!r} ({len(audio) / 16000:.2f} s at 16 kHz)")
        print(f"  waveform {tuple(values.shape)} -> encoder features {tuple(features.features.shape)} "
              f"-> adapter tokens {tuple(tokens.shape)} ({tokens.shape[1] / (len(audio) / 16000):.1f} tokens/s)")
        batch = processor([mm.Example("<audio>\nTranscribe the audio.", audios=[np.asarray(audio)])])
        embeds = model.embed(batch["input_ids"], audio_values=batch["audio_values"],
                             audio_attention_mask=batch["audio_attention_mask"])
        print(f"  prompt '<audio>\\nTranscribe the audio.' -> LM input embeddings {tuple(embeds.shape)}")

    print(f"\ndone in {time.perf_counter() - start:.1f} s. The adapters here are untrained: `multimodal train` "
          "teaches a task (README: Training, Speech recognition).")
