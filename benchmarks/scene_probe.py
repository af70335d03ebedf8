"""What an image encoder's features say about each object of a drawn scene: a per-object probe.

For every object of the scenes corpus (`multimodal data scenes`), the encoder's token at the object's centre
is fed to a small classifier (linear, and one hidden layer of 256) trained on the train split to name the
object's colour and shape; accuracy is reported on train, eval and the held-out colour/shape combinations.
A caption model can only name what its image tokens carry, so this separates "the features lack it" from
"the adapter and LM have not learned to read it" in minutes, with no LM. Held-out combinations show whether
colour is read apart from shape: a feature that ties them (an ImageNet CNN's final map) names a purple
triangle by the colours triangles had in training.

The reference is the config's encoder; `--against` adds encoders built with config overrides, and `--model`
the encoder of trained checkpoints, all probed on the same objects in the same run.

    .venv/bin/python benchmarks/scene_probe.py --scenes data/scenes --config configs/caption.yaml \\
        --against encoders.image.output_stage=3 'encoders.image.extra_feature_stages=[1,2]'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

import multimodal as mm
from encoders import VisionEncoder
from multimodal.config import load_config
from tasks.corpora.scenes import COLOURS, SHAPES

SPLITS = ("train", "eval", "heldout")
COLOUR_NAMES, SHAPE_NAMES = list(COLOURS), list(SHAPES)


def read_rows(scenes: Path, split: str, n: int) -> list[dict]:
    path = scenes / split / "metadata.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --scenes must hold a scenes corpus (multimodal data scenes)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:n] if n else rows


@torch.no_grad()
def object_features(encoder: VisionEncoder, scenes: Path, split: str, rows: list[dict], batch_size: int = 32):
    """(features (N_objects, D), colour ids (N_objects,), shape ids (N_objects,)): each object's centre token."""
    features, colours, shapes = [], [], []
    h, w = encoder.grid_size
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        images = [Image.open(scenes / split / row["file_name"]) for row in batch]
        tokens = encoder(encoder.preprocess(images)).features  # (B, H*W, D)
        for i, row in enumerate(batch):
            for obj in row["objects"]:
                token = min(int(obj["y"] * h), h - 1) * w + min(int(obj["x"] * w), w - 1)
                features.append(tokens[i, token])
                colours.append(COLOUR_NAMES.index(obj["colour"]))
                shapes.append(SHAPE_NAMES.index(obj["shape"]))
    return torch.stack(features), torch.tensor(colours), torch.tensor(shapes)


def probe(data: dict, hidden: int, epochs: int = 400, seed: int = 0) -> dict[str, dict[str, float]]:
    """Fit colour + shape classifiers on data["train"]; accuracy per split."""
    torch.manual_seed(seed)
    x, colours, shapes = data["train"]
    mean, std = x.mean(0), x.std(0) + 1e-5
    n_out = len(COLOUR_NAMES) + len(SHAPE_NAMES)
    net = (torch.nn.Linear(x.shape[1], n_out) if not hidden else
           torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(x.shape[1], hidden), torch.nn.GELU(),
                               torch.nn.Linear(hidden, n_out)))
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-2)
    k = len(COLOUR_NAMES)
    for _ in range(epochs):  # full batch: a few thousand objects
        out = net((x - mean) / std)
        loss = F.cross_entropy(out[:, :k], colours) + F.cross_entropy(out[:, k:], shapes)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    result = {}
    with torch.no_grad():
        for split, (xs, cs, ss) in data.items():
            out = net((xs - mean) / std)
            result[split] = {"colour": (out[:, :k].argmax(-1) == cs).float().mean().item(),
                             "shape": (out[:, k:].argmax(-1) == ss).float().mean().item(), "objects": len(cs)}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", required=True, help="scenes corpus dir with train/, eval/, heldout/")
    p.add_argument("--config", default="configs/caption.yaml", help="its encoders.image is the reference")
    p.add_argument("--against", nargs="+", default=[], metavar="KEY=VALUE",
                   help="also probe an encoder built with these config overrides")
    p.add_argument("--model", nargs="+", default=[], help="also probe these checkpoints' (trained) image encoders")
    p.add_argument("--train-images", type=int, default=3000)
    p.add_argument("--eval-images", type=int, default=200, help="per split: eval and heldout")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    scenes = Path(args.scenes)
    rows = {split: read_rows(scenes, split, args.train_images if split == "train" else args.eval_images)
            for split in SPLITS}

    encoders: dict[str, VisionEncoder] = {}
    reference = load_config(args.config).encoders.image
    if reference is None:
        raise ValueError(f"{args.config} has no image encoder (encoders.image)")
    encoders[f"{args.config}"] = VisionEncoder(reference)
    if args.against:
        encoders[" ".join(args.against)] = VisionEncoder(load_config(args.config, args.against).encoders.image)
    for model_dir in args.model:
        model = mm.load(model_dir)
        if "image" not in model.encoders:
            raise ValueError(f"{model_dir} has no image encoder")
        encoders[model_dir] = model.encoders["image"]

    results = {}
    print(f"{'encoder':58s} {'probe':6s} " + " ".join(f"{s + ' col/shp':>16s}" for s in SPLITS) + "  features")
    for name, encoder in encoders.items():
        encoder.eval()
        start = time.perf_counter()
        data = {split: object_features(encoder, scenes, split, rows[split]) for split in SPLITS}
        seconds = time.perf_counter() - start
        results[name] = {"dim": encoder.out_dim, "grid": list(encoder.grid_size), "feature_s": seconds}
        for kind, hidden in (("linear", 0), ("mlp", 256)):
            r = probe(data, hidden)
            results[name][kind] = r
            cells = " ".join(f"{r[s]['colour']:7.3f}/{r[s]['shape']:.3f}" for s in SPLITS)
            print(f"{name[-58:]:58s} {kind:6s} {cells}  {encoder.out_dim} x {encoder.grid_size}, {seconds:.0f} s",
                  flush=True)
    counts = {s: len(d[1]) for s, d in data.items()}
    print(f"objects probed: {counts}")
    if args.json:
        Path(args.json).write_text(json.dumps({"objects": counts, "encoders": results}, indent=2))


if __name__ == "__main__":
    main()
