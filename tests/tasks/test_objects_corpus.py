"""The object-caption corpus: names from stamp captions and clip-art titles, the split by name, compositing,
captions true of their image, the CLI. A tiny fake package tree stands in for the Debian packages."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tasks.corpora import object_sources
from tasks.corpora.object_names import (
    clipart_stem_name,
    clipart_title_name,
    default_article,
    english_caption,
    head_noun,
    name_key,
    names_mentioned,
    object_named,
    singular,
    stamp_name,
    svg_title,
)
from tasks.corpora.object_sources import (
    CLIPART_PNG,
    CLIPART_SVG,
    PACKAGES,
    SCRATCH_BACKGROUNDS,
    STAMPS,
    TUXPAINT_TEMPLATES,
    dev_photos,
    ensure_sources,
    object_inventory,
    photo_backgrounds,
)
from tasks.corpora.objects import SPLITS, captions, cut_out, generate_objects_corpus, name_groups, where, word_group

COUNTS = {"train": 8, "eval": 3, "test": 3, "heldout": 3, "test_unseen": 3}
STAMP_CAPTIONS = {  # path under the stamps folder -> first line of its .txt
    "animals/birds/owl": "An owl.",
    "vehicles/garbage_truck": "A garbage truck.",
    "animals/hippo": "An hippopotamus.",
    "animals/dog": "A dog.",
    "food/pear": "A ripe pear!",
    "symbols/alphabets/a": "The letter A.",  # a skipped folder
    "household/toilet": "Remember to flush the toilet and wash your hands with soap!",  # not a name
}
CLIPART_TITLES = {  # path under the clip-art folders -> the SVG work's title
    "animals/owls_someone_01": "Owls",
    "animals/cavallo_architetto_franc_01": "Cavallo",
    "animals/lion": "Etiquette Icons",  # a template's title: the file name names it
    "transportation/red_car": "Red Car",
    "animals/dog_head": "Dog Head (B and W)",
    "buildings/house_01": "House",
    "buildings/furniture/chair": "Wooden Chair",
    "animals/cat": "cat",
    "transportation/bus": "Bus",
    "recreation/kite": "Kite",
    "plants/tree": "Tree",
    "shapes/arrow": "Arrow",  # a skipped folder
}
SVG = """<svg xmlns="http://www.w3.org/2000/svg"><metadata><rdf:RDF><cc:Work rdf:about="">
<dc:title>{title}</dc:title><dc:creator><cc:Agent><dc:title>Some Author</dc:title></cc:Agent></dc:creator>
</cc:Work></rdf:RDF></metadata></svg>"""


def _blob(path: Path, colour: tuple[int, int, int], size=(80, 60), opaque_on_white=False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGBA", size, (255, 255, 255, 255 if opaque_on_white else 0))
    ImageDraw.Draw(image).ellipse([8, 8, size[0] - 8, size[1] - 8], fill=(*colour, 255))
    (image.convert("RGB") if opaque_on_white else image).save(path)


def make_sources(root: Path) -> Path:
    """A fake `objects_src` folder: a few stamps, clip art with SVG twins, backgrounds, an empty darknet."""
    rng = np.random.default_rng(0)
    colour = lambda: tuple(int(c) for c in rng.integers(0, 200, 3))  # noqa: E731
    for stem, caption in STAMP_CAPTIONS.items():
        _blob(root / STAMPS / f"{stem}.png", colour())
        (root / STAMPS / f"{stem}.txt").write_text(f"{caption}\naf.utf8=Iets anders.\n")
    (root / STAMPS / "clothes").mkdir(parents=True)
    (root / STAMPS / "clothes/hat.txt").write_text("A hat.\n")  # SVG only: left out
    (root / STAMPS / "clothes/hat.svg").write_text("<svg/>")
    _blob(root / STAMPS / "animals/bee.png", colour(), size=(16, 16))  # too small: left out
    (root / STAMPS / "animals/bee.txt").write_text("A bee.\n")
    for stem, title in CLIPART_TITLES.items():
        _blob(root / CLIPART_PNG / f"{stem}.png", colour(), opaque_on_white=stem.endswith("cat"))
        (root / CLIPART_SVG / f"{stem}.svg").parent.mkdir(parents=True, exist_ok=True)
        (root / CLIPART_SVG / f"{stem}.svg").write_text(SVG.format(title=title))
    for rel in (f"{SCRATCH_BACKGROUNDS}/Nature/beach-malibu.jpg", f"{SCRATCH_BACKGROUNDS}/Outdoors/unknown.jpg",
                f"{TUXPAINT_TEMPLATES}/sheep.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(root / rel)
    for package in PACKAGES:
        (root / package).mkdir(exist_ok=True)
    return root


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return make_sources(tmp_path_factory.mktemp("cache") / "objects_src")


@pytest.fixture(scope="module")
def corpus(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("objects")
    return out, generate_objects_corpus(out, COUNTS, seed=3, size=64, root=sources)


# ---- names ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("caption, expected", [
    ("An owl.", ("owl", "an")),
    ("A ripe, red tomato!", ("ripe red tomato", "a")),
    ("An hippopotamus.", ("hippopotamus", "a")),
    ("Mercury—the planet closest to the Sun.", ("Mercury", "")),
    ("Santa Claus.", ("Santa Claus", "")),
    ("Some blueberries.", ("blueberries", "some")),
    ("The Sun.", ("Sun", "the")),
    ("Confetti.", ("confetti", "")),
    ("Cathedral.", ("cathedral", "a")),
    ("A calculator.  6x7=42", ("calculator", "a")),
    ("A pair of open scissors.", ("pair of open scissors", "a")),
    ("A Sumatran tiger.", ("Sumatran tiger", "a")),
    ("A Canadian 1 cent piece ($.01) called a penny.", None),
    ("Remember to flush the toilet and wash your hands with soap!", None),
    ("A spider playing soccer.", None),
    ("", None),
])
def test_stamp_names(caption, expected):
    assert stamp_name(caption) == expected


def test_english_caption_is_the_first_plain_line():
    assert english_caption("A frog.\naf.utf8='n Padda.\nam.utf8=x\n") == "A frog."
    assert english_caption("\nach.utf8=Nukta\nThe letter E.\n") == "The letter E."


def test_svg_title_is_the_works_not_its_authors():
    assert svg_title(SVG.format(title="Blue Dragonfly")) == "Blue Dragonfly"
    assert svg_title(SVG.format(title="Fish &amp;amp; Chips")) == "Fish & Chips"
    assert svg_title("<svg/>") == ""


@pytest.mark.parametrize("title, expected", [
    ("Blue Dragonfly (B and W)", "blue dragonfly"),
    ("Cavallo", "horse"),
    ("Leone 01", "lion"),
    ("Sedia in legno", "chair"),
    ("bee1", "bee"),
    ("A pig", "pig"),
    ("Simple Evergreen, with highlights", "evergreen"),
    ("RedCar", "red car"),
    ("card", "playing card"),
    ("Lucertola arrotolata", None),  # Italian
    ("Architetto Francesco Rollandin", None),  # an author
    ("Clipart by Nicu Buculei - bee", None),  # the author's template
    ("Etiquette Icons", None),
    ("Menu Clip Art Collection Example 7", None),
    ("Martin Luther King Jr.", None),
])
def test_clipart_title_names(title, expected):
    assert clipart_title_name(title) == expected


def test_clipart_file_names_end_on_a_known_noun():
    nouns = {"wasp", "bee", "server", "lion"}
    assert clipart_stem_name("flying_wasp_gerald_g._02", nouns) == "flying wasp"
    assert clipart_stem_name("bee2_mimooh_01", nouns) == "bee"
    assert clipart_stem_name("leone_01_architetto", nouns) == "lion"
    assert clipart_stem_name("various_servers_01", nouns) is None
    assert clipart_stem_name("farfalla_butterfly_fra1", nouns) is None  # Italian first, then stop


def test_singular_keys_and_heads():
    assert [singular(w) for w in ("boxes", "cherries", "mice", "glasses", "bus", "owls", "leaves", "rhinoceros")] == [
        "box", "cherry", "mouse", "glass", "bus", "owl", "leaf", "rhinoceros"]
    assert name_key("Ladybugs") == name_key("ladybug") == "ladybug"
    assert head_noun("Eiffel tower in Paris") == "tower"
    assert head_noun("garbage trucks") == "truck"


def test_object_named():
    assert object_named("two owls on a beach", "owl")
    assert object_named("An Owl.", "owl")
    assert not object_named("a bowl of soup", "owl")
    assert object_named("some garbage trucks", "garbage truck")
    assert not object_named("a garbage can and a truck", "garbage truck")
    assert names_mentioned("an owl to the left of a garbage truck", ["owl", "garbage truck", "dog"]) == {
        "owl", "garbage truck"}


def test_articles():
    assert [default_article(n) for n in ("owl", "unicorn", "hourglass", "books", "stack of books", "popcorn",
                                         "usb stick", "sun", "lcd monitor", "rhinoceros", "Jupiter")] == [
        "an", "a", "an", "", "a", "", "a", "the", "an", "a", ""]


# ---- inventory and split -------------------------------------------------------------------------------------


def test_inventory_of_the_fake_tree(sources):
    objects = {o.name: o for o in object_inventory(sources)}
    assert set(objects) == {"owl", "garbage truck", "hippopotamus", "dog", "ripe pear", "horse", "lion", "red car",
                            "dog head", "house", "wooden chair", "cat", "bus", "kite", "tree"}
    owl = objects["owl"]  # the stamp "An owl." and the drawing "Owls": one name, the stamp's spelling
    assert owl.phrase == "an owl" and {i.source for i in owl.images} == {"tuxpaint-stamps", "openclipart"}
    assert objects["hippopotamus"].phrase == "a hippopotamus"
    assert all(i.path.is_file() for o in objects.values() for i in o.images)
    places = {b.name: b.place for b in photo_backgrounds(sources)}
    assert places == {"beach-malibu": "on a beach", "unknown": None, "sheep": "in a field"}


def test_split_by_head_noun(sources):
    assert (word_group("truck"), word_group("dog"), word_group("owl")) == ("seen", "unseen-dev", "unseen-test")
    objects = object_inventory(sources)
    by_key = name_groups(objects)
    groups = {o.name: by_key[o.key] for o in objects}
    assert {n for n, g in groups.items() if g == "unseen-dev"} == {"dog", "dog head", "red car"}  # "dog", "car"
    assert {n for n, g in groups.items() if g == "unseen-test"} == {"owl", "ripe pear"}  # "owl", "pear"
    assert name_groups(list(reversed(objects))) == by_key  # by name, not by position


def test_cut_out_drops_a_white_surround():
    image = Image.new("RGB", (40, 30), "white")
    ImageDraw.Draw(image).rectangle([10, 5, 29, 24], fill=(200, 30, 30))
    tile = cut_out(image)
    assert tile.size == (20, 20) and tile.mode == "RGBA"
    assert np.asarray(tile)[..., 3].min() == 255
    ImageDraw.Draw(image).rectangle([0, 0, 39, 29], outline=(0, 0, 0))  # a frame: nothing white touches the border
    assert cut_out(image).size == (40, 30)


# ---- corpus --------------------------------------------------------------------------------------------------


def test_corpus_rows_and_groups(corpus, sources):
    out, summary = corpus
    assert summary["images"] == COUNTS and summary["photo_backgrounds"] == 3
    assert summary["names"] == {"seen": 10, "unseen-dev": 3, "unseen-test": 2}
    names = json.loads((out / "names.json").read_text())
    held_heads = {"dog", "car", "owl", "pear"}  # test_split_by_head_noun
    for split, n in COUNTS.items():
        rows = read_rows(out / split)
        assert len(rows) == n
        for row in rows:
            assert (out / split / row["file_name"]).is_file() and row["text"] in row["captions"]
            objs = [o["name"] for o in row["objects"]]
            assert 1 <= len(objs) == len(set(objs)) <= 3
            assert {o["group"] for o in row["objects"]} == {SPLITS[split]}
            assert set(objs) <= set(names[SPLITS[split]])
            for text in row["captions"]:
                assert names_mentioned(text, objs) == set(objs), text  # every phrasing names every object
                assert not re.search(r"\ban [bcdfgjklmnpqrstvwxyz]|\ba [aeiou]", text), text
                if SPLITS[split] == "seen":
                    assert not set(name_key(text).split()) & held_heads, text
            assert [o["x"] for o in row["objects"]] == sorted(o["x"] for o in row["objects"])


def test_corpus_is_deterministic(corpus, sources, tmp_path):
    out, _ = corpus
    generate_objects_corpus(tmp_path, COUNTS, seed=3, size=64, root=sources)
    for split in COUNTS:
        assert read_rows(tmp_path / split) == read_rows(out / split)
        for row in read_rows(out / split):
            digest = lambda root: hashlib.sha256((root / split / row["file_name"]).read_bytes()).digest()  # noqa: E731
            assert digest(tmp_path) == digest(out)
    assert read_rows(out / "train") != read_rows(out / "eval")
    other = tmp_path / "other"
    generate_objects_corpus(other, {"train": 3}, seed=4, size=64, root=sources)
    assert read_rows(other / "train") != read_rows(out / "train")[:3]


def test_images_are_composited(corpus):
    out, _ = corpus
    for row in read_rows(out / "train"):
        image = Image.open(out / "train" / row["file_name"])
        assert image.size == (64, 64) and image.mode == "RGB"
        for obj in row["objects"]:
            assert 0 < obj["width"] <= 1 and 0 < obj["height"] <= 1
            assert obj["source"] in ("tuxpaint-stamps", "openclipart") and obj["style"] in ("photo", "drawing")


def test_layout_phrases():
    from tasks.corpora.objects import Background, PlacedObject

    def placed(name, x, y):
        return PlacedObject(name, f"a {name}", "openclipart", "", "drawing", "", x, y, 0.2, 0.2, False, 0.0)

    beach = Background("photo", "beach-malibu", "on a beach", "scratch", "")
    texts = captions([placed("truck", 0.8, 0.5), placed("cat", 0.2, 0.5)], beach)
    assert "a cat and a truck on a beach" in texts
    assert "a cat on the left and a truck on the right" in texts and "a cat to the left of a truck" in texts
    assert not any("above" in t for t in texts)
    texture = Background("texture", "", None, "generated", "")
    texts = captions([placed("cat", 0.5, 0.15), placed("truck", 0.52, 0.8)], texture)
    assert "a cat above a truck" in texts and not any("on a" in t for t in texts)
    assert where(placed("cat", 0.1, 0.1)) == "in the top left" and where(placed("cat", 0.5, 0.5)) == "in the centre"


def test_corpus_loads_as_caption_data(corpus):
    from multimodal.data import load_rows
    from tasks.registry import get_task

    out, _ = corpus
    rows = load_rows(out / "train", get_task("caption"))
    assert len(rows) == COUNTS["train"]


def test_corpus_refuses_bad_arguments(sources, tmp_path):
    with pytest.raises(ValueError, match="counts"):
        generate_objects_corpus(tmp_path, {"validation": 3}, root=sources)
    with pytest.raises(ValueError, match="at least"):
        generate_objects_corpus(tmp_path, {"train": 3}, size=16, root=sources)


def test_cli_writes_the_corpus(sources, tmp_path, monkeypatch, capsys):
    from multimodal.cli import main

    monkeypatch.setenv("MULTIMODAL_CACHE", str(sources.parent))
    main(["data", "objects", "--out", str(tmp_path), "--train", "2", "--eval", "1", "--test", "1", "--heldout", "1",
          "--test-unseen", "1", "--size", "64"])
    assert {split: len(read_rows(tmp_path / split)) for split in SPLITS} == {
        "train": 2, "eval": 1, "test": 1, "heldout": 1, "test_unseen": 1}
    assert "unseen-dev 3" in capsys.readouterr().out


def test_set_up_needs_apt(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTIMODAL_CACHE", str(tmp_path))
    monkeypatch.setattr(object_sources.shutil, "which", lambda tool: None)
    with pytest.raises(RuntimeError, match="apt-get"):
        ensure_sources()
    for package in PACKAGES:
        (tmp_path / "objects_src" / package).mkdir(parents=True)
    assert ensure_sources() == tmp_path / "objects_src"  # nothing missing: nothing to fetch


def test_dev_photo_references_name_their_main_object(tmp_path):
    photos = dev_photos(tmp_path)
    assert [p.path.name for p in photos] == [f"{n}.jpg" for n in ("dog", "eagle", "giraffe", "horses", "kite", "person",
                                                                  "scream")]
    for photo in photos:
        assert names_mentioned(photo.caption, photo.main), photo


# ---- the real packages ---------------------------------------------------------------------------------------

REAL = object_sources.sources_dir()


@pytest.mark.skipif(not all((REAL / p).is_dir() for p in PACKAGES), reason="needs the unpacked Debian packages "
                    "(make objects-data)")
def test_real_inventory_counts():
    objects = object_inventory(REAL)
    by_source: dict[str, int] = {}
    for obj in objects:
        for image in obj.images:
            by_source[image.source] = by_source.get(image.source, 0) + 1
    assert 350 <= by_source["tuxpaint-stamps"] <= 700 and 1200 <= by_source["openclipart"] <= 2700, by_source
    assert 700 <= len(objects) <= 1500
    groups = list(name_groups(objects).values())
    assert 0.07 <= (len(groups) - groups.count("seen")) / len(groups) <= 0.14
    assert len(photo_backgrounds(REAL)) == 80
    assert all(p.path.is_file() for p in dev_photos(REAL))
