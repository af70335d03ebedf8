"""Tiny generated data sets in the ecosystem's formats, for tests (written in a few hundred ms)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (240, 220, 40)}
SHAPES = ("square", "circle")


def image_folder(root: Path, n: int = 24, size: int = 32, seed: int = 0) -> Path:
    """Coloured shapes captioned 'a red square' etc., as an imagefolder with metadata.jsonl."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        colour = list(COLOURS)[i % len(COLOURS)]
        shape = SHAPES[(i // len(COLOURS)) % len(SHAPES)]
        image = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(200, 255, 3)))
        box = (size // 4, size // 4, 3 * size // 4, 3 * size // 4)
        draw = ImageDraw.Draw(image)
        (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=COLOURS[colour])
        name = f"img_{i:03d}.png"
        image.save(root / name)
        rows.append({"file_name": name, "text": f"a {colour} {shape}"})
    write_jsonl(root / "metadata.jsonl", rows)
    return root


def audio_folder(root: Path, n: int = 12, seed: int = 0) -> Path:
    """Short tones of varying length (8-22 kHz files) labelled 'low tone' / 'high tone', as an audiofolder."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        rate = (8000, 16000, 22050)[i % 3]
        seconds = 0.3 + 0.1 * (i % 5)
        high = i % 2 == 0
        t = np.arange(int(rate * seconds)) / rate
        wave = 0.3 * np.sin(2 * np.pi * (880 if high else 220) * t) + 0.01 * rng.standard_normal(len(t))
        name = f"clip_{i:03d}.wav"
        soundfile.write(root / name, wave.astype(np.float32), rate)
        rows.append({"file_name": name, "text": "high tone" if high else "low tone"})
    write_jsonl(root / "metadata.jsonl", rows)
    return root


def text_file(path: Path, n: int = 24) -> Path:
    """JSONL `text,label` rows: sentences about fruit or weather."""
    fruit = ["I ate a ripe banana", "apples are sweet", "the mango was juicy", "pears taste good"]
    weather = ["it rained all day", "the sun is shining", "a cold wind blows", "snow fell overnight"]
    rows = [{"text": (fruit if i % 2 else weather)[i % 4], "label": "fruit" if i % 2 else "weather"} for i in range(n)]
    write_jsonl(path, rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
