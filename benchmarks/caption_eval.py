"""Captioning quality and speed of a checkpoint on the offline caption corpora, and a picture of it.

    .venv/bin/python benchmarks/caption_eval.py --model runs/caption/best --scenes data/scenes --emoji data/emoji

For each evaluation set (scenes `eval` and `heldout` = unseen colour/shape combinations; emoji `eval` = seen
emoji newly drawn and `heldout` = unseen emoji; or any imagefolder given with `--folder NAME=DIR`) prints
BLEU-4 and CIDEr-D against every reference phrasing of the row (`captions`, else `text`), and
- scenes: the share of captions that name exactly the scene's (count, colour, shape) groups
  (`tasks.corpora.scenes.caption_is_correct`; the issue's goal: >= 95 % on eval, >= 80 % on held-out combos),
  and that share among scenes of one, two and three or more colour/shape groups; and the share of scenes
  with each kind of mistake (`error_count`, `error_repeated`, ...: `tasks.corpora.scenes.caption_error`);
- emoji: the share of drawn emoji whose name (as the corpus phrases it) appears in the caption;
- objects (`--objects DIR`, `multimodal data objects`: `eval` = seen objects newly composited, `heldout` = unseen
  objects; with `--test`, also `test` and `test_unseen`, read once for a model's card): the share of composited
  objects the caption names (`tasks.corpora.object_names.object_named`) and of images with every object named,
  each with its 95 % bootstrap interval over images; on unseen objects also `imagenet_ceiling`, the share whose
  name an ImageNet class name contains (the most that copying a right ImageNet tag can name).
`--no-tags` / `--no-object-tags` caption without the tags / without the object head's names (ablations);
`--tag-words everyday` words the ImageNet tags as everyday words (dog, not malamute).
`--dev-photos` captions the 7 darknet photographs (`tasks.corpora.object_sources.dev_photos`) and counts those whose
caption names the main object. Then the captioning latency per image, one image at a time and batched, and a PNG grid of held-out images
with their generated captions (default `benchmarks/results/caption_grid.png`). `--json FILE` keeps it all.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID_FILE = ROOT / "benchmarks" / "results" / "caption_grid.png"
GRID_COLUMNS = 4
WRAP_CHARS = 30  # caption characters per line under a grid image


@dataclass
class EvalSet:
    name: str  # e.g. "scenes/heldout"
    folder: Path
    kind: str  # "scenes", "emoji", "objects" or "folder": which extra measure applies
    rows: list[dict] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)


def read_rows(folder: Path, limit: int) -> list[dict]:
    path = folder / "metadata.jsonl"
    if not path.is_file():
        raise SystemExit(f"caption_eval: '{folder}' has no metadata.jsonl (an imagefolder written by `multimodal data`)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def eval_sets(args: argparse.Namespace) -> list[EvalSet]:
    sets = []
    for kind, root in (("scenes", args.scenes), ("emoji", args.emoji)):
        if root:
            sets += [EvalSet(f"{kind}/{split}", Path(root) / split, kind) for split in ("eval", "heldout")
                     if (Path(root) / split / "metadata.jsonl").is_file()]
    if args.objects:
        splits = ("eval", "heldout", *(("test", "test_unseen") if args.test else ()))
        sets += [EvalSet(f"objects/{split}", Path(args.objects) / split, "objects") for split in splits
                 if (Path(args.objects) / split / "metadata.jsonl").is_file()]
    for item in args.folder or []:
        name, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"caption_eval: --folder takes NAME=DIR, got {item!r}")
        sets.append(EvalSet(name, Path(folder), "folder"))
    if args.only:
        unknown = set(args.only) - {s.name for s in sets}
        if unknown:
            raise SystemExit(f"caption_eval: --only {sorted(unknown)}: no such set (have: {[s.name for s in sets]})")
        sets = [s for s in sets if s.name in args.only]
    if not sets:
        raise SystemExit("caption_eval: give --scenes DIR, --emoji DIR, --objects DIR or --folder NAME=DIR")
    for s in sets:
        s.rows = read_rows(s.folder, args.max_images)
    return sets


def references(row: dict) -> list[str]:
    return list(row.get("captions") or [row["text"]])


def score(s: EvalSet) -> dict[str, float]:
    from tasks.metrics import bleu4, cider_d

    refs = [references(r) for r in s.rows]
    out = {"n_images": len(s.rows), "bleu4": bleu4(refs, s.hypotheses)}
    out["cider_d"] = cider_d(refs, s.hypotheses) if len(refs) >= 2 else float("nan")
    if s.kind == "scenes":
        from tasks.corpora.scenes import CAPTION_ERRORS, caption_error, scene_counts

        errors = [caption_error(h, r["objects"]) for h, r in zip(s.hypotheses, s.rows)]
        correct = [e is None for e in errors]
        out["scenes_correct"] = sum(correct) / len(s.rows)
        groups = [min(len(scene_counts(r["objects"])), 3) for r in s.rows]  # its (count, colour, shape) groups
        for n in sorted(set(groups)):  # where it fails: the share correct by the number of colour/shape groups
            out[f"correct_{n}{'+' if n == 3 else ''}_groups"] = (
                sum(c for c, g in zip(correct, groups) if g == n) / groups.count(n))
        for kind in CAPTION_ERRORS:  # how it fails: the share of all scenes with each kind of mistake
            out[f"error_{kind}"] = errors.count(kind) / len(s.rows)
    elif s.kind == "emoji":
        from tasks.corpora.emoji import emoji_phrase

        named = [emoji_phrase(o["name"], o.get("subgroup", "")).lower() in h.lower()
                 for h, r in zip(s.hypotheses, s.rows) for o in r["objects"]]
        out["emoji_named"] = sum(named) / max(len(named), 1)
        held = [emoji_phrase(o["name"], o.get("subgroup", "")).lower() in h.lower()
                for h, r in zip(s.hypotheses, s.rows) for o in r["objects"] if o.get("held_out")]
        if held:
            out["held_out_emoji_named"] = sum(held) / len(held)
    elif s.kind == "objects":
        out.update(objects_named(s.rows, s.hypotheses))
        if s.name.endswith(("heldout", "unseen")):
            out["imagenet_ceiling"] = imagenet_ceiling(s.rows)
    return out


def imagenet_ceiling(rows: list[dict]) -> float:
    """The share of the objects whose name some ImageNet-1k class name (any synonym) contains: the most an unseen
    object can be named by copying a correct ImageNet tag (`object_named`: "owl" is in "great grey owl")."""
    from timm.data import ImageNetInfo

    from tasks.corpora.object_names import object_named

    info = ImageNetInfo()
    synonyms = [name.strip() for i in range(info.num_classes()) for name in info.index_to_description(i).split(",")]
    names = [o["name"] for r in rows for o in r["objects"]]
    coverable = {n for n in set(names) if any(object_named(s, n) for s in synonyms)}
    return sum(n in coverable for n in names) / max(len(names), 1)


def share_interval(flags: list[bool], resamples: int = 1000) -> tuple[float, float, float]:
    """(share, low, high): the share of True and its 95 % percentile-bootstrap interval over the items."""
    import numpy as np

    values = np.asarray(flags, dtype=float)
    draws = np.random.default_rng(0).choice(values, size=(resamples, len(values))).mean(axis=1)
    return float(values.mean()), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def objects_named(rows: list[dict], hypotheses: list[str]) -> dict[str, float]:
    """The share of composited objects the captions name, and of images with all of theirs named, with intervals.
    An image's objects are resampled together (they share its caption)."""
    from tasks.corpora.object_names import object_named

    per_image = [[object_named(h, o["name"]) for o in r["objects"]] for h, r in zip(hypotheses, rows)]
    out = {}
    for key, flags in (("objects_named", [f for image in per_image for f in image]),
                       ("images_all_named", [all(image) for image in per_image])):
        out[key], out[f"{key}_low"], out[f"{key}_high"] = share_interval(flags)
    return out


def dev_photos_named(model, batch_size: int, num_beams: int) -> dict:
    """Captions of the darknet photos, and how many name their main object."""
    from multimodal.caption import caption
    from tasks.corpora.object_names import object_named
    from tasks.corpora.object_sources import dev_photos

    photos = dev_photos()
    captions = [c.text for c in caption(model, [p.path for p in photos], batch_size=batch_size, num_beams=num_beams,
                                        progress=False)]
    rows = [{"file": str(p.path), "caption": c, "reference": p.caption,
             "main_named": any(object_named(c, name) for name in p.main)} for p, c in zip(photos, captions)]
    return {"main_named": sum(r["main_named"] for r in rows), "photos": len(rows), "examples": rows}


def latency(model, files: list[Path], batch_size: int, num_beams: int) -> dict[str, float]:
    """Wall milliseconds per image, one image per call and `batch_size` per call (after one warm-up call)."""
    from multimodal.caption import caption

    list(caption(model, files[:1], batch_size=1, num_beams=num_beams, progress=False))  # warm-up
    t = time.perf_counter()
    for f in files:
        list(caption(model, [f], batch_size=1, num_beams=num_beams, progress=False))
    one = (time.perf_counter() - t) / len(files)
    t = time.perf_counter()
    list(caption(model, files, batch_size=batch_size, num_beams=num_beams, progress=False))
    batched = (time.perf_counter() - t) / len(files)
    return {"images": len(files), "ms_per_image_unbatched": 1000 * one, "ms_per_image_batched": 1000 * batched,
            "batch_size": batch_size}


def write_grid(items: list[tuple[Path, str, str]], path: Path) -> None:
    """A grid of images, each with its generated caption (black) over its reference (grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    rows = -(-len(items) // GRID_COLUMNS)
    fig, axes = plt.subplots(rows, GRID_COLUMNS, figsize=(3.2 * GRID_COLUMNS, 4.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (file, hypothesis, reference) in zip(axes.flat, items):
        ax.imshow(Image.open(file).convert("RGB"))
        ax.set_title("\n".join(textwrap.wrap(hypothesis or "(empty)", WRAP_CHARS)), fontsize=9, loc="left")
        ax.text(0, -0.02, "\n".join(textwrap.wrap("ref: " + reference, WRAP_CHARS + 8)), transform=ax.transAxes,
                va="top", fontsize=7.5, color="0.45")
    fig.tight_layout(h_pad=2.5)  # room for a four-line caption under the reference above it
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours: the flat scenes and text look the same and the file is ~2.7x smaller (it is kept in the repo)
    Image.open(buffer).convert("RGB").quantize(256).save(path, optimize=True)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint dir")
    p.add_argument("--scenes", help="scenes corpus root (its eval/ and heldout/ splits)")
    p.add_argument("--emoji", help="emoji corpus root (its eval/ and heldout/ splits)")
    p.add_argument("--objects", help="object corpus root (its eval/ and heldout/ splits; --test adds the test splits)")
    p.add_argument("--test", action="store_true", help="with --objects: also test/ and test_unseen/ (for a card)")
    p.add_argument("--dev-photos", action="store_true", help="caption the 7 darknet photographs too")
    p.add_argument("--folder", action="append", metavar="NAME=DIR", help="any imagefolder with metadata.jsonl")
    p.add_argument("--only", action="append", metavar="SET",
                   help="score only this set, e.g. objects/test (repeatable; default: every set given)")
    p.add_argument("--max-images", type=int, default=200, help="images per set; 0 = all (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--beams", type=int, default=1)
    p.add_argument("--latency-images", type=int, default=16, help="images timed for latency; 0 = skip")
    p.add_argument("--grid", default=str(GRID_FILE), help="PNG of held-out images and captions ('' = none)")
    p.add_argument("--grid-images", type=int, default=8, help="images per held-out set in the grid")
    p.add_argument("--no-tags", action="store_true",
                   help="caption without any tags in the prompt (ImageNet's and the object head's), for a model "
                        "trained with them (an inference-time ablation: how much the captions lean on the tags)")
    p.add_argument("--no-object-tags", action="store_true",
                   help="caption without the object head's names, keeping ImageNet's tags (the head's share)")
    p.add_argument("--tag-words", choices=["imagenet", "everyday"],
                   help="word the ImageNet tags as class names or as everyday words (encoders/imagenet_basic.py); "
                        "default: the model's encoders.image.tag_words")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import multimodal as mm
    from multimodal.caption import caption

    sets = eval_sets(args)
    model = mm.load(args.model)
    if (args.no_tags or args.no_object_tags) and "image" in model.encoders:
        image = model.encoders["image"].config  # with neither, the processor adds no tag text (multimodal/processor.py)
        image.object_tags = 0
        image.tags = 0 if args.no_tags else image.tags
    if args.tag_words and "image" in model.encoders:
        model.encoders["image"].config.tag_words = args.tag_words
    results: dict = {"model": str(args.model), "no_tags": args.no_tags, "no_object_tags": args.no_object_tags,
                     "tag_words": args.tag_words or "the model's", "sets": {}}
    print(f"{'set':<18} {'images':>6} {'BLEU-4':>7} {'CIDEr-D':>8}  extra")
    for s in sets:
        files = [s.folder / r["file_name"] for r in s.rows]
        captions = list(caption(model, files, batch_size=args.batch_size, num_beams=args.beams, progress=False))
        failed = [c for c in captions if c.error]
        if failed:
            raise SystemExit(f"caption_eval: {len(failed)} image(s) of {s.name} unreadable, e.g. {failed[0].error}")
        s.hypotheses = [c.text for c in captions]
        metrics = score(s)
        results["sets"][s.name] = {**metrics, "examples": [
            {"file": str(f), "caption": h, "reference": r["text"]} for f, h, r in zip(files, s.hypotheses, s.rows)]}
        extra = "  ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k not in ("n_images", "bleu4", "cider_d"))
        print(f"{s.name:<18} {metrics['n_images']:>6} {metrics['bleu4']:>7.3f} {metrics['cider_d']:>8.3f}  {extra}")
    if args.dev_photos:
        results["dev_photos"] = dev = dev_photos_named(model, args.batch_size, args.beams)
        for row in dev["examples"]:
            print(f"  {Path(row['file']).stem:<8} {'named ' if row['main_named'] else 'missed'}  {row['caption']}")
        print(f"dev photos: {dev['main_named']} of {dev['photos']} captions name the main object")
    if args.latency_images:
        timed = [sets[0].folder / r["file_name"] for r in sets[0].rows[: args.latency_images]]
        results["latency"] = latency(model, timed, args.batch_size, args.beams)
        lat = results["latency"]
        print(f"latency: {lat['ms_per_image_unbatched']:.0f} ms/image one at a time, "
              f"{lat['ms_per_image_batched']:.0f} ms/image in batches of {args.batch_size} ({lat['images']} images)")
    if args.grid:
        shown = [s for s in sets if s.name.endswith(("heldout", "unseen"))] or sets
        items = [(s.folder / r["file_name"], h, r["text"])
                 for s in shown for r, h in list(zip(s.rows, s.hypotheses))[: args.grid_images]]
        items += [(Path(r["file"]), r["caption"], r["reference"]) for r in results.get("dev_photos", {}).get("examples", [])]
        write_grid(items, Path(args.grid))
        results["grid"] = str(args.grid)
        print(f"grid: {args.grid}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return results


if __name__ == "__main__":
    main()
