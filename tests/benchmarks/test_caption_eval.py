"""benchmarks/caption_eval.py with a tiny random model: every set scored, latency timed, the grid written."""

import json

import pytest
from PIL import Image

import multimodal as mm
from tasks.corpora.emoji import generate_emoji_corpus
from tasks.corpora.emoji_names import EMOJI_FONT_FILE, EMOJI_TEST_FILE
from tasks.corpora.scenes import generate_scenes_corpus

from ..conftest import ROOT
from . import load_benchmark

pytestmark = pytest.mark.skipif(
    not (EMOJI_FONT_FILE.is_file() and EMOJI_TEST_FILE.is_file()), reason="fonts-noto-color-emoji / unicode-data missing"
)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    generate_scenes_corpus(root / "scenes", n_train=1, n_eval=4, n_heldout=4, seed=2, size=32)
    generate_emoji_corpus(root / "emoji", n_train=1, n_eval=4, n_heldout=4, seed=2, size=32)
    return root


def test_scores_are_right_on_the_references_themselves(corpora):
    bench = load_benchmark("caption_eval")
    scenes = bench.EvalSet("scenes/eval", corpora / "scenes/eval", "scenes", bench.read_rows(corpora / "scenes/eval", 0))
    scenes.hypotheses = [r["text"] for r in scenes.rows]
    assert bench.score(scenes)["scenes_correct"] == 1.0 and bench.score(scenes)["bleu4"] > 0.99
    by_groups = {k: v for k, v in bench.score(scenes).items() if k.startswith("correct_")}
    assert by_groups and set(by_groups.values()) == {1.0}
    assert all(v == 0.0 for k, v in bench.score(scenes).items() if k.startswith("error_"))
    scenes.hypotheses = ["a blue circle"] * len(scenes.rows)
    metrics = bench.score(scenes)
    assert metrics["scenes_correct"] < 1.0
    errors = {k: v for k, v in metrics.items() if k.startswith("error_")}
    assert len(errors) == 5 and sum(errors.values()) == pytest.approx(1.0 - metrics["scenes_correct"])
    # One scene captioned right, the rest wrong: its number of groups alone scores 1 / (scenes with that many).
    scenes.hypotheses = [scenes.rows[0]["text"]] + ["nothing"] * (len(scenes.rows) - 1)
    groups = [min(len({(o["colour"], o["shape"]) for o in r["objects"]}), 3) for r in scenes.rows]
    key = f"correct_{groups[0]}{'+' if groups[0] == 3 else ''}_groups"
    metrics = bench.score(scenes)
    assert metrics[key] == 1 / groups.count(groups[0]) and sum(v for k, v in metrics.items() if k.startswith("correct_")) == metrics[key]
    emoji = bench.EvalSet("emoji/heldout", corpora / "emoji/heldout", "emoji", bench.read_rows(corpora / "emoji/heldout", 0))
    emoji.hypotheses = [r["text"] for r in emoji.rows]
    metrics = bench.score(emoji)
    assert metrics["emoji_named"] == 1.0 and metrics["held_out_emoji_named"] == 1.0
    emoji.hypotheses = ["nothing"] * len(emoji.rows)
    assert bench.score(emoji)["emoji_named"] == 0.0


def test_runs_end_to_end_with_a_tiny_model(corpora, tmp_path, capsys):
    model_dir = tmp_path / "model"
    mm.build(ROOT / "configs/tiny.yaml", ["encoders.audio=null"]).save(model_dir)
    grid, out = tmp_path / "grid.png", tmp_path / "results.json"
    results = load_benchmark("caption_eval").main([
        "--model", str(model_dir), "--scenes", str(corpora / "scenes"), "--emoji", str(corpora / "emoji"),
        "--folder", f"mine={corpora / 'scenes/eval'}", "--batch-size", "4", "--latency-images", "2",
        "--grid", str(grid), "--grid-images", "2", "--json", str(out),
    ])
    printed = capsys.readouterr().out
    assert set(results["sets"]) == {"scenes/eval", "scenes/heldout", "emoji/eval", "emoji/heldout", "mine"}
    for name, metrics in results["sets"].items():
        assert metrics["n_images"] == 4 and 0.0 <= metrics["bleu4"] <= 1.0 and metrics["cider_d"] >= 0.0, name
        assert name in printed
    assert 0.0 <= results["sets"]["scenes/heldout"]["scenes_correct"] <= 1.0
    assert "emoji_named" in results["sets"]["emoji/eval"] and "scenes_correct" not in results["sets"]["mine"]
    assert results["latency"]["ms_per_image_unbatched"] > 0 and results["latency"]["ms_per_image_batched"] > 0
    with Image.open(grid) as image:
        assert image.format == "PNG" and image.width > 400 and image.mode == "P"  # 256 colours: a smaller file
    assert json.loads(out.read_text())["sets"]["emoji/heldout"]["n_images"] == 4


def test_objects_named_counts_each_object_and_each_image():
    bench = load_benchmark("caption_eval")
    rows = [{"objects": [{"name": "owl"}, {"name": "garbage truck"}]}, {"objects": [{"name": "apple"}]},
            {"objects": [{"name": "fire truck"}]}]
    hypotheses = ["an owl on a beach", "two apples", "a truck"]  # "apples" names an apple; "a truck" no fire truck
    metrics = bench.objects_named(rows, hypotheses)
    assert metrics["objects_named"] == pytest.approx(2 / 4) and metrics["images_all_named"] == pytest.approx(1 / 3)
    assert 0.0 <= metrics["objects_named_low"] < 0.5 < metrics["objects_named_high"] <= 1.0
    assert bench.share_interval([True] * 5) == (1.0, 1.0, 1.0)


def test_imagenet_ceiling_counts_names_some_class_name_contains():
    bench = load_benchmark("caption_eval")
    rows = [{"objects": [{"name": "owl"}, {"name": "pear"}]}, {"objects": [{"name": "screwdriver"}]},
            {"objects": [{"name": "bored dog"}]}]
    # "great grey owl" and "screwdriver" are ImageNet classes; no class name holds "pear" or "bored dog"
    assert bench.imagenet_ceiling(rows) == pytest.approx(2 / 4)
