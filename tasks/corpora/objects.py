"""Object captions: stamps and clip art composited 1-3 to an image onto photos and textures, captioned by name.

An image holds 1-3 named objects (`OBJECT_COUNT_WEIGHTS`) of `object_sources.object_inventory`, each a
different name, scaled to `OBJECT_SCALE` of the image side (smaller when there are more), perhaps mirrored and
tilted, placed so that no two overlap by more than `MAX_OVERLAP` of the smaller, and alpha-composited (an
image with no transparency loses the near-white background around it) onto a background: a random square crop
of a scene photo, a smooth noise texture, a two-colour gradient or a plain colour (`BACKGROUND_WEIGHTS`).
The caption is written from the names and the layout, one of several phrasings (`captions`): "an owl and a
garbage truck", "... on a beach" (photos with a place phrase, plain colours: "on a grey background"), "an owl
on the left and a garbage truck on the right", "an owl in the top left". Objects are listed left to right.
Nothing else is claimed: no colour or count that the name does not carry.

Held out by name: a stable hash of each head noun (`object_names.head_noun`, by `word_group`) puts 90 % of them in
`seen`, 5 % in `unseen-dev` and 5 % in `unseen-test`, and a name goes with the most held-out head noun among its
words (`name_groups`: "dog" held out takes "bored dog" and "dog head" with it), so no word of a held-out head
noun is ever in a training caption. The words of place phrases are never held out. The splits:
- `train`, `eval`, `test`: seen objects only, newly composited for each split (their streams differ);
- `heldout`: unseen-dev objects only, for development choices about unseen objects;
- `test_unseen`: unseen-test objects only, on which no choice is made.
Backgrounds are shared by all splits: it is the objects that are held out.

The corpus is an imagefolder per split (`OUT/SPLIT/`: JPEG + `metadata.jsonl` rows `{"file_name", "text",
"captions", "objects", "background"}`; each object row holds its name, phrase, group, source, licence, style,
image file and box), plus `OUT/names.json` (the names of each group). Each image draws from its own stream seeded by
`(seed, split, index)`, so a corpus is deterministic for a seed and a split does not depend on the others' sizes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from tasks.corpora.english import indefinite_article
from tasks.corpora.object_names import head_noun, name_key
from tasks.corpora.object_sources import (
    PLACES,
    NamedObject,
    PhotoBackground,
    object_inventory,
    photo_backgrounds,
    sources_dir,
)

IMAGE_SIZE = 224
MIN_IMAGE_SIZE = 64
JPEG_QUALITY = 90
OBJECT_COUNT_WEIGHTS = {1: 0.6, 2: 0.3, 3: 0.1}
OBJECT_SCALE = {1: (0.4, 0.85), 2: (0.3, 0.55), 3: (0.25, 0.42)}  # longer side / image side, by object count
MAX_OVERLAP = 0.1  # of the smaller box's area
PLACEMENT_TRIES = 40  # positions tried per object before all objects shrink
SHRINK = 0.85
FLIP_PROBABILITY = 0.5
ROTATION_PROBABILITY = 0.3
MAX_ROTATION_DEG = 15.0
BACKGROUND_WEIGHTS = {"photo": 0.6, "texture": 0.15, "gradient": 0.15, "plain": 0.1}
PHOTO_CROP_SCALE = (0.55, 1.0)  # side of the square crop / shorter side of the photo
PLAIN_COLOURS = {  # RGB; named in captions ("on a grey background")
    "white": (245, 245, 245), "grey": (128, 128, 128), "black": (20, 20, 20), "blue": (40, 80, 200),
    "green": (40, 150, 60), "yellow": (240, 220, 60), "pink": (240, 160, 190), "beige": (225, 210, 175),
}
TEXTURE_CELLS = 8
TEXTURE_AMPLITUDE = 40.0  # +- RGB of the low-frequency noise texture
WHITE_THRESHOLD = 40  # flood-fill tolerance when cutting an opaque image out of its white surround
PHOTO_FLATNESS = 0.3  # a stamp whose neighbouring pixels are equal less often than this is a cut-out photo
TILE_CACHE = 512  # decoded object images kept in memory
UNSEEN_DEV_FRACTION = 0.05
UNSEEN_TEST_FRACTION = 0.05
GROUPS = ("seen", "unseen-dev", "unseen-test")
SPLITS = {"train": "seen", "eval": "seen", "test": "seen", "heldout": "unseen-dev", "test_unseen": "unseen-test"}
METADATA = "metadata.jsonl"
NAMES_FILE = "names.json"


def word_group(word: str) -> str:
    """"seen", "unseen-dev" or "unseen-test" for a head noun, by a stable hash (the same on every machine)."""
    digest = hashlib.sha256(b"objects\0" + word.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < UNSEEN_TEST_FRACTION:
        return "unseen-test"
    return "unseen-dev" if u < UNSEEN_TEST_FRACTION + UNSEEN_DEV_FRACTION else "seen"


def name_groups(objects: Sequence[NamedObject]) -> dict[str, str]:
    """Name key -> group. Head nouns (`head_noun`) are held out by `word_group`, except the words of
    place phrases, which every split's captions use; a name is held out when any of its words is a held-out
    head noun ("dog" holds out "bored dog" and "dog head" too), in unseen-test before unseen-dev."""
    phrases = [*PLACES.values(), *PLAIN_COLOURS, "background"]
    protected = {w for phrase in phrases if phrase for w in name_key(phrase).split()}
    heads = {head_noun(obj.name) for obj in objects} - protected
    held = {w: g for w in heads if (g := word_group(w)) != "seen"}
    groups = {}
    for obj in objects:
        found = {held[w] for w in obj.key.split() if w in held}
        groups[obj.key] = "unseen-test" if "unseen-test" in found else "unseen-dev" if found else "seen"
    return groups


# ---- object tiles --------------------------------------------------------------------------------------------


def cut_out(image: Image.Image) -> Image.Image:
    """RGBA cropped to its visible pixels; an image without transparency loses the near-white surround that
    touches its border (a flood fill from the corners)."""
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] == 255:
        marked = rgba.convert("RGB")
        key = (255, 0, 254)  # a colour that marks the filled area
        for corner in ((0, 0), (marked.width - 1, 0), (0, marked.height - 1), (marked.width - 1, marked.height - 1)):
            if min(marked.getpixel(corner)) >= 255 - WHITE_THRESHOLD:
                ImageDraw.floodfill(marked, corner, key, thresh=WHITE_THRESHOLD)
        filled = np.all(np.asarray(marked) == key, axis=-1)
        alpha = np.where(filled, 0, 255).astype(np.uint8)
        rgba.putalpha(Image.fromarray(alpha))
    box = rgba.getchannel("A").point(lambda a: 255 if a > 16 else 0).getbbox()
    return rgba.crop(box) if box else rgba


def looks_like_photo(tile: Image.Image) -> bool:
    """A cut-out photo rather than a drawing: neighbouring opaque pixels rarely share a colour (a guess)."""
    pixels = np.asarray(tile).astype(np.int16)  # (H, W, 4)
    opaque = (pixels[:, 1:, 3] > 250) & (pixels[:, :-1, 3] > 250)
    same = np.abs(pixels[:, 1:, :3] - pixels[:, :-1, :3]).max(axis=-1) <= 1
    return bool(opaque.any()) and float(same[opaque].mean()) < PHOTO_FLATNESS


@lru_cache(maxsize=TILE_CACHE)
def load_tile(path: str, max_side: int) -> Image.Image:
    """An object image as an RGBA tile (`cut_out`) no longer than `max_side`."""
    with Image.open(path) as image:
        tile = cut_out(image)
    tile.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return tile


# ---- composition ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacedObject:
    name: str
    phrase: str  # with its article: "an owl"
    source: str
    licence: str
    style: str  # "photo" (a cut-out photo) or "drawing"
    image: str  # the object's image file, relative to the sources folder
    x: float  # box centre, as a fraction of the image width (0 = left)
    y: float  # box centre, as a fraction of the image height (0 = top)
    width: float  # box width, as a fraction of the image width
    height: float
    flipped: bool
    rotation_deg: float  # counter-clockwise

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.x - self.width / 2, self.y - self.height / 2, self.x + self.width / 2, self.y + self.height / 2


@dataclass(frozen=True)
class Background:
    kind: str  # one of BACKGROUND_WEIGHTS
    name: str  # the photo's file stem, or the plain colour's name; "" for textures and gradients
    place: str | None  # the caption's place phrase: "on a beach", "on a grey background"; None for no phrase
    source: str  # "scratch", "tuxpaint-templates" or "generated"
    licence: str
    colours: tuple[tuple[int, int, int], ...] = ()  # RGB of generated backgrounds


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Area of the intersection of two boxes over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return max(w, 0) * max(h, 0) / smaller if smaller > 0 else 0.0


def _transformed(rng: np.random.Generator, tile: Image.Image) -> tuple[Image.Image, bool, float]:
    flipped = bool(rng.random() < FLIP_PROBABILITY)
    rotation = float(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG)) if rng.random() < ROTATION_PROBABILITY else 0.0
    tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flipped else tile
    tile = tile.rotate(rotation, resample=Image.Resampling.BICUBIC, expand=True) if rotation else tile
    return tile, flipped, rotation


def _place(rng: np.random.Generator, tiles: list[Image.Image], size: int) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (left, top, width, height), one per tile, overlapping by at most MAX_OVERLAP."""
    low, high = OBJECT_SCALE[len(tiles)]
    scales = [float(rng.uniform(low, high)) for _ in tiles]
    while True:
        boxes: list[tuple[int, int, int, int]] = []
        for tile, scale in zip(tiles, scales):
            factor = scale * size / max(tile.size)
            w, h = max(1, round(tile.width * factor)), max(1, round(tile.height * factor))
            for _ in range(PLACEMENT_TRIES):
                left, top = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
                box = (left, top, left + w, top + h)
                if all(_overlap(box, (b[0], b[1], b[0] + b[2], b[1] + b[3])) <= MAX_OVERLAP for b in boxes):
                    boxes.append((left, top, w, h))
                    break
            else:
                break
        if len(boxes) == len(tiles):
            return boxes
        scales = [s * SHRINK for s in scales]  # they did not fit: shrink them all and try again


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def sample_background(
    rng: np.random.Generator, photos: Sequence[PhotoBackground], size: int
) -> tuple[Background, Image.Image]:
    """A background of a random kind and its `size` x `size` RGB image."""
    kinds = [k for k in BACKGROUND_WEIGHTS if photos or k != "photo"]
    weights = np.array([BACKGROUND_WEIGHTS[k] for k in kinds])
    kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
    if kind == "photo":
        photo = photos[rng.integers(len(photos))]
        full = _photo(str(photo.path))
        side = round(min(full.size) * rng.uniform(*PHOTO_CROP_SCALE))
        left, top = int(rng.integers(0, full.width - side + 1)), int(rng.integers(0, full.height - side + 1))
        image = full.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
        return Background("photo", photo.name, photo.place, photo.source, photo.licence), image
    if kind == "plain":
        name = list(PLAIN_COLOURS)[rng.integers(len(PLAIN_COLOURS))]
        colour = PLAIN_COLOURS[name]
        place = f"on {indefinite_article(name)} {name} background"
        return Background("plain", name, place, "generated", "", (colour,)), Image.new("RGB", (size, size), colour)
    first = np.array(_random_colour(rng), dtype=np.float32)
    if kind == "gradient":
        second = np.array(_random_colour(rng), dtype=np.float32)
        angle = float(rng.uniform(0, 2 * np.pi))
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
        t = (xs - 0.5) * np.cos(angle) + (ys - 0.5) * np.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        pixels = first + t[:, :, None] * (second - first)  # (H, W, 3)
        colours = (tuple(int(c) for c in first), tuple(int(c) for c in second))
    else:
        coarse = rng.uniform(-1, 1, (TEXTURE_CELLS, TEXTURE_CELLS, 3)).astype(np.float32)
        smooth = np.stack([np.asarray(Image.fromarray(coarse[..., c]).resize((size, size), Image.Resampling.BICUBIC))
                           for c in range(3)], axis=-1)
        pixels = first + TEXTURE_AMPLITUDE * smooth  # (H, W, 3)
        colours = (tuple(int(c) for c in first),)
    image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
    return Background(kind, "", None, "generated", "", colours), image


@lru_cache(maxsize=None)
def _photo(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def compose(rng: np.random.Generator, objects: Sequence[NamedObject], photos: Sequence[PhotoBackground],
            size: int = IMAGE_SIZE, root: Path | None = None) -> tuple[Image.Image, list[PlacedObject], Background]:
    """One image of `objects` (distinct names), each drawn from its images, on a random background."""
    root = Path(root) if root is not None else sources_dir()
    picks = [obj.images[rng.integers(len(obj.images))] for obj in objects]
    tiles = [load_tile(str(image.path), size) for image in picks]
    transformed = [_transformed(rng, tile) for tile in tiles]
    boxes = _place(rng, [t for t, _, _ in transformed], size)
    background, canvas = sample_background(rng, photos, size)
    placed = []
    for obj, image, tile, (turned, flipped, rotation), box in zip(objects, picks, tiles, transformed, boxes):
        left, top, w, h = box
        sized = turned.resize((w, h), Image.Resampling.LANCZOS)
        canvas.paste(sized, (left, top), sized)
        is_photo = image.source == "tuxpaint-stamps" and looks_like_photo(tile)  # the clip art is all drawn
        style = "photo" if is_photo else "drawing"
        placed.append(PlacedObject(
            obj.name, obj.phrase, image.source, image.licence, style,
            image.path.relative_to(root).as_posix() if image.path.is_relative_to(root) else str(image.path),
            (left + w / 2) / size, (top + h / 2) / size, w / size, h / size, flipped, rotation,
        ))
    return canvas, placed, background


# ---- captions ------------------------------------------------------------------------------------------------


def _join(phrases: Sequence[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def where(obj: PlacedObject) -> str:
    """Where the object's centre lies in a 3 x 3 grid: "in the top left", "on the right", "in the centre"."""
    col, row = min(int(obj.x * 3), 2), min(int(obj.y * 3), 2)
    vertical, horizontal = ("top", "", "bottom")[row], ("left", "", "right")[col]
    if vertical and horizontal:
        return f"in the {vertical} {horizontal}"
    if horizontal:
        return f"on the {horizontal}"
    return f"at the {vertical}" if vertical else "in the centre"


def captions(objects: Sequence[PlacedObject], background: Background) -> list[str]:
    """Every phrasing true of the image, objects listed left to right; each names every object once."""
    ordered = sorted(objects, key=lambda o: o.x)
    listed = _join([o.phrase for o in ordered])
    out = [listed, f"a picture of {listed}"]
    if background.place:
        out += [f"{listed} {background.place}", f"a picture of {listed} {background.place}"]
    places = [where(o) for o in ordered]
    if len(set(places)) == len(places):
        out.append(_join([f"{o.phrase} {p}" for o, p in zip(ordered, places)]))
    if len(ordered) == 2:
        a, b = ordered
        if a.box[2] <= b.box[0]:
            out += [f"{a.phrase} on the left and {b.phrase} on the right", f"{a.phrase} to the left of {b.phrase}"]
        top, bottom = sorted(ordered, key=lambda o: o.y)
        if top.box[3] <= bottom.box[1]:
            out.append(f"{top.phrase} above {bottom.phrase}")
    return out


# ---- corpus --------------------------------------------------------------------------------------------------


def grouped_objects(objects: Sequence[NamedObject]) -> dict[str, list[NamedObject]]:
    """The objects of each name group (`GROUPS`, see `name_groups`), in inventory order."""
    group_of = name_groups(objects)
    groups: dict[str, list[NamedObject]] = {g: [] for g in GROUPS}
    for obj in objects:
        groups[group_of[obj.key]].append(obj)
    return groups


def _draw_objects(rng: np.random.Generator, pool: Sequence[NamedObject]) -> list[NamedObject]:
    counts = [n for n in OBJECT_COUNT_WEIGHTS if n <= len(pool)]
    weights = np.array([OBJECT_COUNT_WEIGHTS[n] for n in counts])
    n = counts[rng.choice(len(counts), p=weights / weights.sum())]
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]


def generate_objects_corpus(out: Path, counts: dict[str, int], seed: int = 0, size: int = IMAGE_SIZE,
                            root: Path | None = None) -> dict:
    """Write the imagefolders of `counts` (split -> images; splits of `SPLITS`) under `out`; returns a summary:
    images per split, names per group, objects' images per source, and photo backgrounds."""
    from tqdm.auto import tqdm

    from tasks.corpora.folders import clear_split

    unknown = set(counts) - set(SPLITS)
    if unknown or any(n < 0 for n in counts.values()) or not any(counts.values()):
        raise ValueError(f"counts must be >= 0 for splits of {list(SPLITS)}, some > 0; got {counts}")
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"image size must be at least {MIN_IMAGE_SIZE} px, got {size}")
    objects = object_inventory(root)
    root = Path(root) if root is not None else sources_dir()
    groups = grouped_objects(objects)
    photos = photo_backgrounds(root)
    empty = [SPLITS[s] for s, n in counts.items() if n and not groups[SPLITS[s]]]
    if empty:
        raise ValueError(f"no objects in the name group(s) {sorted(set(empty))} under {root}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = {g: [o.name for o in objs] for g, objs in groups.items()}
    (out / NAMES_FILE).write_text(json.dumps(names, indent=1, ensure_ascii=False) + "\n")
    with tqdm(total=sum(counts.values()), desc="objects", unit="image") as progress:
        for split_index, split in enumerate(SPLITS):
            if split not in counts:
                continue
            folder = out / split
            clear_split(folder, ".jpg")
            folder.mkdir(parents=True)
            with open(folder / METADATA, "w") as metadata:
                for i in range(counts[split]):
                    rng = np.random.default_rng([seed, split_index, i])
                    drawn = _draw_objects(rng, groups[SPLITS[split]])
                    image, placed, background = compose(rng, drawn, photos, size, root)
                    phrasings = captions(placed, background)
                    file_name = f"{i:06d}.jpg"
                    image.save(folder / file_name, quality=JPEG_QUALITY)
                    row = {
                        "file_name": file_name,
                        "text": phrasings[rng.integers(len(phrasings))],
                        "captions": phrasings,
                        "objects": [{**asdict(o), "group": SPLITS[split]} for o in sorted(placed, key=lambda o: o.x)],
                        "background": asdict(background),
                    }
                    metadata.write(json.dumps(row, ensure_ascii=False) + "\n")
                    progress.update(1)
    sources: dict[str, int] = {}
    for obj in objects:
        for image in obj.images:
            sources[image.source] = sources.get(image.source, 0) + 1
    return {"images": dict(counts), "names": {g: len(objs) for g, objs in groups.items()},
            "object_images": sources, "photo_backgrounds": len(photos)}
