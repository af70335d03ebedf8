"""Captioning end to end with a tiny model: a scenes + emoji mixture trains, then files are captioned through
the API and the CLI, in any image mode, with a bad file skipped and named."""

import json

import numpy as np
import pytest
from PIL import Image

import multimodal as mm
from multimodal.caption import Caption
from multimodal.cli import main
from multimodal.config import load_config
from multimodal.train import train
from tasks.corpora.emoji import generate_emoji_corpus
from tasks.corpora.emoji_names import EMOJI_FONT_FILE, EMOJI_TEST_FILE
from tasks.corpora.scenes import generate_scenes_corpus

from .test_train import ROOT

needs_emoji = pytest.mark.skipif(
    not (EMOJI_FONT_FILE.is_file() and EMOJI_TEST_FILE.is_file()), reason="fonts-noto-color-emoji / unicode-data missing"
)
TINY_CAPTION = ["data.task=caption", "data.num_workers=0", "training.log_every=2", "training.eval_every=0",
                "data.eval_max_examples=4", "training.max_steps=4", "encoders.audio=null"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("caption_corpora")
    generate_scenes_corpus(root / "scenes", n_train=8, n_eval=2, n_heldout=2, seed=1, size=32)
    generate_emoji_corpus(root / "emoji", n_train=8, n_eval=2, n_heldout=2, seed=1, size=32)
    return root


@pytest.fixture(scope="module")
def trained(corpora, tmp_path_factory):
    run = tmp_path_factory.mktemp("caption_run") / "run"
    config = load_config(ROOT / "configs/tiny.yaml", TINY_CAPTION)
    summary = train(config, run, train_data=[corpora / "scenes/train", corpora / "emoji/train"],
                    eval_data=[corpora / "scenes/eval", corpora / "emoji/eval"], progress=False)
    assert summary["steps"] == 4 and {"cider_d", "bleu4"} <= set(summary["eval"])
    assert summary["eval"]["n_examples"] == 4
    return run / "last"


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    """One file per awkward kind of image, and one that is not an image."""
    d = tmp_path_factory.mktemp("odd")
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    rgba.putpixel((5, 5), (0, 0, 255, 255))
    rgba.save(d / "alpha.png")
    Image.new("RGB", (20, 20), (0, 200, 0)).convert("P").save(d / "palette.gif")
    Image.new("CMYK", (24, 24), (0, 255, 255, 0)).save(d / "cmyk.jpg")
    Image.fromarray(np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)).save(d / "gray16.png")
    Image.new("L", (16, 16), 90).save(d / "gray.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.new("RGB", (40, 20), (200, 10, 10)).save(d / "rotated.jpg", exif=exif.tobytes())
    Image.new("RGB", (5000, 300), (10, 10, 200)).save(d / "huge.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return d


@needs_emoji
def test_mixture_trains_and_captions_through_the_api(trained, corpora, odd_images):
    model = mm.load(trained)
    single = model.caption(corpora / "scenes/eval/000000.png")
    assert isinstance(single, Caption) and single.error is None and single.file.endswith("000000.png")
    files = sorted(p for p in odd_images.iterdir() if p.name != "broken.png")
    inputs = [*files, odd_images / "broken.png", Image.new("RGB", (32, 32), "red"), np.zeros((16, 16, 3), np.uint8)]
    results = model.caption(inputs, batch_size=3)
    assert len(results) == len(inputs)
    assert [r.file for r in results[: len(files) + 1]] == [str(p) for p in [*files, odd_images / "broken.png"]]
    assert all(r.error is None and isinstance(r.text, str) for i, r in enumerate(results) if i != len(files))
    broken = results[len(files)]
    assert broken.error and "broken.png" in broken.error and broken.text == ""
    assert results[-1].file is None and results[-2].file is None  # in-memory inputs have no file name


@needs_emoji
def test_batched_greedy_equals_one_by_one_and_beams_run(trained, corpora):
    model = mm.load(trained)
    files = [corpora / "emoji/heldout/000000.png", corpora / "scenes/heldout/000001.png", corpora / "emoji/eval/000001.png"]
    batched = [r.text for r in model.caption(files, batch_size=3)]
    alone = [model.caption(f).text for f in files]
    assert batched == alone  # left padding keeps every row's caption the same
    beams = model.caption(files, num_beams=3, max_new_tokens=5)
    for r in beams:
        assert r.error is None and len(model.tokenizer(r.text, add_special_tokens=False).input_ids) <= 5


def test_model_without_image_encoder_and_bad_options(tmp_path):
    model = mm.build(ROOT / "configs/tiny.yaml", ["encoders.image=null"])
    with pytest.raises(ValueError, match="no image encoder"):
        model.caption(Image.new("RGB", (8, 8)))
    with pytest.raises(ValueError, match="batch_size"):
        mm.build(ROOT / "configs/tiny.yaml").caption([Image.new("RGB", (8, 8))], batch_size=0)


@needs_emoji
def test_cli_json_txt_and_a_bad_file(trained, corpora, odd_images, capsys):
    good = [corpora / "emoji/eval/000000.png", odd_images / "cmyk.jpg"]
    code = main(["caption", str(good[0]), str(odd_images / "broken.png"), str(good[1]), "--model", str(trained),
                 "--format", "json", "--batch-size", "2", "--beams", "2"])
    out, err = capsys.readouterr()
    assert code == 1 and "broken.png" in err and "Traceback" not in err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["file"] for r in rows] == [str(p) for p in good] and all(isinstance(r["text"], str) for r in rows)
    assert main(["caption", str(good[0]), "--model", str(trained)]) == 0
    out, _ = capsys.readouterr()
    assert out.count("\n") == 1 and "\t" not in out  # one file: just its caption
    assert main(["caption", str(odd_images / "nope.png"), "--model", str(trained)]) == 1
    assert "nope.png" in capsys.readouterr().err


def test_cli_writes_scenes_with_captions_in_reading_order(tmp_path, capsys):
    from tasks.corpora.scenes import parse_caption

    out = tmp_path / "scenes"
    assert main(["data", "scenes", "--out", str(out), "--train", "12", "--eval", "0", "--heldout", "0",
                 "--size", "32", "--object-order", "reading"]) == 0
    assert "train 12" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "train/metadata.jsonl").read_text().splitlines()]
    for row in rows:
        first_cell = {}
        for obj in row["objects"]:  # reading order: top row first, then left to right, on the 3x3 grid
            key = (obj["count"], obj["colour"], obj["shape"])
            first_cell[key] = min(first_cell.get(key, (9, 9)), (int(obj["y"] * 3), int(obj["x"] * 3)))
        for text in row["captions"][:5]:  # the listing phrasings
            assert parse_caption(text) == sorted(first_cell, key=first_cell.get), text
    assert any(len(row["captions"][0].split(" and ")) > 1 for row in rows)  # some scenes have several groups


def test_cli_takes_every_corpus_object_order():
    # the CLI spells the choices out so that `--help` does not import the corpus; they must not drift apart
    from multimodal.cli import parser
    from tasks.corpora.scenes import OBJECT_ORDERS

    for order in OBJECT_ORDERS:
        assert parser().parse_args(["data", "scenes", "--out", "x", "--object-order", order]).object_order == order
    with pytest.raises(SystemExit):
        parser().parse_args(["data", "scenes", "--out", "x", "--object-order", "alphabetical"])


def test_image_tags_follow_the_image_tokens_and_train(corpora, tmp_path):
    from multimodal.build import build
    from multimodal.processor import TAGS_TEXT, Example, Processor

    config = load_config(ROOT / "configs/tiny.yaml", [*TINY_CAPTION, "encoders.image.tags=2"])
    model = build(config)
    processor = Processor(model)
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    batch = processor([Example("<image>\nDescribe the image.", target="a red square", images=[image])])
    tags = model.encoders["image"].tag_names(batch["pixel_values"])[0]
    tag_ids = model.tokenizer(TAGS_TEXT.format(", ".join(tags)), add_special_tokens=False).input_ids
    ids = batch["input_ids"][0].tolist()
    image_id = model.placeholder_ids["image"]
    last_image = max(i for i, t in enumerate(ids) if t == image_id)
    assert ids[last_image + 1 : last_image + 1 + len(tag_ids)] == tag_ids  # the tag text right after the image
    assert (batch["labels"][0, : last_image + 1 + len(tag_ids)] == -100).all()  # read, never learned
    summary = train(config, tmp_path / "run", train_data=corpora / "scenes/train", progress=False)
    assert summary["steps"] == 4
    captions = mm.load(tmp_path / "run").caption([image], max_new_tokens=4)
    assert len(captions) == 1
