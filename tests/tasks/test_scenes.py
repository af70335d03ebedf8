"""Procedural scenes: determinism, captions true of their scene, the compositional hold-out, a tiny corpus."""

import hashlib
import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tasks.corpora.scenes import (
    ALL_COMBOS,
    CAPTION_ERRORS,
    COLOURS,
    HELD_OUT_COMBOS,
    TRAIN_COMBOS,
    Background,
    Scene,
    SceneObject,
    caption_error,
    caption_is_correct,
    captions,
    generate_scenes_corpus,
    object_centre,
    parse_caption,
    render,
    sample_scene,
    scene_counts,
)

N_SCENES = 200
ROW_KEYS = {"file_name", "text", "captions", "objects", "background"}


def scenes(seed: int = 0, n: int = N_SCENES, **kwargs) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, **kwargs) for _ in range(n)]


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    summary = generate_scenes_corpus(out, n_train=6, n_eval=3, n_heldout=3, seed=5, size=64)
    return out, summary


def test_sample_scene_is_deterministic_and_rendering_too():
    assert scenes(seed=1, n=20) == scenes(seed=1, n=20)
    assert scenes(seed=1, n=20) != scenes(seed=2, n=20)
    for scene in scenes(seed=1, n=5):
        a = render(scene, 64, np.random.default_rng(3)).tobytes()
        assert a == render(scene, 64, np.random.default_rng(3)).tobytes()


def test_corpus_is_deterministic(corpus, tmp_path):
    out, _ = corpus
    generate_scenes_corpus(tmp_path, n_train=6, n_eval=3, n_heldout=3, seed=5, size=64)
    for split in ("train", "eval", "heldout"):
        assert read_rows(tmp_path / split) == read_rows(out / split)
        for row in read_rows(out / split):
            digest = lambda root: hashlib.sha256((root / split / row["file_name"]).read_bytes()).digest()  # noqa: E731
            assert digest(tmp_path) == digest(out)


def test_scenes_are_well_formed():
    for scene in scenes():
        assert 1 <= len(scene.objects) <= 4
        cells = [obj.cell for obj in scene.objects]
        assert len(set(cells)) == len(cells)  # one object per grid cell: no overlap


def test_every_caption_parses_back_to_the_scene():
    rng = np.random.default_rng(0)
    relations = 0
    for scene in scenes():
        expected = scene_counts(scene.objects)
        for text in captions(scene, rng):
            assert Counter(parse_caption(text)) == expected, text
            assert caption_is_correct(text, scene.objects)
            relations += any(w in text for w in ("left of", "right of", "above", "below"))
    assert relations > 0  # the spatial phrasing does occur


def test_spatial_relation_is_true():
    left = SceneObject("red", "circle", "small", 0.15, 0.5)
    right = SceneObject("blue", "square", "large", 0.85, 0.5)
    texts = captions(Scene([left, right]), np.random.default_rng(0))
    relation = [t for t in texts if "left of" in t or "right of" in t]
    assert relation and all(
        "red circle to the left of a blue square" in t or "blue square to the right of a red circle" in t
        for t in relation
    )
    same_column = Scene([replace(left, x=0.5, y=0.15), replace(right, x=0.5, y=0.85)])
    for text in captions(same_column, np.random.default_rng(0)):
        assert "left of" not in text and "right of" not in text
        assert "below" not in text or "blue square below a red circle" in text
        assert "above" not in text or "red circle above a blue square" in text
    spread = [replace(left, x=0.15, y=0.15), replace(right, x=0.5, y=0.15), replace(right, x=0.15, y=0.85)]
    for text in captions(Scene(spread), np.random.default_rng(0)):  # the squares share the circle's row and column
        assert not any(word in text for word in ("left of", "right of", "above", "below")), text


def test_reading_order_lists_groups_by_their_first_cell():
    objs = [
        SceneObject("red", "circle", "small", 0.85, 0.85),  # bottom right
        SceneObject("blue", "square", "large", 0.5, 0.15),  # top centre
        SceneObject("red", "circle", "large", 0.15, 0.5),  # middle left: the red circles' first cell
        SceneObject("green", "star", "small", 0.15, 0.85),  # bottom left
    ]
    want = [(1, "blue", "square"), (2, "red", "circle"), (1, "green", "star")]
    random_orders = set()
    for seed in range(8):
        reading = captions(Scene(objs), np.random.default_rng(seed), object_order="reading")
        randomly = captions(Scene(objs), np.random.default_rng(seed))
        assert len(reading) == len(randomly)
        for text in reading[:5]:  # the listing phrasings; the relation phrasing leads with its pair
            assert parse_caption(text) == want, text
        random_orders.update(tuple(parse_caption(text)) for text in randomly[:5])
    assert len(random_orders) > 1  # the default order does vary
    with pytest.raises(ValueError, match="object order"):
        captions(Scene(objs), np.random.default_rng(0), object_order="sorted")


def test_reading_order_corpus_has_the_same_images_and_phrasings(corpus, tmp_path):
    out, _ = corpus
    generate_scenes_corpus(tmp_path, n_train=6, n_eval=3, n_heldout=3, seed=5, size=64, object_order="reading")
    for split in ("train", "eval", "heldout"):
        for a, b in zip(read_rows(out / split), read_rows(tmp_path / split), strict=True):
            assert a["objects"] == b["objects"] and Counter(parse_caption(a["text"])) == Counter(parse_caption(b["text"]))
            assert (out / split / a["file_name"]).read_bytes() == (tmp_path / split / b["file_name"]).read_bytes()
    written = read_rows(tmp_path / "train")
    with pytest.raises(ValueError, match="object order"):
        generate_scenes_corpus(tmp_path, 1, 0, 0, size=32, object_order="sorted")
    assert read_rows(tmp_path / "train") == written  # refused before anything already written is cleared


def test_counts_and_articles():
    objs = [SceneObject("orange", "star", "small", x, 0.15) for x in (0.15, 0.5)]
    objs.append(SceneObject("orange", "diamond", "large", 0.5, 0.85))
    assert parse_caption("Two orange stars and an orange diamond") == [(2, "orange", "star"), (1, "orange", "diamond")]
    assert caption_is_correct("an orange diamond and two small orange stars on a grey background", objs)
    for seed in range(5):
        for text in captions(Scene(objs), np.random.default_rng(seed)):
            assert not re.search(r"\ba (orange|a)", text) and not re.search(r"\ban [^aeiou]", text), text


def test_caption_is_correct_rejects_wrong_captions():
    objs = [
        SceneObject("red", "circle", "small", 0.15, 0.15),
        SceneObject("blue", "square", "large", 0.5, 0.5),
        SceneObject("blue", "square", "small", 0.85, 0.85),
    ]
    assert caption_is_correct("a red circle and two blue squares", objs)
    assert not caption_is_correct("a green circle and two blue squares", objs)  # wrong colour
    assert not caption_is_correct("a red circle and three blue squares", objs)  # wrong count
    assert not caption_is_correct("a red circle and a blue square", objs)  # wrong count
    assert not caption_is_correct("two blue squares", objs)  # missing object
    assert not caption_is_correct("a red circle, a red circle and two blue squares", objs)  # named twice
    assert not caption_is_correct("a red triangle and two blue squares", objs)  # wrong shape
    rows = [{"colour": o.colour, "shape": o.shape} for o in objs]  # metadata rows work as well
    assert caption_is_correct("there are two blue squares and a red circle", rows)


def test_caption_error_names_the_kind_of_mistake():
    objs = [
        SceneObject("red", "circle", "small", 0.15, 0.15),
        SceneObject("blue", "square", "large", 0.5, 0.5),
        SceneObject("blue", "square", "small", 0.85, 0.85),
    ]
    assert caption_error("a red circle and two blue squares", objs) is None
    assert caption_error("a red circle and three blue squares", objs) == "count"
    assert caption_error("a red circle, a blue square and a large blue square", objs) == "repeated"
    assert caption_error("two blue squares", objs) == "missing"
    assert caption_error("a red circle, a red star and two blue squares", objs) == "extra"
    assert caption_error("a red triangle and two blue squares", objs) == "substituted"
    assert caption_error("a green star", objs) == "substituted"
    assert caption_error("nothing here", objs) == "missing"
    assert set(CAPTION_ERRORS) == {"count", "repeated", "missing", "extra", "substituted"}


def test_hold_out():
    assert HELD_OUT_COMBOS and HELD_OUT_COMBOS <= ALL_COMBOS and not HELD_OUT_COMBOS & TRAIN_COMBOS
    for scene in scenes():
        assert not {(o.colour, o.shape) for o in scene.objects} & HELD_OUT_COMBOS
    for scene in scenes(combos=ALL_COMBOS, must_include=HELD_OUT_COMBOS):
        assert {(o.colour, o.shape) for o in scene.objects} & HELD_OUT_COMBOS


def test_corpus_hold_out(corpus):
    out, summary = corpus
    assert (summary["train"], summary["eval"], summary["heldout"]) == (6, 3, 3)
    combos = lambda row: {(o["colour"], o["shape"]) for o in row["objects"]}  # noqa: E731
    for split in ("train", "eval"):
        assert all(not combos(row) & HELD_OUT_COMBOS for row in read_rows(out / split))
    assert all(combos(row) & HELD_OUT_COMBOS for row in read_rows(out / "heldout"))


def test_render_size_and_object_colours():
    for scene in scenes(n=30):
        for size in (64, 224):
            image = render(scene, size, np.random.default_rng(0))
            assert image.size == (size, size) and image.mode == "RGB"
            pixels = np.asarray(image, dtype=float)
            tolerance = 4 * scene.background.pixel_noise_std + 2
            for obj in scene.objects:
                x, y = object_centre(obj, size)
                assert np.abs(pixels[y, x] - COLOURS[obj.colour]).max() <= tolerance, (obj, scene.background)


def test_plain_background_is_drawn():
    scene = Scene([SceneObject("red", "circle", "small", 0.5, 0.5)], Background("plain", ("navy",)))
    pixels = np.asarray(render(scene, 32))
    assert tuple(pixels[0, 0]) == (20, 30, 85)


def test_corpus_files_and_rows(corpus):
    out, _ = corpus
    for split, n in (("train", 6), ("eval", 3), ("heldout", 3)):
        rows = read_rows(out / split)
        assert len(rows) == n
        for row in rows:
            assert set(row) == ROW_KEYS
            assert (out / split / row["file_name"]).is_file()
            assert row["text"] in row["captions"]
            assert all(caption_is_correct(text, row["objects"]) for text in row["captions"])
            per_combo = Counter((o["colour"], o["shape"]) for o in row["objects"])
            assert all(o["count"] == per_combo[(o["colour"], o["shape"])] for o in row["objects"])
    assert read_rows(out / "train") != read_rows(out / "eval")


def test_corpus_refuses_bad_sizes_and_foreign_folders(tmp_path):
    import pytest

    from tasks.corpora.scenes import generate_scenes_corpus

    with pytest.raises(ValueError, match="n_train >= 1"):
        generate_scenes_corpus(tmp_path / "a", -1, 1, 1)
    with pytest.raises(ValueError, match="at least 32 px"):
        generate_scenes_corpus(tmp_path / "a", 1, 1, 1, size=0)
    (tmp_path / "b" / "train").mkdir(parents=True)
    (tmp_path / "b" / "train" / "my_notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="my_notes.txt"):
        generate_scenes_corpus(tmp_path / "b", 1, 0, 0, size=32)
    assert (tmp_path / "b" / "train" / "my_notes.txt").read_text() == "keep me"
    generate_scenes_corpus(tmp_path / "c", 2, 1, 1, size=32)
    generate_scenes_corpus(tmp_path / "c", 2, 1, 1, size=32)  # our own output is regenerated
