"""Emoji corpus: names turned into captions, the held-out split, rendering, and a tiny deterministic corpus."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tasks.corpora import emoji
from tasks.corpora.emoji import (
    HELD_OUT_FRACTION,
    EmojiBackground,
    EmojiRenderer,
    base_name,
    caption_for,
    emoji_phrase,
    generate_emoji_corpus,
    is_held_out,
    render_image,
)
from tasks.corpora.emoji_names import EMOJI_FONT_FILE, EMOJI_TEST_FILE, Emoji, emoji_table

needs_emoji = pytest.mark.skipif(
    not (EMOJI_FONT_FILE.is_file() and EMOJI_TEST_FILE.is_file()), reason="fonts-noto-color-emoji / unicode-data missing"
)


@pytest.mark.parametrize(
    "name, subgroup, phrase",
    [
        ("red apple", "food-fruit", "a red apple"),
        ("dog face", "animal-mammal", "a dog face"),
        ("avocado", "food-fruit", "an avocado"),
        ("unicorn", "animal-mammal", "a unicorn"),
        ("one-piece swimsuit", "clothing", "a one-piece swimsuit"),
        ("hourglass done", "time", "an hourglass done"),
        ("grinning face with big eyes", "face-smiling", "a grinning face with big eyes"),
        ("footprints", "person-symbol", "footprints"),
        ("sushi", "food-asian", "sushi"),
        ("bus", "transport-ground", "a bus"),
        ("people holding hands", "family", "people holding hands"),
        ("flag: Japan", "country-flag", "the flag of Japan"),
        ("flag: United States", "country-flag", "the flag of the United States"),
        ("flag: Cook Islands", "country-flag", "the flag of the Cook Islands"),
        ("flag: Trinidad & Tobago", "country-flag", "the flag of Trinidad and Tobago"),
        ("keycap: 7", "keycap", "a keycap with the number 7"),
        ("keycap: #", "keycap", "a keycap with a number sign"),
        ("family: man, boy, boy", "family", "a family of a man and two boys"),
        ("kiss: woman, man", "family", "a kiss between a woman and a man"),
        ("couple with heart: man, man", "family", "two men with a heart between them"),
        ("woman: blond hair", "person", "a woman with blond hair"),
        ("man: bald", "person", "a bald man"),
        ("waving hand: medium skin tone", "hand-fingers-open", "a waving hand with medium skin tone"),
        ("ten o’clock", "time", "a clock showing ten o'clock"),
        ("Aries", "zodiac", "the zodiac sign Aries"),
        ("Japanese “vacancy” button", "alphanum", "a Japanese vacancy button"),
        ("A button (blood type)", "alphanum", "the blood type A button"),
        ("no entry", "warning", "a no entry sign"),
        ("SOS button", "alphanum", "an SOS button"),
        ("Statue of Liberty", "place-other", "the Statue of Liberty"),
    ],
)
def test_names_become_english(name, subgroup, phrase):
    assert emoji_phrase(name, subgroup) == phrase


def test_captions_join_objects():
    assert caption_for(["a red apple"]) == "a red apple"
    assert caption_for(["a dog face", "a tree"]) == "a dog face and a tree"
    assert caption_for(["a dog face", "a tree", "sushi"]) == "a dog face, a tree and sushi"


def test_held_out_is_a_fixed_share_and_follows_the_base_emoji():
    names = [Emoji(chr(0x1F300 + i), f"thing {i}", "Objects", "x", False) for i in range(2000)]
    share = np.mean([is_held_out(e) for e in names])
    assert abs(share - HELD_OUT_FRACTION) < 0.03
    assert [is_held_out(e) for e in names] == [is_held_out(e) for e in names]  # no process-salted hash
    variant = Emoji("x", "kiss: woman, man, medium skin tone, dark skin tone", "People & Body", "family", True)
    assert base_name(variant) == "kiss: woman, man"
    assert is_held_out(variant) == is_held_out(Emoji("y", "kiss: woman, man", "People & Body", "family", False))
    assert base_name(Emoji("x", "man: red hair", "People & Body", "person", True)) == "man"


@needs_emoji
def test_renderer_draws_tiles_once_and_skips_missing_glyphs():
    renderer = EmojiRenderer()
    apple = renderer.tile("\U0001F34E")
    assert apple is not None and apple.mode == "RGBA" and max(apple.size) > 100
    assert renderer.tile("\U0001F34E") is apple  # cached
    assert renderer.tile("\U000E0000") is None and renderer.tile("A") is None  # the font has no glyph


@needs_emoji
@pytest.mark.parametrize("seed", range(4))
def test_rendered_image_shows_every_emoji_apart(monkeypatch, seed):
    grey = (128, 128, 128)
    monkeypatch.setattr(emoji, "_sample_background", lambda rng: EmojiBackground("plain", (grey,)))
    table = {e.name: e for e in emoji_table()}
    picks = [table["red apple"], table["dog face"], table["deciduous tree"]]
    size = 128
    image, objects, _ = render_image(np.random.default_rng(seed), picks, EmojiRenderer(), size)
    assert image.size == (size, size) and image.mode == "RGB"
    assert [o.name for o in objects] == ["red apple", "dog face", "deciduous tree"]
    drawn = np.abs(np.asarray(image, dtype=np.float32) - grey).sum(-1) > 30  # (H, W) emoji pixels
    covered = np.zeros_like(drawn)
    for o in objects:
        half = o.scale * size * 0.72  # half the diagonal of the scaled tile bounds any rotation
        x0, x1 = max(0, int(o.x * size - half)), int(np.ceil(o.x * size + half))
        y0, y1 = max(0, int(o.y * size - half)), int(np.ceil(o.y * size + half))
        assert drawn[y0:y1, x0:x1].mean() > 0.2, o  # the emoji is there
        covered[y0:y1, x0:x1] = True
    assert not drawn[~covered].any()  # nothing drawn outside the emoji


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())).hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("emoji")
    summary = generate_emoji_corpus(out, n_train=8, n_eval=4, n_heldout=4, seed=3, size=64)
    return out, summary


@needs_emoji
def test_corpus_layout_and_captions(corpus):
    out, summary = corpus
    assert summary["train"] == 8 and summary["emoji"] > 1000 and summary["held_out_emoji"] > 100
    for split, n in (("train", 8), ("eval", 4), ("heldout", 4)):
        rows = read_rows(out / split)
        assert len(rows) == n
        for row in rows:
            assert (out / split / row["file_name"]).is_file()
            objects = row["objects"]
            assert 1 <= len(objects) <= 3 and len({o["name"] for o in objects}) == len(objects)
            assert [o["x"] for o in objects] == sorted(o["x"] for o in objects)  # captions read left to right
            assert row["text"] == caption_for([emoji_phrase(o["name"], o["subgroup"]) for o in objects])
            assert row["text"] in row["captions"] and len(row["captions"]) == [1, 2, 6][len(objects) - 1]
            held = [o for o in objects if o["held_out"]]
            assert len(held) == (1 if split == "heldout" else 0), (split, row)


@needs_emoji
def test_corpus_is_deterministic_and_refuses_bad_arguments(corpus, tmp_path):
    out, _ = corpus
    again = tmp_path / "again"
    generate_emoji_corpus(again, n_train=8, n_eval=4, n_heldout=4, seed=3, size=64)
    assert digest(again) == digest(out)
    other = tmp_path / "other"
    generate_emoji_corpus(other, n_train=8, n_eval=0, seed=4, size=64)
    assert digest(other / "train") != digest(out / "train")
    with pytest.raises(ValueError, match="at least 32 px"):
        generate_emoji_corpus(tmp_path / "small", 4, 0, size=16)
    with pytest.raises(ValueError, match="n_train"):
        generate_emoji_corpus(tmp_path / "none", 0, 1)
    (tmp_path / "mine" / "train").mkdir(parents=True)
    (tmp_path / "mine" / "train" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="notes.txt"):
        generate_emoji_corpus(tmp_path / "mine", 4, 0, size=64)
    assert (tmp_path / "mine" / "train" / "notes.txt").is_file()
