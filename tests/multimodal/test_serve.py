"""`multimodal serve` without a browser: the three task functions on a tiny random model, the picker, bad input,
and the page's wiring (tests/browser/ drives the page itself in Chromium)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

pytest.importorskip("gradio", reason="gradio is not installed (requirements.txt); `multimodal serve` needs it")

import multimodal as mm  # noqa: E402
from multimodal import serve, shipped  # noqa: E402
from multimodal.cli import parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RATE = 16000
LABELS = ["positive", "negative"]


def build_tiny_model(directory: Path) -> Path:
    """A saved tiny random model that serves every tab: image and audio encoders, a classify and a tag head."""
    model = mm.build(ROOT / "configs/tiny.yaml", [f"heads.classify.labels=[{', '.join(LABELS)}]",
                                                   "heads.tag.labels=[O, B-PER, I-PER]"])
    return model.save(directory)


def write_inputs(directory: Path) -> dict[str, Path]:
    """An image, a 1.5 s clip, and two broken uploads (bytes that are neither)."""
    rng = np.random.default_rng(0)
    files = {"image": directory / "photo.png", "clip": directory / "clip.wav",
             "bad_image": directory / "broken.png", "bad_clip": directory / "broken.wav"}
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(files["image"])  # (H, W, C)
    sf.write(files["clip"], (0.1 * rng.standard_normal(int(1.5 * SAMPLE_RATE))).astype(np.float32), SAMPLE_RATE)
    files["bad_image"].write_bytes(b"\x89PNG\r\n\x1a\n this is not really a PNG")
    files["bad_clip"].write_bytes(b"RIFF\x00\x00\x00\x00WAVE but nothing after")
    return files


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    return str(build_tiny_model(root / "model")), write_inputs(root), serve.Models()


def test_caption_gives_text_and_one_heat_map_row_per_word(served):
    model, files, models = served
    steps = []
    view = serve.caption_image(models, model, str(files["image"]), lambda f, d: steps.append((f, d)))
    assert isinstance(view.text, str)
    if view.text.strip():  # a random model may say nothing; when it says something, every word has a heat map
        assert isinstance(view.heatmap, Image.Image) and view.heatmap.size[0] > 0
        assert [row[0] for row in view.words] and all(0 <= row[1] <= 1 for row in view.words)
    assert steps and all(0 <= f <= 1 for f, _ in steps) and [f for f, _ in steps] == sorted(f for f, _ in steps)


def test_transcribe_gives_segments_and_subtitle_files(served, tmp_path):
    model, files, models = served
    view = serve.transcribe_audio(models, model, str(files["clip"]), tmp_path)
    assert [Path(f).name for f in view.files] == ["clip.srt", "clip.vtt"]
    assert Path(view.files[1]).read_text().startswith("WEBVTT")
    for start, end, _ in view.segments:
        assert 0 <= start <= end <= 1.5 + 1e-6


def test_text_gives_every_label_attributions_and_entities(served):
    model, _, models = served
    text = "Maria Lopez loved the film"
    view = serve.analyze_text(models, model, text)
    assert set(view.scores) == set(LABELS) and abs(sum(view.scores.values()) - 1) < 1e-5
    assert "Maria" in view.attributions_html and "<span" in view.attributions_html
    for e in view.entities["entities"]:
        assert e["entity"] == "PER" and 0 <= e["start"] < e["end"] <= len(text)
    assert view.entities["text"] == text and not view.notes


@pytest.mark.parametrize("kind, call, message", [
    ("bad_image", "caption", "cannot read image file"),
    ("bad_clip", "transcribe", "cannot read audio file"),
    ("clip", "caption", "cannot read image file"),  # a real file of the other modality
])
def test_bad_uploads_are_value_errors_naming_the_file(served, tmp_path, kind, call, message):
    model, files, models = served
    with pytest.raises(ValueError, match=message) as e:
        if call == "caption":
            serve.caption_image(models, model, str(files[kind]))
        else:
            serve.transcribe_audio(models, model, str(files[kind]), tmp_path)
    assert files[kind].name in str(e.value)


@pytest.mark.parametrize("text, message", [("", "empty"), ("   \n", "empty"), ("x" * (serve.MAX_TEXT_CHARS + 1), "at most")])
def test_bad_texts_are_refused(served, text, message):
    model, _, models = served
    with pytest.raises(ValueError, match=message):
        serve.analyze_text(models, model, text)


def test_a_model_without_the_task_says_so(tmp_path, served):
    _, files, models = served
    text_only = mm.build(ROOT / "configs/tiny.yaml", ["encoders.image=null", "encoders.audio=null",
                                                       "heads.classify.labels=[a, b]"]).save(tmp_path / "text_only")
    with pytest.raises(ValueError, match="has no image encoder, so it cannot caption"):
        serve.caption_image(models, str(text_only), str(files["image"]))
    view = serve.analyze_text(models, str(text_only), "fine words")
    assert set(view.scores) == {"a", "b"} and view.entities["entities"] == []
    assert any("tagging head" in note for note in view.notes)
    assert "Text (sentiment)" in serve.describe(models, str(text_only))


def test_a_missing_path_or_unknown_name_is_a_clear_error(served):
    _, files, models = served
    with pytest.raises(ValueError, match="neither a checkpoint dir"):
        serve.caption_image(models, "/no/such/model", str(files["image"]))


def test_auto_names_each_tasks_model_and_a_missing_one_gracefully(served, monkeypatch):
    _, files, models = served
    monkeypatch.setattr(shipped, "names", lambda root=None: ["sentiment-en"])  # as if only sentiment-en shipped
    values = [value for _, value in serve.picker_choices()]
    assert values[0] == serve.AUTO and "sentiment-en" in values and "caption-en" in values
    assert "(not shipped yet)" in dict((v, k) for k, v in serve.picker_choices())["caption-en"]
    with pytest.raises(ValueError, match="caption-en' is not shipped yet; pick a checkpoint"):
        serve.caption_image(models, serve.AUTO, str(files["image"]))
    assert "not shipped yet" in serve.describe(models, serve.AUTO)


def test_models_are_cached_and_the_oldest_dropped(served, tmp_path):
    model, _, _ = served
    models = serve.Models(max_models=1)
    with models.use(model, "caption") as first:
        pass
    with models.use(model, "tag") as again:
        assert again is first
    other = mm.build(ROOT / "configs/tiny.yaml", ["encoders.audio=null"]).save(tmp_path / "other")
    with models.use(str(other), "caption"):
        pass
    assert list(models._loaded) == [str(other)]


def test_the_page_has_three_tabs_a_picker_and_a_queue(served):
    model, _, models = served
    app = serve.build_app(models, model=model)
    config = app.get_config_file()
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"Caption", "Transcribe", "Text"} <= labels
    assert any(str(c.get("props", {}).get("value")) == model for c in config["components"])
    assert {d["api_name"] for d in config["dependencies"]} >= {"caption", "transcribe", "text"}
    assert app._queue.default_concurrency_limit == serve.CONCURRENCY


def test_errors_become_page_messages_with_the_upload_named_plainly():
    import gradio as gr

    upload = "/tmp/gradio/0123abcd/my <photo>.png"
    with pytest.raises(gr.Error) as e:
        with serve._shown_errors(upload):
            raise ValueError(f"cannot read image file '{upload}': corrupt\nsecond line")
    assert e.value.message == "cannot read image file &#x27;my &lt;photo&gt;.png&#x27;: corrupt"
    with pytest.raises(gr.Error, match="internal error \\(KeyError"):
        with serve._shown_errors():
            raise KeyError("x")


def test_cli_has_serve_with_loopback_default():
    args = parser().parse_args(["serve", "--model", "m", "--port", "8000"])
    assert (args.command, args.model, args.host, args.port) == ("serve", "m", "127.0.0.1", 8000)
