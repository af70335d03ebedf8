"""One training step (forward + backward + AdamW) of a config on a synthetic image+audio+text batch (text only
for a config without encoders).

Prints build time, parameter counts and the median step time, with a bare-backbone step on the same
token count as the reference in the same run (so machine noise affects both alike). `--against` builds a
second model with config overrides (a before/after of one setting) and times it on the same batch, its steps
alternating with the first model's.

    .venv/bin/python benchmarks/step_time.py configs/tiny.yaml
    .venv/bin/python benchmarks/step_time.py configs/default.yaml --batch-size 8 --steps 5
    .venv/bin/python benchmarks/step_time.py configs/multitask_synthetic.yaml --against training.backbone.lora_dropout=0.05
    .venv/bin/python benchmarks/step_time.py configs/caption_scenes.yaml --batch-size 16 --against training.mixed_precision=bf16
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image

import multimodal as mm
from peak_memory import peak_rss_gb
from multimodal.train import mixed_precision
from multimodal.trainable import count_parameters, parameter_groups


def batch_of(model, batch_size: int, audio_s: float) -> dict:
    rng = np.random.RandomState(0)
    examples = []
    for i in range(batch_size):
        if "image" in model.encoders and (i % 2 == 0 or "audio" not in model.encoders):
            image = Image.fromarray(rng.randint(0, 255, (224, 224, 3), dtype=np.uint8))
            examples.append(mm.Example("<image>\nDescribe the image.", "a small red square on a blue field", images=[image]))
        elif "audio" in model.encoders:
            audio = rng.randn(int(audio_s * 16000)).astype("float32") * 0.1
            examples.append(mm.Example("<audio>\nTranscribe the audio.", "the quick brown fox jumps over the lazy dog", audios=[audio]))
        else:  # a text-only config: the backbone's step on a text prompt and target
            examples.append(mm.Example("Name the fruit: a small red fruit on a stem.", "a cherry"))
    return mm.Processor(model)(examples)


def timed_steps(steps: dict, n: int) -> dict[str, list[float]]:
    """Each step once to warm up, then `n` rounds in turn, so that machine noise hits all alike."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(n):
        for name, step in steps.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)
    return times


def step_of(model, batch: dict):
    """One training step as `multimodal train` takes it, under bf16 autocast when the config asks for it."""
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01))
    bf16 = mixed_precision(model.config.training) == "bf16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--audio-seconds", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--against", nargs="+", default=[], metavar="KEY=VALUE",
                   help="also time a model built with these config overrides (same batch, alternating steps)")
    args = p.parse_args()
    torch.manual_seed(0)

    t = time.perf_counter()
    model = mm.build(args.config).train()
    build_s = time.perf_counter() - t
    total, trainable = count_parameters(model)
    batch = batch_of(model, args.batch_size, args.audio_seconds)
    steps = {"ours": step_of(model, batch)}
    if args.against:
        torch.manual_seed(0)
        steps["against"] = step_of(mm.build(args.config, args.against).train(), batch)
    times = timed_steps(steps, args.steps)
    ours = times["ours"]

    # Reference: the bare backbone on token ids of the same shape, same trainable set, same optimizer.
    ids = batch["input_ids"].clamp(max=model.backbone.get_input_embeddings().num_embeddings - 1)
    labels = batch["labels"]

    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01))

    def bare_step():
        optimizer.zero_grad(set_to_none=True)
        model.backbone(input_ids=ids, attention_mask=batch["attention_mask"], labels=labels).loss.backward()
        optimizer.step()

    bare = timed_steps({"bare": bare_step}, args.steps)["bare"]
    peak_gb = peak_rss_gb()
    n_tokens = int(batch["attention_mask"].sum())
    print(f"config            {args.config}")
    print(f"build             {build_s:.1f} s")
    print(f"parameters        {total:,} total, {trainable:,} trainable ({trainable / total:.1%})")
    print(f"batch             {args.batch_size} examples, {tuple(batch['input_ids'].shape)} tokens ({n_tokens} real)")
    print(f"step (ours)       median {statistics.median(ours):.3f} s  [{', '.join(f'{x:.3f}' for x in ours)}]")
    if args.against:
        other = times["against"]
        print(f"step (against)    median {statistics.median(other):.3f} s  [{', '.join(f'{x:.3f}' for x in other)}]"
              f"  with {' '.join(args.against)}")
        print(f"ratio against/ours {statistics.median(other) / statistics.median(ours):.3f}x (> 1: ours is faster)")
    print(f"step (bare LM)    median {statistics.median(bare):.3f} s  (same token ids, no encoders)")
    print(f"ratio ours/bare   {statistics.median(ours) / statistics.median(bare):.2f}x (the encoders' and adapters' share)")
    print(f"peak RSS          {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
