"""Captioning images: any image Pillow reads, batched, greedy or beam search, bad files skipped.

Each input is read by `encoders.load_image` (alpha composited on white, palette / CMYK / grayscale / 16-bit
converted, EXIF orientation applied, very large images downscaled) one batch at a time, so memory stays
bounded however many files come. The caption task's own prompt (`tasks.registry`) is used, as in training.
A file that cannot be read is reported by name and skipped; the others are captioned.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

from encoders import InputFileError, load_image
from multimodal.generation import GenerationConfig
from multimodal.processor import Example, Processor
from tasks import get_task

log = logging.getLogger(__name__)


@dataclass
class Caption:
    file: str | None  # the path, or None for a PIL image or an array
    text: str = ""
    error: str | None = None  # why the input was skipped


def caption(
    model,
    sources: list[Any],
    batch_size: int = 8,
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    progress: bool = True,
) -> Iterator[Caption]:
    """Captions of `sources` (paths, PIL images or (H, W[, C]) arrays), yielded in input order batch by batch."""
    if "image" not in model.encoders:
        raise ValueError("this model has no image encoder (config encoders.image is null)")
    if batch_size < 1 or num_beams < 1:
        raise ValueError(f"batch_size and num_beams must be >= 1, got {batch_size} and {num_beams}")
    task = get_task("caption")
    generation = GenerationConfig(max_new_tokens=max_new_tokens or task.max_new_tokens, num_beams=num_beams)
    processor = Processor(model)
    model.eval()
    with tqdm(total=len(sources), desc="captioning", unit="image", disable=not progress) as bar:
        for start in range(0, len(sources), batch_size):
            results, images = [], []
            for source in sources[start : start + batch_size]:
                name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
                try:
                    images.append((len(results), load_image(source)))
                    results.append(Caption(file=name))
                except InputFileError as e:
                    log.error("skipped: %s", e)
                    results.append(Caption(file=name, error=str(e)))
            for (i, _), text in zip(images, _generate(model, processor, task.prompt, [im for _, im in images], generation)):
                results[i].text = text
            bar.update(len(results))
            yield from results


@torch.no_grad()
def _generate(model, processor: Processor, prompt: str, images: list, generation: GenerationConfig) -> list[str]:
    if not images:
        return []
    batch = processor([Example(prompt, images=[image]) for image in images], padding_side="left")
    return model.generate({k: v.to(model.device) for k, v in batch.items()}, generation)
