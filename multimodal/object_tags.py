"""Fitting an image encoder's object head (`multimodal fit-tags`) on the object names of captioned image folders.

A media folder's metadata rows may list what each image shows: `"objects": [{"name": "owl"}, ...]`, as
`multimodal data objects` and `data emoji` write them. The head (encoders/object_head.py) learns the names of
the training folders' rows: each image's pooled final feature map (the frozen encoder runs once per image) ->
a multi-label target over the names -> binary cross-entropy, AdamW, a fixed number of passes. The encoder itself
does not change, so a captioner's image tokens stay as they were; only the tags the LM reads gain names.

Scores on the evaluation folders (`FitReport`): the share of their objects whose name is among the image's
top-k names (k = its number of objects) and among the names above the threshold the tags use, and the share of
tagged names that are right. Names the training folders never show cannot be found: they count as missed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from multimodal.model import MultimodalModel

log = logging.getLogger(__name__)
METADATA = "metadata.jsonl"


@dataclass
class FitConfig:
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1.0e-3
    weight_decay: float = 0.05
    dropout: float = 0.3
    encode_batch: int = 32  # images per encoder forward pass
    seed: int = 0


@dataclass
class FitReport:
    names: int  # the head's vocabulary
    train_images: int
    eval_images: int
    eval_recall_top_k: float  # objects whose name is among the image's top-k names (k = its objects)
    eval_recall_tagged: float  # objects whose name is tagged (probability >= threshold, at most object_tags)
    eval_precision_tagged: float  # tagged names that are right
    seconds: float


def folder_objects(folder: str | Path) -> list[tuple[Path, list[str]]]:
    """(image file, its object names) for each row of a media folder's metadata.jsonl that lists objects."""
    folder = Path(folder)
    path = folder / METADATA
    if not path.is_file():
        raise FileNotFoundError(f"'{folder}' has no {METADATA}: fit-tags reads a media folder whose rows list "
                                '"objects": [{"name": ...}]')
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {n}: not a JSON object ({e.msg})") from None
        objects = row.get("objects") if isinstance(row, dict) else None
        if not isinstance(objects, list):
            continue
        names = [o["name"] for o in objects if isinstance(o, dict) and isinstance(o.get("name"), str) and o["name"]]
        if names and "file_name" in row:
            rows.append((folder / row["file_name"], names))
    return rows


def read_objects(folders: list[str | Path]) -> list[tuple[Path, list[str]]]:
    rows = [r for folder in folders for r in folder_objects(folder)]
    if not rows:
        raise ValueError(f"no row of {[str(f) for f in folders]} lists named objects "
                         '("objects": [{"name": ...}] in metadata.jsonl): nothing to fit an object head on')
    return rows


@torch.no_grad()
def pooled_features(model: MultimodalModel, files: list[Path], batch_size: int, what: str) -> torch.Tensor:
    """(N, R, C) pooled vectors of each image's final map (`ObjectHead.pool`), fp16."""
    from encoders.image_io import load_image
    from encoders.object_head import ObjectHead

    encoder = model.encoders["image"]
    out = []
    for start in tqdm(range(0, len(files), batch_size), desc=f"encoding {what}", unit="batch"):
        images = [load_image(f) for f in files[start : start + batch_size]]
        features = encoder.final_features(encoder.preprocess(images)).float()  # (B, C, H, W)
        out.append(ObjectHead.pool(features).half())  # (B, R, C)
    return torch.cat(out)


def targets(rows: list[tuple[Path, list[str]]], index: dict[str, int]) -> torch.Tensor:
    """(N, n_names) multi-hot: the names each image shows (names outside `index` are left out)."""
    y = torch.zeros(len(rows), len(index))
    for i, (_, names) in enumerate(rows):
        for name in names:
            if name in index:
                y[i, index[name]] = 1.0
    return y


def fit_object_head(model: MultimodalModel, train: list[str | Path], eval_: list[str | Path] | None = None,
                    fit: FitConfig | None = None) -> FitReport:
    """Give the model's image encoder an object head over the training folders' names and fit it."""
    fit = fit or FitConfig()
    if "image" not in model.encoders:
        raise ValueError("fit-tags needs a model with an image encoder (encoders.image)")
    encoder = model.encoders["image"]
    start = time.time()
    rows = read_objects(train)
    names = sorted({n for _, ns in rows for n in ns})
    head = encoder.set_object_names(names)
    if not encoder.config.object_tags:
        encoder.config.object_tags = 3
    x = pooled_features(model, [f for f, _ in rows], fit.encode_batch, "training images")  # (N, R, C)
    fit_head(head, x, targets(rows, {n: i for i, n in enumerate(names)}), fit)

    report = FitReport(len(names), len(rows), 0, float("nan"), float("nan"), float("nan"), 0.0)
    if eval_:
        report = score_head(model, read_objects(eval_), fit.encode_batch, report)
    report.seconds = time.time() - start
    log.info("object head: %s", asdict(report))
    return report


def fit_head(head, x: torch.Tensor, y: torch.Tensor, fit: FitConfig) -> None:
    """Fit `head` (an `ObjectHead`) on pooled vectors x (N, R, C) and multi-hot targets y (N, n_names); frozen after."""
    flat = x.float().flatten(0, 1)
    head.mean.copy_(flat.mean(0))
    head.std.copy_(flat.std(0) + 1e-3)
    prior = (y.sum(0) + 1) / (len(y) + 2)  # each name's share of the images: the logits start at its log-odds,
    head.up.bias.data.copy_(torch.log(prior / (1 - prior)))  # not at 0, from which thousands of steps lead down
    generator = torch.Generator().manual_seed(fit.seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=fit.lr, weight_decay=fit.weight_decay)
    head.train()
    head.dropout.p = fit.dropout
    for _ in tqdm(range(fit.epochs), desc="fitting the object head", unit="epoch"):
        order = torch.randperm(len(x), generator=generator)
        for b in range(0, len(x), fit.batch_size):
            batch = order[b : b + fit.batch_size]
            logits = head.score(x[batch])  # (B, N)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[batch], reduction="sum") / len(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    head.dropout.p = 0.0
    head.eval()
    head.requires_grad_(False)


@torch.no_grad()
def score_head(model: MultimodalModel, rows: list[tuple[Path, list[str]]], batch_size: int,
               report: FitReport) -> FitReport:
    """`report` with the head's scores on `rows` filled in."""
    encoder = model.encoders["image"]
    head = encoder.object_head
    x = pooled_features(model, [f for f, _ in rows], batch_size, "evaluation images")
    logits = head.score(x)  # (N, n_names)
    tagged = head.top_names(logits, encoder.config.object_tags, encoder.config.object_tag_threshold)
    top_hits = tag_hits = objects = n_tagged = 0
    for (_, names), row, tags in zip(rows, logits, tagged):
        top = {head.names[i] for i in row.topk(min(len(names), len(head.names))).indices.tolist()}
        top_hits += sum(n in top for n in names)
        tag_hits += sum(n in tags for n in names)
        objects += len(names)
        n_tagged += len(tags)
    report.eval_images = len(rows)
    report.eval_recall_top_k = top_hits / objects
    report.eval_recall_tagged = tag_hits / objects
    report.eval_precision_tagged = tag_hits / n_tagged if n_tagged else float("nan")
    return report


def adopt_object_names(config, checkpoint: str | Path):
    """`config` with the object head's vocabulary (and tag settings) of `checkpoint`'s when `config` has no head of
    its own: a run initialised from, or resuming, a model with a fitted head builds that head to load it into."""
    import copy

    import yaml

    image = config.encoders.image
    path = Path(checkpoint) / "config.yaml"
    if image is None or image.object_tag_names or not path.is_file():  # no checkpoint: the caller says so later
        return config
    saved = yaml.safe_load(path.read_text()) or {}
    theirs = ((saved.get("encoders") or {}).get("image") or {})
    if not theirs.get("object_tag_names"):
        return config
    config = copy.deepcopy(config)
    config.encoders.image.object_tag_names = list(theirs["object_tag_names"])
    if not config.encoders.image.object_tags:
        config.encoders.image.object_tags = int(theirs.get("object_tags") or 0)
        config.encoders.image.object_tag_threshold = float(theirs.get("object_tag_threshold", 0.5))
    return config
