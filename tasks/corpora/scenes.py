"""Procedurally drawn scenes with captions generated from the scene: exact labels for captioning and grounding.

A scene is 1-4 coloured shapes on a background (plain colour, gradient or noise texture, plus optional pixel
noise). Objects sit in distinct cells of a `GRID` x `GRID` grid, so they never overlap, and every object colour
is checked for contrast against the background, so every object stays visible. Captions are written from the
scene itself, several ways, and are true of it: every caption names each (count, colour, shape) group exactly
once, and spatial words are used only where the grid makes them unambiguous.

Compositional hold-out: the (colour, shape) pairs in `HELD_OUT_COMBOS` never appear in train or eval scenes,
and every held-out scene contains at least one, so the `heldout` split measures whether a model composes
colours and shapes it has only seen apart.

The corpus is an imagefolder (`OUT/{train,eval,heldout}/`: PNG + `metadata.jsonl` rows `{"file_name", "text",
"captions", "objects"}`). Each image draws its scene and its rendering from its own stream seeded by
`(seed, split, index)`, so a corpus is deterministic for a seed and a split does not depend on the others' sizes.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {  # object colours, RGB
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 225),
    "yellow": (245, 225, 20),
    "purple": (140, 40, 175),
    "orange": (245, 135, 20),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond")
SIZES = {"small": 0.5, "large": 0.85}  # object diameter as a fraction of its grid cell
BACKGROUNDS = {  # background colours, RGB; names never collide with object colours, so captions parse cleanly
    "grey": (128, 128, 128),
    "silver": (195, 195, 195),
    "beige": (225, 210, 175),
    "navy": (20, 30, 85),
    "teal": (0, 110, 115),
    "brown": (115, 75, 40),
}
BACKGROUND_KINDS = ("plain", "gradient", "texture")
HELD_OUT_COMBOS = frozenset(
    {("purple", "triangle"), ("yellow", "square"), ("green", "star"), ("orange", "circle"), ("white", "diamond")}
)
ALL_COMBOS = frozenset(itertools.product(COLOURS, SHAPES))
TRAIN_COMBOS = ALL_COMBOS - HELD_OUT_COMBOS
GRID = 3  # cells per side; positions: columns left/centre/right, rows top/middle/bottom
MAX_OBJECTS = 4
REPEAT_PROBABILITY = 0.35  # chance that a new object copies an earlier object's colour and shape (counts > 1)
MIN_CONTRAST = 110.0  # least RGB distance between an object colour and any background colour it may sit on
TEXTURE_AMPLITUDE = 20.0  # +- RGB of the low-frequency noise texture
TEXTURE_CELLS = 8  # the texture's coarse grid, upsampled to the image
PIXEL_NOISE_STD = (3.0, 10.0)  # per-pixel Gaussian noise, when a scene has any
PIXEL_NOISE_PROBABILITY = 0.5
STAR_INNER_RATIO = 0.45
IMAGE_SIZE = 224
SPLITS = ("train", "eval", "heldout")
OBJECT_ORDERS = ("random", "reading")  # how captions order a scene's groups; see `captions`
METADATA = "metadata.jsonl"
NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four"}
WORD_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4}

Combo = tuple[str, str]  # (colour, shape)


@dataclass(frozen=True)
class SceneObject:
    """One shape; (x, y) is its centre as a fraction of the image width and height (0 = left / top)."""

    colour: str
    shape: str
    size: str
    x: float
    y: float

    @property
    def cell(self) -> tuple[int, int]:
        """(column, row) of the grid cell holding the object."""
        return int(self.x * GRID), int(self.y * GRID)


@dataclass(frozen=True)
class Background:
    kind: str  # one of BACKGROUND_KINDS
    colours: tuple[str, ...]  # names in BACKGROUNDS: one, or two for a gradient
    vertical: bool = True  # gradient direction
    pixel_noise_std: float = 0.0


@dataclass(frozen=True)
class Scene:
    objects: list[SceneObject]
    background: Background = field(default_factory=lambda: Background("plain", ("grey",)))


def _contrast(rgb: Sequence[float], background: Background) -> float:
    """Least RGB distance from `rgb` to any colour the background takes (gradients: along the whole ramp)."""
    ends = [np.array(BACKGROUNDS[name], dtype=float) for name in background.colours]
    ramp = [ends[0] + t * (ends[-1] - ends[0]) for t in np.linspace(0, 1, 11)]
    margin = TEXTURE_AMPLITUDE if background.kind == "texture" else 0.0
    return min(float(np.linalg.norm(np.array(rgb, dtype=float) - c)) for c in ramp) - margin


def _sample_background(rng: np.random.Generator) -> Background:
    kind = BACKGROUND_KINDS[rng.integers(len(BACKGROUND_KINDS))]
    names = list(BACKGROUNDS)
    picks = rng.choice(len(names), size=2 if kind == "gradient" else 1, replace=False)
    noise = float(rng.uniform(*PIXEL_NOISE_STD)) if rng.random() < PIXEL_NOISE_PROBABILITY else 0.0
    return Background(kind, tuple(names[i] for i in picks), bool(rng.random() < 0.5), noise)


def sample_scene(
    rng: np.random.Generator, combos: Iterable[Combo] | None = None, must_include: Iterable[Combo] | None = None
) -> Scene:
    """A random scene whose objects use only `combos` (default: `TRAIN_COMBOS`), all visible on the background.

    `must_include`: the first object is one of these combos (held-out scenes pass `HELD_OUT_COMBOS`).
    """
    allowed_all = sorted(TRAIN_COMBOS if combos is None else set(combos))
    required_all = sorted(must_include) if must_include is not None else []
    while True:  # redraw the background until the combos it must show are visible on it
        background = _sample_background(rng)
        visible = [c for c in allowed_all if _contrast(COLOURS[c[0]], background) >= MIN_CONTRAST]
        required = [c for c in required_all if _contrast(COLOURS[c[0]], background) >= MIN_CONTRAST]
        if visible and (required or not required_all):
            break
    n_objects = int(rng.integers(1, MAX_OBJECTS + 1))
    cells = rng.choice(GRID * GRID, size=n_objects, replace=False)
    objects: list[SceneObject] = []
    for i, cell in enumerate(cells):
        if i == 0 and required:
            combo = required[rng.integers(len(required))]
        elif objects and rng.random() < REPEAT_PROBABILITY:
            earlier = objects[rng.integers(len(objects))]
            combo = (earlier.colour, earlier.shape)
        else:
            combo = visible[rng.integers(len(visible))]
        size = list(SIZES)[rng.integers(len(SIZES))]
        slack = (1 - SIZES[size]) / 2  # how far the centre may move and keep the object inside its cell
        col, row = divmod(int(cell), GRID)
        x = (col + 0.5 + rng.uniform(-slack, slack)) / GRID
        y = (row + 0.5 + rng.uniform(-slack, slack)) / GRID
        objects.append(SceneObject(combo[0], combo[1], size, x, y))
    return Scene(objects, background)


def object_centre(obj: SceneObject, size: int) -> tuple[int, int]:
    """The object's centre in pixels of a `size` x `size` rendering."""
    return int(obj.x * size), int(obj.y * size)


def _draw_background(background: Background, size: int, rng: np.random.Generator) -> np.ndarray:
    ends = [np.array(BACKGROUNDS[name], dtype=np.float32) for name in background.colours]
    image = np.broadcast_to(ends[0], (size, size, 3)).copy()  # (H, W, 3)
    if background.kind == "gradient":
        t = np.linspace(0, 1, size, dtype=np.float32)
        t = t[:, None, None] if background.vertical else t[None, :, None]
        image = ends[0] + t * (ends[1] - ends[0]) + np.zeros((size, size, 3), np.float32)
    elif background.kind == "texture":
        coarse = rng.uniform(-1, 1, (TEXTURE_CELLS, TEXTURE_CELLS)).astype(np.float32)
        smooth = Image.fromarray(coarse).resize((size, size), Image.Resampling.BILINEAR)
        image += TEXTURE_AMPLITUDE * np.asarray(smooth)[:, :, None]
    return image


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.87, cy + r * 0.6), (cx - r * 0.87, cy + r * 0.6)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)]
    if shape == "star":
        return [
            (cx + rad * math.sin(k * math.pi / 5), cy - rad * math.cos(k * math.pi / 5))
            for k in range(10)
            for rad in [r if k % 2 == 0 else r * STAR_INNER_RATIO]
        ]
    raise ValueError(f"unknown polygon shape {shape!r}")


def render(scene: Scene, size: int = IMAGE_SIZE, rng: np.random.Generator | None = None) -> Image.Image:
    """Draw the scene as a `size` x `size` RGB image; `rng` draws the texture and pixel noise."""
    rng = rng if rng is not None else np.random.default_rng(0)
    background = _draw_background(scene.background, size, rng)
    image = Image.fromarray(np.clip(background, 0, 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(image)
    cell_px = size / GRID
    for obj in scene.objects:
        cx, cy = obj.x * size, obj.y * size
        r = SIZES[obj.size] * cell_px / 2
        fill = COLOURS[obj.colour]
        if obj.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        elif obj.shape == "square":
            half = r * 0.85  # a square as wide as the circle looks larger; this evens their areas a little
            draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=fill)
        else:
            draw.polygon(_shape_points(obj.shape, cx, cy, r), fill=fill)
    if scene.background.pixel_noise_std > 0:
        pixels = np.asarray(image, dtype=np.float32)
        pixels = pixels + rng.normal(0, scene.background.pixel_noise_std, pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
    return image


# ---- captions ----------------------------------------------------------------------------------------------


def _groups(objects: Sequence[SceneObject]) -> dict[Combo, list[SceneObject]]:
    groups: dict[Combo, list[SceneObject]] = {}
    for obj in objects:
        groups.setdefault((obj.colour, obj.shape), []).append(obj)
    return groups


def _article(next_word: str) -> str:
    return "an" if next_word[0] in "aeiou" else "a"


def _phrase(group: list[SceneObject], with_size: bool) -> str:
    """"a red circle", "two large blue squares" (size only when the whole group shares it)."""
    colour, shape = group[0].colour, group[0].shape
    sizes = {obj.size for obj in group}
    words = ([sizes.pop()] if with_size and len(sizes) == 1 else []) + [colour, shape + ("s" if len(group) > 1 else "")]
    count = _article(words[0]) if len(group) == 1 else NUMBER_WORDS[len(group)]
    return " ".join([count, *words])


def _where(obj: SceneObject) -> str:
    col, row = obj.cell
    vertical = ("top", "", "bottom")[row]
    horizontal = ("left", "", "right")[col]
    if not vertical and not horizontal:
        return "in the centre"
    if vertical and horizontal:
        return f"in the {vertical} {horizontal}"
    return f"on the {horizontal}" if horizontal else f"at the {vertical}"


def _relation(a: list[SceneObject], b: list[SceneObject]) -> str | None:
    """How group `a` sits relative to group `b` when every object of `a` lies strictly on one side of all of `b`."""
    a_cols, b_cols = [o.cell[0] for o in a], [o.cell[0] for o in b]
    a_rows, b_rows = [o.cell[1] for o in a], [o.cell[1] for o in b]
    if max(a_cols) < min(b_cols):
        return "to the left of"
    if min(a_cols) > max(b_cols):
        return "to the right of"
    if max(a_rows) < min(b_rows):
        return "above"
    if min(a_rows) > max(b_rows):
        return "below"
    return None


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _background_phrase(background: Background) -> str:
    if background.kind == "plain":
        return f"on {_article(background.colours[0])} {background.colours[0]} background"
    if background.kind == "gradient":
        return f"on a {background.colours[0]} to {background.colours[1]} gradient"
    return f"on a textured {background.colours[0]} background"


def _check_object_order(object_order: str) -> None:
    if object_order not in OBJECT_ORDERS:
        raise ValueError(f"object order must be one of {OBJECT_ORDERS}, got {object_order!r}")


def _reading_key(group: list[SceneObject]) -> tuple[int, int]:
    """(row, column) of the group's first cell in reading order: top row first, left to right."""
    return min((obj.cell[1], obj.cell[0]) for obj in group)


def captions(scene: Scene, rng: np.random.Generator, object_order: str = "random") -> list[str]:
    """Several true phrasings of the scene, each naming every (count, colour, shape) group exactly once.

    `object_order`: "random" lists the groups in a random order; "reading" lists them by where each group first
    appears, reading the grid top row first and left to right, so a model can name them in one scan of the
    image. The permutation is drawn either way, so the two orders give the same phrasings otherwise.
    """
    _check_object_order(object_order)
    groups = list(_groups(scene.objects).values())
    permutation = rng.permutation(len(groups))
    order = sorted(groups, key=_reading_key) if object_order == "reading" else [groups[i] for i in permutation]
    with_size = bool(rng.random() < 0.5)
    listed = _join([_phrase(g, with_size) for g in order])
    there = "there is" if len(order[0]) == 1 else "there are"
    out = [
        listed,
        f"{listed} {_background_phrase(scene.background)}",
        f"{there} {listed}",
        f"a picture of {listed}",
        _join([_phrase(g, False) + (f" {_where(g[0])}" if len(g) == 1 else "") for g in order]),
    ]
    for a, b in itertools.permutations(order, 2):
        relation = _relation(a, b)
        if relation is not None:
            rest = [g for g in order if g is not a and g is not b]
            head = f"{'there is' if len(a) == 1 else 'there are'} {_phrase(a, False)} {relation} {_phrase(b, False)}"
            out.append(head + (f", and {_join([_phrase(g, False) for g in rest])}" if rest else ""))
            break
    return out


_COUNT = "|".join(WORD_NUMBERS)
_CAPTION_OBJECT = re.compile(
    rf"\b({_COUNT})\s+(?:(?:{'|'.join(SIZES)})\s+)?({'|'.join(COLOURS)})\s+({'|'.join(SHAPES)})(s?)\b"
)


def parse_caption(text: str) -> list[tuple[int, str, str]]:
    """The (count, colour, shape) groups a caption names, in order ("two red circles" -> (2, "red", "circle"))."""
    return [(WORD_NUMBERS[m.group(1)], m.group(2), m.group(3)) for m in _CAPTION_OBJECT.finditer(text.lower())]


def _object_fields(obj: SceneObject | Mapping) -> Combo:
    return (obj["colour"], obj["shape"]) if isinstance(obj, Mapping) else (obj.colour, obj.shape)


def scene_counts(scene_objects: Iterable[SceneObject | Mapping]) -> Counter:
    """The multiset of (count, colour, shape) groups of a scene's objects (SceneObjects or metadata dicts)."""
    per_combo = Counter(_object_fields(obj) for obj in scene_objects)
    return Counter((n, colour, shape) for (colour, shape), n in per_combo.items())


def caption_is_correct(text: str, scene_objects: Iterable[SceneObject | Mapping]) -> bool:
    """True when the caption names exactly the scene's (count, colour, shape) groups, each once."""
    return caption_error(text, scene_objects) is None


CAPTION_ERRORS = ("count", "repeated", "missing", "extra", "substituted")  # see `caption_error`


def caption_error(text: str, scene_objects: Iterable[SceneObject | Mapping]) -> str | None:
    """What a caption gets wrong about a scene's objects, as one word; None when `caption_is_correct`.

    By the (colour, shape) kinds the caption names against those in the scene: the same kinds but a count
    wrong ("count"), or one kind named in two groups ("repeated": "two red stars and a red star"); kinds left
    out ("missing"); kinds added ("extra"); or a kind that is not there named in place of one that is
    ("substituted", also when some are missing or added besides).
    """
    objects = list(scene_objects)
    parsed = parse_caption(text)
    if Counter(parsed) == scene_counts(objects):  # the one rule of a correct caption (`caption_is_correct`)
        return None
    groups = [(colour, shape) for _, colour, shape in parsed]
    named, present = set(groups), {_object_fields(obj) for obj in objects}
    if named == present:
        return "repeated" if len(groups) > len(named) else "count"
    if named < present:
        return "missing"
    if named > present:
        return "extra"
    return "substituted"


# ---- corpus ------------------------------------------------------------------------------------------------


def _object_rows(scene: Scene) -> list[dict]:
    per_combo = Counter((obj.colour, obj.shape) for obj in scene.objects)
    return [{**asdict(obj), "count": per_combo[(obj.colour, obj.shape)]} for obj in scene.objects]


def generate_scenes_corpus(
    out: Path,
    n_train: int,
    n_eval: int,
    n_heldout: int,
    seed: int = 0,
    size: int = IMAGE_SIZE,
    object_order: str = "random",
) -> dict:
    """Write the train / eval / heldout imagefolders under `out`; returns the image count per split.

    `object_order` is the order captions list a scene's groups in ("random" or "reading", see `captions`);
    the images do not depend on it.
    """
    from tqdm.auto import tqdm

    from tasks.corpora.folders import clear_split

    if n_train < 1 or n_eval < 0 or n_heldout < 0:
        raise ValueError(f"need n_train >= 1 and n_eval, n_heldout >= 0; got {n_train}, {n_eval}, {n_heldout}")
    _check_object_order(object_order)
    if size < 32:
        raise ValueError(f"image size must be at least 32 px, got {size}")
    out = Path(out)
    counts = {"train": n_train, "eval": n_eval, "heldout": n_heldout}
    with tqdm(total=sum(counts.values()), desc="scenes", unit="image") as progress:
        for split_index, split in enumerate(SPLITS):
            folder = out / split
            clear_split(folder, ".png")
            folder.mkdir(parents=True)
            held_out = split == "heldout"
            with open(folder / METADATA, "w") as metadata:
                for i in range(counts[split]):
                    rng = np.random.default_rng([seed, split_index, i])
                    scene = sample_scene(
                        rng, ALL_COMBOS if held_out else TRAIN_COMBOS, HELD_OUT_COMBOS if held_out else None
                    )
                    file_name = f"{i:06d}.png"
                    render(scene, size, rng).save(folder / file_name)
                    phrasings = captions(scene, rng, object_order)
                    row = {
                        "file_name": file_name,
                        "text": phrasings[rng.integers(len(phrasings))],
                        "captions": phrasings,
                        "objects": _object_rows(scene),
                        "background": asdict(scene.background),
                    }
                    metadata.write(json.dumps(row) + "\n")
                    progress.update(1)
    return {**counts, "held_out_combos": sorted(HELD_OUT_COMBOS)}
