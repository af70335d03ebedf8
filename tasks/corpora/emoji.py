"""Emoji of the Noto Color Emoji font, rendered with augmentation and captioned from their Unicode names.

Every fully-qualified emoji of `tasks.corpora.emoji_names` that the font draws (a glyph it lacks renders
empty and is skipped) becomes an RGBA tile, rendered once at the font's only size and cached. An image holds
1-3 different emoji, each scaled, rotated and placed so that none overlap, on a plain, gradient or textured
background (plus optional pixel noise) redrawn until every emoji stands out from it. The caption names the
emoji from left to right with their names turned into English ("red apple" -> "a red apple", "flag: Japan" ->
"the flag of Japan", "family: man, boy, boy" -> "a family of a man and two boys"): "a dog face and a tree".
Skin-tone and hair-style variants are left out unless asked for (their names only add a tone to a base emoji).

Held-out emoji: a fixed share of the emoji, chosen by a hash of the name (`is_held_out`), never appears in
the `train` or `eval` splits; every `heldout` image shows exactly one of them next to training emoji.

The corpus is an imagefolder (`OUT/{train,eval,heldout}/`: PNG + `metadata.jsonl` rows `{"file_name", "text",
"captions", "objects", "background"}`; `captions` holds the caption in every object order, as references).
Each image draws from its own stream seeded by `(seed, split, index)`, so a corpus is deterministic for a
seed and a split does not depend on the others' sizes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tasks.corpora.emoji_names import Emoji, emoji_font_path, emoji_table
from tasks.corpora.english import indefinite_article

FONT_SIZE = 109  # the only size of the Noto Color Emoji bitmap strikes
TILE_CANVAS = 160  # px; holds any glyph of the font drawn at the origin (the widest is 136 x 128)
IMAGE_SIZE = 224
MIN_IMAGE_SIZE = 32
MAX_OBJECTS = 3
OBJECT_SCALE = {1: (0.45, 0.85), 2: (0.3, 0.5), 3: (0.25, 0.4)}  # longer tile side / image side, by object count
MAX_ROTATION_DEG = 30.0
PLACEMENT_TRIES = 40  # positions tried per object before the objects shrink
SHRINK = 0.85
MIN_CONTRAST = 60.0  # least RGB distance between an emoji's mean colour and the background under it
BACKGROUND_TRIES = 20
BACKGROUND_KINDS = ("plain", "gradient", "texture")
TEXTURE_AMPLITUDE = 25.0  # +- RGB of the low-frequency noise texture
TEXTURE_CELLS = 8
PIXEL_NOISE_STD = (2.0, 8.0)
PIXEL_NOISE_PROBABILITY = 0.3
HELD_OUT_FRACTION = 0.1  # share of emoji (by name hash) kept out of train and eval
SPLITS = ("train", "eval", "heldout")
METADATA = "metadata.jsonl"

# ---- names -> English ---------------------------------------------------------------------------------------

NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four"}
PLURALS = {"man": "men", "woman": "women", "person": "people", "boy": "boys", "girl": "girls", "child": "children"}
NO_ARTICLE_FIRST_WORDS = {"two", "people", "men", "women", "hundred"}  # already plural or counted
MASS_NOUNS = {
    "bacon", "bread", "broccoli", "butter", "cooked rice", "curry rice", "falafel", "fire", "fog", "fondue",
    "garlic", "ginger root", "ice", "leafy green", "money", "oden", "popcorn", "salt", "spaghetti", "sushi",
}
SINGULAR_S = {"rhinoceros", "customs", "fleur-de-lis", "tennis"}  # end in "s" but name one thing
HEAD_END_WORDS = {  # the head noun phrase ends before these ("face with big eyes" is one face)
    "with", "without", "of", "in", "on", "over", "behind", "from", "and", "showing", "blowing", "holding",
    "lifting", "playing", "wearing", "exhaling", "savoring", "vomiting", "biting", "peeking",
}
SPECIAL_NAMES = {
    "Santa Claus": "Santa Claus",
    "Mrs. Claus": "Mrs. Claus",
    "mx claus": "Mx Claus",
    "Statue of Liberty": "the Statue of Liberty",
    "Tokyo tower": "the Tokyo tower",
    "tennis": "a tennis ball",
    "customs": "a customs sign",
    "ZZZ": "a ZZZ sign",
    "rolling on the floor laughing": "a face rolling on the floor laughing",
    "dashing away": "a dash symbol",
    "locked": "a locked padlock",
    "unlocked": "an unlocked padlock",
    "locked with pen": "a locked padlock with a pen",
    "locked with key": "a locked padlock with a key",
    "ice hockey": "an ice hockey stick and puck",
    "field hockey": "a field hockey stick and ball",
    "lacrosse": "a lacrosse stick and ball",
    "cricket game": "a cricket bat and ball",
    "ping pong": "a ping pong paddle",
    "badminton": "a badminton racket",
    "bowling": "a bowling ball and pins",
}
SIGN_NAMES = {"infinity", "copyright", "registered", "trade mark", "plus", "minus", "divide", "multiply"}
FLAG_NAMES_WITH_THE = {  # "the flag of the Netherlands"; also every "... Islands" and "United ..."
    "Bahamas", "Caribbean Netherlands", "Central African Republic", "Comoros", "Dominican Republic",
    "European Union", "Gambia", "Maldives", "Netherlands", "Philippines", "Seychelles", "United Kingdom",
    "United Nations", "United States", "United Arab Emirates", "Vatican City", "Palestinian Territories",
    "French Southern Territories",
}
KEYCAP_WORDS = {"#": "a number sign", "*": "an asterisk"}


def _with_article(phrase: str) -> str:
    """"red apple" -> "a red apple"; plurals and mass nouns ("footprints", "sushi") keep no article."""
    words = phrase.split()
    head = list(itertools.takewhile(lambda w: w not in HEAD_END_WORDS, words)) or words
    last = head[-1]
    plural = (last.endswith("s") and not last.endswith(("ss", "us", "is")) and last not in SINGULAR_S)
    if plural or " ".join(head) in MASS_NOUNS or words[0] in NO_ARTICLE_FIRST_WORDS:
        return phrase
    return f"{indefinite_article(phrase)} {phrase}"


def _people(names: Sequence[str]) -> str:
    """["man", "boy", "boy"] -> "a man and two boys" (first-appearance order)."""
    counts = Counter(names)
    parts = [f"{indefinite_article(n)} {n}" if k == 1 else f"{NUMBER_WORDS.get(k, str(k))} {PLURALS.get(n, n + 's')}"
             for n, k in counts.items()]
    return _join(parts)


def _join(phrases: Sequence[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _qualified(head: str, qualifiers: list[str]) -> str:
    """"man" + ["red hair"] -> "a man with red hair"; ["bald"] -> "a bald man"; skin tones join the "with"."""
    prefix = [q for q in qualifiers if q == "bald"]
    rest = [("a beard" if q == "beard" else q) for q in qualifiers if q != "bald"]
    noun = " ".join([*prefix, head])
    return _with_article(noun) + (f" with {_join(rest)}" if rest else "")


def emoji_phrase(name: str, subgroup: str = "") -> str:
    """The English noun phrase for an emoji's CLDR name: "flag: Japan" -> "the flag of Japan"."""
    name = name.replace("’", "'").replace("“", "").replace("”", "").replace(" & ", " and ")
    if name in SPECIAL_NAMES:
        return SPECIAL_NAMES[name]
    if name in SIGN_NAMES or name.startswith("no "):  # "an infinity sign", "a no entry sign"
        return f"{indefinite_article(name)} {name} sign"
    if subgroup == "zodiac":
        return f"the zodiac sign {name}"
    if name.endswith("o'clock") or re.fullmatch(r"[a-z]+-thirty", name):
        return f"a clock showing {name}"
    match = re.fullmatch(r"(\w+) button \(blood type\)", name)
    if match:
        return f"the blood type {match[1]} button"
    head, sep, tail = name.partition(": ")
    if not sep:
        return _with_article(name)
    parts = tail.split(", ")
    if head == "flag":
        the = tail in FLAG_NAMES_WITH_THE or tail.endswith("Islands") or tail.startswith("United ")
        return f"the flag of {'the ' if the else ''}{tail}"
    if head == "keycap":
        return f"a keycap with {KEYCAP_WORDS.get(tail, f'the number {tail}')}"
    people = [p for p in parts if p in PLURALS]
    others = [p for p in parts if p not in PLURALS]
    extra = f" with {_join(others)}" if others else ""
    if head == "family" and people:
        return f"a family of {_people(people)}{extra}"
    if head == "kiss" and people:
        return f"a kiss between {_people(people)}{extra}"
    if head == "couple with heart" and people:
        return f"{_people(people)} with a heart between them{extra}"
    return _qualified(head, parts)


def caption_for(phrases: Sequence[str]) -> str:
    """Object phrases (left to right) -> "a dog face, a tree and the flag of Japan"."""
    return _join(list(phrases))


# ---- held-out emoji -----------------------------------------------------------------------------------------


def base_name(emoji: Emoji) -> str:
    """The name without skin-tone / hair-style qualifiers, so a variant is held out with its base emoji."""
    if not emoji.is_variant:
        return emoji.name
    head, _, tail = emoji.name.partition(": ")
    kept = [p for p in tail.split(", ") if not p.endswith("skin tone") and not p.endswith("hair")
            and p not in ("bald", "beard")]
    return head + (": " + ", ".join(kept) if kept else "")


def is_held_out(emoji: Emoji, fraction: float = HELD_OUT_FRACTION) -> bool:
    """A fixed pseudo-random share of emoji, by a hash of the base name (the same on every machine)."""
    digest = hashlib.sha256(base_name(emoji).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


# ---- rendering ----------------------------------------------------------------------------------------------


class EmojiRenderer:
    """Renders each emoji once into a tight RGBA tile and keeps it."""

    def __init__(self, font_path: str | Path | None = None):
        self.font = ImageFont.truetype(str(font_path or emoji_font_path()), FONT_SIZE)
        self._tiles: dict[str, Image.Image | None] = {}

    def tile(self, char: str) -> Image.Image | None:
        """The glyph cropped to its visible pixels, or None when the font cannot draw it (an empty render)."""
        if char not in self._tiles:
            self._tiles[char] = self._render(char)
        return self._tiles[char]

    def _render(self, char: str) -> Image.Image | None:
        canvas = Image.new("RGBA", (TILE_CANVAS, TILE_CANVAS), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), char, font=self.font, embedded_color=True)
        box = canvas.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
        return canvas.crop(box) if box is not None else None


def drawable_emoji(renderer: EmojiRenderer, include_variants: bool = False) -> list[Emoji]:
    """The emoji of the installed table that the font draws, in table order (variants only when asked)."""
    return [e for e in emoji_table() if (include_variants or not e.is_variant) and renderer.tile(e.char) is not None]


@dataclass(frozen=True)
class PlacedEmoji:
    name: str
    char: str
    group: str
    subgroup: str
    x: float  # centre, as a fraction of the image width (0 = left)
    y: float  # centre, as a fraction of the image height (0 = top)
    scale: float  # longer side of the unrotated tile / image side
    rotation_deg: float  # counter-clockwise
    held_out: bool


@dataclass(frozen=True)
class EmojiBackground:
    kind: str  # one of BACKGROUND_KINDS
    colours: tuple[tuple[int, int, int], ...]  # one RGB colour, or two for a gradient
    angle_deg: float = 0.0  # gradient direction
    pixel_noise_std: float = 0.0


def _sized_tile(tile: Image.Image, scale: float, rotation_deg: float, size: int) -> Image.Image:
    side = max(2, round(scale * size))
    factor = side / max(tile.size)
    resized = tile.resize((max(1, round(tile.width * factor)), max(1, round(tile.height * factor))),
                          Image.Resampling.LANCZOS)
    return resized.rotate(rotation_deg, resample=Image.Resampling.BICUBIC, expand=True)


def _rotated_size(tile: Image.Image, scale: float, rotation_deg: float, size: int) -> tuple[float, float]:
    """Width and height in px of the tile's box once scaled and rotated (as `_sized_tile` makes it)."""
    factor = scale * size / max(tile.size)
    w, h = tile.width * factor, tile.height * factor
    c, s = abs(np.cos(np.deg2rad(rotation_deg))), abs(np.sin(np.deg2rad(rotation_deg)))
    return w * c + h * s + 2, w * s + h * c + 2


def _overlaps(box: tuple[float, ...], boxes: list[tuple[float, ...]]) -> bool:
    return any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes)


def _place(rng: np.random.Generator, tiles: list[Image.Image], size: int) -> list[tuple[float, float, float, float]] | None:
    """(x, y, scale, rotation) per tile, no two rotated tiles' boxes overlapping; None if they never fit."""
    low, high = OBJECT_SCALE[len(tiles)]
    scales = [float(rng.uniform(low, high)) for _ in tiles]
    rotations = [float(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG)) for _ in tiles]
    for _ in range(6):
        boxes: list[tuple[float, ...]] = []
        for tile, scale, rotation in zip(tiles, scales, rotations):
            w, h = _rotated_size(tile, scale, rotation, size)
            for _ in range(PLACEMENT_TRIES if w < size and h < size else 0):
                left, top = float(rng.uniform(0, size - w)), float(rng.uniform(0, size - h))
                box = (left, top, left + w, top + h)
                if not _overlaps(box, boxes):
                    boxes.append(box)
                    break
            else:
                break
        if len(boxes) == len(tiles):
            return [((b[0] + b[2]) / 2 / size, (b[1] + b[3]) / 2 / size, s, r)
                    for b, s, r in zip(boxes, scales, rotations)]
        scales = [s * SHRINK for s in scales]  # they did not fit: shrink them all and try again
    return None


def _sample_background(rng: np.random.Generator) -> EmojiBackground:
    kind = BACKGROUND_KINDS[rng.integers(len(BACKGROUND_KINDS))]
    colours = tuple(tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(2 if kind == "gradient" else 1))
    noise = float(rng.uniform(*PIXEL_NOISE_STD)) if rng.random() < PIXEL_NOISE_PROBABILITY else 0.0
    return EmojiBackground(kind, colours, float(rng.uniform(0, 360)), noise)


def _draw_background(background: EmojiBackground, size: int, rng: np.random.Generator) -> np.ndarray:
    first = np.array(background.colours[0], dtype=np.float32)
    image = np.broadcast_to(first, (size, size, 3)).copy()  # (H, W, 3)
    if background.kind == "gradient":
        angle = np.deg2rad(background.angle_deg)
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
        t = (xs - 0.5) * np.cos(angle) + (ys - 0.5) * np.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        image = first + t[:, :, None] * (np.array(background.colours[1], dtype=np.float32) - first)
    elif background.kind == "texture":
        coarse = rng.uniform(-1, 1, (TEXTURE_CELLS, TEXTURE_CELLS)).astype(np.float32)
        smooth = Image.fromarray(coarse).resize((size, size), Image.Resampling.BILINEAR)
        image = image + TEXTURE_AMPLITUDE * np.asarray(smooth)[:, :, None]
    return np.clip(image, 0, 255)


def _mean_colour(tile: Image.Image) -> np.ndarray:
    pixels = np.asarray(tile, dtype=np.float32)  # (h, w, 4)
    opaque = pixels[..., 3] > 128
    return pixels[..., :3][opaque].mean(axis=0) if opaque.any() else np.zeros(3, np.float32)


def render_image(
    rng: np.random.Generator, emoji: Sequence[Emoji], renderer: EmojiRenderer, size: int, held_out: set[str] = frozenset()
) -> tuple[Image.Image, list[PlacedEmoji], EmojiBackground] | None:
    """One augmented image of `emoji` (distinct, drawable); None when they do not fit (the caller redraws)."""
    tiles = [renderer.tile(e.char) for e in emoji]
    placement = _place(rng, tiles, size)
    if placement is None:
        return None
    sized = [_sized_tile(t, s, r, size) for t, (_, _, s, r) in zip(tiles, placement)]
    for _ in range(BACKGROUND_TRIES):  # redraw the background until every emoji stands out from it
        background = _sample_background(rng)
        pixels = _draw_background(background, size, rng)
        if all(_contrast_ok(pixels, tile, x, y, size) for tile, (x, y, _, _) in zip(sized, placement)):
            break
    image = Image.fromarray(pixels.round().astype(np.uint8))
    for tile, (x, y, _, _) in zip(sized, placement):
        image.paste(tile, (round(x * size - tile.width / 2), round(y * size - tile.height / 2)), tile)
    if background.pixel_noise_std > 0:
        noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, background.pixel_noise_std, (size, size, 3))
        image = Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))
    objects = [
        PlacedEmoji(e.name, e.char, e.group, e.subgroup, x, y, s, r, e.name in held_out) for e, (x, y, s, r) in zip(emoji, placement)
    ]
    return image, objects, background


def _contrast_ok(pixels: np.ndarray, tile: Image.Image, x: float, y: float, size: int) -> bool:
    left, top = max(0, round(x * size - tile.width / 2)), max(0, round(y * size - tile.height / 2))
    under = pixels[top : top + tile.height, left : left + tile.width].reshape(-1, 3).mean(axis=0)
    return float(np.linalg.norm(_mean_colour(tile) - under)) >= MIN_CONTRAST


# ---- corpus -------------------------------------------------------------------------------------------------


def _draw_example(rng: np.random.Generator, train_pool: list[Emoji], held_pool: list[Emoji], split: str,
                  renderer: EmojiRenderer, size: int, held_names: set[str]):
    while True:
        n = int(rng.integers(1, MAX_OBJECTS + 1))
        if split == "heldout":
            picks = [held_pool[rng.integers(len(held_pool))]]
            picks += [train_pool[i] for i in rng.choice(len(train_pool), size=n - 1, replace=False)]
        else:
            picks = [train_pool[i] for i in rng.choice(len(train_pool), size=n, replace=False)]
        drawn = render_image(rng, picks, renderer, size, held_names)
        if drawn is not None:
            return picks, drawn


def generate_emoji_corpus(
    out: Path,
    n_train: int,
    n_eval: int,
    n_heldout: int = 0,
    seed: int = 0,
    size: int = IMAGE_SIZE,
    include_variants: bool = False,
) -> dict:
    """Write the train / eval / heldout imagefolders under `out`; returns the image and emoji counts."""
    from tqdm.auto import tqdm

    from tasks.corpora.folders import clear_split

    if n_train < 1 or n_eval < 0 or n_heldout < 0:
        raise ValueError(f"need n_train >= 1 and n_eval, n_heldout >= 0; got {n_train}, {n_eval}, {n_heldout}")
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"image size must be at least {MIN_IMAGE_SIZE} px, got {size}")
    renderer = EmojiRenderer()
    pool = drawable_emoji(renderer, include_variants)
    held_pool = [e for e in pool if is_held_out(e)]
    train_pool = [e for e in pool if not is_held_out(e)]
    held_names = {e.name for e in held_pool}
    out = Path(out)
    counts = {"train": n_train, "eval": n_eval, "heldout": n_heldout}
    with tqdm(total=sum(counts.values()), desc="emoji", unit="image") as progress:
        for split_index, split in enumerate(SPLITS):
            folder = out / split
            clear_split(folder, ".png")
            folder.mkdir(parents=True)
            with open(folder / METADATA, "w") as metadata:
                for i in range(counts[split]):
                    rng = np.random.default_rng([seed, split_index, i])
                    _, (image, objects, background) = _draw_example(
                        rng, train_pool, held_pool, split, renderer, size, held_names
                    )
                    file_name = f"{i:06d}.png"
                    image.save(folder / file_name)
                    ordered = sorted(objects, key=lambda o: o.x)  # captions read left to right
                    phrases = [emoji_phrase(o.name, o.subgroup) for o in ordered]
                    row = {
                        "file_name": file_name,
                        "text": caption_for(phrases),
                        "captions": [caption_for(p) for p in itertools.permutations(phrases)],
                        "objects": [asdict(o) for o in ordered],
                        "background": asdict(background),
                    }
                    metadata.write(json.dumps(row, ensure_ascii=False) + "\n")
                    progress.update(1)
    return {**counts, "emoji": len(train_pool), "held_out_emoji": len(held_pool)}
