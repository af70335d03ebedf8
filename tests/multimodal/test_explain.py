"""Explanations (`model.explain`, `--explain`) on tiny random models: words and offsets, completeness of the
integrated gradients, caption heat maps, word timestamps, the HTML and PNG files, the CLI, bad input, and a
deletion test on a model trained here to rely on one keyword."""

import io
import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import multimodal as mm
from multimodal.config import load_config
from multimodal.explain import baseline_ids
from multimodal.explanations import CaptionExplanation, SpeechExplanation, TagExplanation, TextExplanation, use_color
from multimodal.text_heads import HeadCollator
from tasks import get_task
from tasks.ner import split_words

from .test_text_cli import ROOT, run, tiny_text_model
from .tiny_text_backbones import build as build_backbone

NAMES = ("Maria Lopez", "John Smith", "Anna Berg")
FILLERS = "the cat sat on mat it rained all day sun is shining cold wind blows apples are sweet mango was juicy".split()
KEYWORDS = {"banana": "fruit", "snow": "weather"}  # the one word that decides the label of the deletion test's texts


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = tiny_text_model(tmp_path_factory.mktemp("cls"), "gpt2", ["heads.classify.labels=[fruit, weather, other]"])
    return path, mm.load(path)


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    """A tiny BERT tagger trained here for 40 steps to tag the two-word names of NAMES as PER among filler words."""
    root = tmp_path_factory.mktemp("tag")
    torch.manual_seed(0)  # the tiny model's initial weights: the same every run
    model = mm.load(tiny_text_model(root, "bert", ["heads.tag.labels=[O, B-PER, I-PER]", "heads.tag.dropout=0.0",
                                                   "training.backbone.mode=full"]))
    rng = random.Random(0)
    rows = []
    for _ in range(640):
        words, name = rng.sample(FILLERS, rng.randint(3, 6)), rng.choice(NAMES).split()
        at = rng.randint(0, len(words))
        words[at:at] = name
        tags = ["O"] * len(words)
        tags[at:at + 2] = ["B-PER", "I-PER"]
        text = " ".join(words)
        rows.append({"text": text, "spans": split_words(text), "tags": tags})
    train_steps(model, rows, "ner", 40)
    return model.save(root / "trained"), model


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    path = tmp_path_factory.mktemp("cap") / "model"
    mm.build(ROOT / "configs/tiny.yaml", ["encoders.audio=null"]).save(path)
    return path, mm.load(path)


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    image = Image.new("RGB", (32, 32), "white")
    ImageDraw.Draw(image).rectangle((0, 0, 12, 12), fill="red")
    path = tmp_path_factory.mktemp("img") / "square.png"
    image.save(path)
    return path


def check_files(page, png):
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "</html>" in text
    assert "<script" not in text and "http" not in text  # self-contained: nothing fetched
    with Image.open(png) as image:
        image.verify()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_words_offsets_and_completeness(classifier, tmp_path):
    _, model = classifier
    texts = ["apples are sweet, said María!", "it rained all day", "hi"]
    explanations = model.explain(texts)
    predictions = model.classify(texts)
    for e, p in zip(explanations, predictions):
        assert isinstance(e, TextExplanation) and e.label == p.label
        assert e.score == pytest.approx(p.probabilities[p.label], abs=1e-5)
        assert e.words and all(e.text[w.start:w.end] == w.word for w in e.words)
        assert [w.start for w in e.words] == sorted(w.start for w in e.words)
        total = sum(w.attribution for w in e.words)
        assert abs(e.convergence_delta) < 1e-2, e.convergence_delta
        assert total == pytest.approx(e.score - e.baseline_score, abs=1e-2)  # completeness: f(x) - f(baseline)
    assert [w.word for w in explanations[0].words] == ["apples", "are", "sweet", ",", "said", "María", "!"]
    # the baseline score is the model's own on the baseline text (special tokens kept, the rest pad)
    enc = model.tokenizer(texts[1], return_tensors="pt", return_special_tokens_mask=True)
    base = baseline_ids(model.tokenizer, enc.input_ids, enc.special_tokens_mask)
    with torch.no_grad():
        logits = model(input_ids=base, attention_mask=torch.ones_like(base), head="classify").head_logits
    label = model.config.heads.classify.labels.index(explanations[1].label)
    assert explanations[1].baseline_score == pytest.approx(float(logits.softmax(-1)[0, label]), abs=1e-5)
    single = model.explain("it rained all day", target="other")
    assert single.label == "other" and single.score == pytest.approx(predictions[1].probabilities["other"], abs=1e-5)


def test_terminal_html_and_png(classifier, tmp_path, monkeypatch):
    _, model = classifier
    e = model.explain("the mango was juicy")
    plain, coloured = e.to_terminal(color=False), e.to_terminal(color=True)
    assert "\x1b[" not in plain and "the mango was juicy" in plain and e.label in plain
    assert "\x1b[" in coloured
    tty = io.StringIO()
    tty.isatty = lambda: True
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(tty) and not use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(tty)
    page, png = e.save(tmp_path / "out", "0")
    check_files(page, png)
    assert "mango" in page.read_text()


def test_bad_input_is_named(classifier, captioner):
    _, model = classifier
    with pytest.raises(ValueError, match="input 1 is a int"):
        model.explain(["fine", 7])
    with pytest.raises(ValueError, match="input 1 is an empty text"):
        model.explain(["fine", "  "])
    with pytest.raises(ValueError, match=r"target 'sunshine' of input 0 is not one of the model's labels"):
        model.explain("fine", target="sunshine")
    with pytest.raises(ValueError, match="2 targets for 1 inputs"):
        model.explain(["fine"], target=["fruit", "other"])
    _, cap = captioner
    with pytest.raises(ValueError, match="input 0 is a int"):
        cap.explain([3], task="caption")
    with pytest.raises(ValueError, match="missing.png"):
        cap.explain("missing.png")
    with pytest.raises(ValueError, match="no classify or tag head"):
        cap.explain("a text")


def test_entities_each_explained(tagger, tmp_path):
    _, model = tagger
    text = "the cat sat on John Smith it rained all day on Anna Berg"  # no punctuation: training had none
    e = model.explain(text)
    found = model.tag(text)
    assert isinstance(e, TagExplanation) and [x.entity for x in e.entities] == found
    assert [x.text for x in found] == ["John Smith", "Anna Berg"], found
    for x in e.entities:
        assert x.label == x.entity.label == "PER"
        assert all(text[w.start:w.end] == w.word for w in x.words)
        assert sum(w.attribution for w in x.words) == pytest.approx(x.score - x.baseline_score, abs=2e-2)
        top = max(x.words, key=lambda w: w.attribution)
        assert x.entity.start <= top.start and top.end <= x.entity.end, (top, x.entity)  # the name's own words
    assert "John Smith" in e.to_terminal(color=False)
    check_files(*e.save(tmp_path, "0"))
    none_found = TagExplanation("no one here", [])
    assert "(no entities)" in none_found.to_terminal() and none_found.png_bytes()[:4] == b"\x89PNG"


def test_caption_heatmaps_add_up_to_the_log_probability_change(captioner, square, tmp_path):
    """A word's heat map, summed over the adapter's tokens, is log P(word | image tokens) - log P(word | every image
    token replaced by their mean), up to the integration's error."""
    _, model = captioner
    e = model.explain(square, target="a red square", steps=16)
    assert isinstance(e, CaptionExplanation) and e.caption == "a red square" and e.file == str(square)
    assert [w.word for w in e.words] == ["a", "red", "square"] and [w.content for w in e.words] == [False, True, True]
    grid = model.encoders["image"].grid_size
    assert all(w.heatmap.shape == grid for w in e.words) and e.image.shape == (32, 32, 3)
    full = _word_log_probs(model, square, "a red square", mean_tokens=False)
    mean = _word_log_probs(model, square, "a red square", mean_tokens=True)
    cells_per_token = model.adapters["image"].config.factor ** 2  # pixel shuffle: 2 x 2 cells share a token
    for w, lp_full, lp_mean in zip(e.words, full, mean):
        assert w.probability == pytest.approx(np.exp(lp_full), rel=1e-3)
        assert w.baseline_probability == pytest.approx(np.exp(lp_mean), rel=1e-3)
        change = lp_full - lp_mean
        assert abs(change) > 1e-3, "the tiny model's words depend on the image, so the sum is checked"
        assert w.heatmap.sum() / cells_per_token == pytest.approx(change, abs=0.05 * abs(change) + 1e-4)
        assert abs(w.convergence_delta) <= 0.05 * abs(change) + 1e-4
    generated = model.explain(square)  # its own caption
    assert [w.word for w in generated.words] == [generated.caption[w.start:w.end] for w in generated.words]
    assert e.to_terminal().startswith(f"{square}: a red square")
    check_files(*e.save(tmp_path, "0"))


def _word_log_probs(model, image, caption, mean_tokens):
    """Each caption word's log-probability after the prompt, the image tokens as they are or all set to their mean."""
    from multimodal.model import IGNORE_INDEX
    from multimodal.processor import Example, Processor

    batch = Processor(model)([Example(get_task("caption").prompt, target=caption, images=[image])])
    labels = batch.pop("labels")[0]
    featureless = lambda m, a, out: (out[0].mean(1, keepdim=True).expand_as(out[0]), out[1])  # noqa: E731
    hook = model.adapters["image"].register_forward_hook(featureless) if mean_tokens else None
    with torch.no_grad():
        log_probs = model(**batch, return_logits=True).logits[0].float().log_softmax(-1)
    if hook:
        hook.remove()
    positions = (labels != IGNORE_INDEX).nonzero().flatten().tolist()[:-1]  # the caption's tokens, not EOS
    words = model.tokenizer(caption, add_special_tokens=False, return_offsets_mapping=True)
    out = {}
    for p, (_, end) in zip(positions, words.offset_mapping):
        word = len(caption[:end].split()) - 1  # the word the token ends in
        out[word] = out.get(word, 0.0) + float(log_probs[p - 1, labels[p]])
    return [out[i] for i in sorted(out)]


def test_speech_word_timestamps(tmp_path):
    model = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "encoders.image=null",
                                                  "backbone.overrides.initializer_range=0.5"])
    t = np.arange(32000) / 16000
    wave = (0.2 * np.sin(2 * np.pi * 300 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    e = model.explain(wave, sample_rate=16000)
    assert isinstance(e, SpeechExplanation) and [w.text for w in e.words] == e.text.split()
    assert all(0 <= w.start_s <= w.end_s <= 2.0 + 1e-6 for w in e.words)
    assert e.text, "the tiny random LM writes something for 2 s of tone"
    assert e.words[0].text in e.to_terminal(color=False)
    check_files(*e.save(tmp_path, "0"))


def test_cli_explain_writes_a_page_and_a_picture_per_input(classifier, tagger, captioner, square, tmp_path, capsys):
    path, _ = classifier
    code, out, err = run(capsys, "classify", "apples are sweet", "it rained", "--model", path, "--explain", tmp_path / "c")
    assert code == 0, err
    assert "apples are sweet" in out and str(tmp_path / "c") in out
    for n in (0, 1):
        check_files(tmp_path / f"c/{n}.html", tmp_path / f"c/{n}.png")
    code, out, err = run(capsys, "classify", "apples", "--model", path, "--explain", tmp_path / "j", "--format", "json")
    assert code == 0 and out.startswith("{") and len(out.splitlines()) == 1 and "apples" in err  # stdout stays JSON
    path, _ = tagger
    code, out, err = run(capsys, "tag", "we met Anna Berg", "--model", path, "--explain", tmp_path / "t")
    assert code == 0 and "Anna Berg" in out, err
    check_files(tmp_path / "t/0.html", tmp_path / "t/0.png")
    path, _ = captioner
    code, out, err = run(capsys, "caption", square, "--model", path, "--explain", tmp_path / "i")
    assert code == 0, err
    check_files(tmp_path / "i/0.html", tmp_path / "i/0.png")
    code, _, err = run(capsys, "classify", "x", "--labels", "a,b", "--model", classifier[0], "--explain", tmp_path / "z")
    assert code == 2 and "--explain" in err


def train_steps(model, rows, task, steps, batch_size=16, lr=3e-3):
    """A few plain AdamW steps of the model's head task on rows (dicts as the task's examples)."""
    collate = HeadCollator.for_model(model, get_task(task))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for step in range(steps):
        batch = collate(rows[batch_size * step: batch_size * (step + 1)])
        batch.pop("references")
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    model.eval()


def keyword_texts(n, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.sample(FILLERS, rng.randint(3, 6))
        keyword = list(KEYWORDS)[i % 2]
        words.insert(rng.randint(0, len(words)), keyword)
        rows.append({"text": " ".join(words), "label": KEYWORDS[keyword]})
    return rows


def without(text, word):
    return " ".join((text[:word.start] + text[word.end:]).split())


def test_deletion_the_top_word_moves_the_prediction_more_than_a_random_word(tmp_path):
    """A tiny BERT trained here for 30 steps on texts whose label one keyword decides: removing the top-attributed
    word must lower the predicted label's probability far more than removing a random word."""
    backbone = build_backbone("bert", tmp_path / "bert")
    config = load_config(ROOT / "configs/tiny.yaml", [
        f"backbone.name={backbone}", "backbone.kind=encoder", "backbone.overrides={}", "encoders.image=null",
        "encoders.audio=null", "training.backbone.mode=full", "heads.classify.labels=[fruit, weather]",
        "heads.classify.dropout=0.0"])
    torch.manual_seed(0)  # the tiny model's initial weights: the same every run
    model = mm.build(config)
    train_steps(model, keyword_texts(480, seed=0), "classify_head", 30)
    texts = [r["text"] for r in keyword_texts(20, seed=1)]
    assert sum(p.label == KEYWORDS[k] for p, t in zip(model.classify(texts), texts) for k in KEYWORDS
               if k in t.split()) >= 16, "the model learned the keyword"
    explanations = model.explain(texts)
    top_drops, random_drops, top_is_keyword = [], [], 0
    for e in explanations:
        top = max(e.words, key=lambda w: w.attribution)
        top_is_keyword += top.word in KEYWORDS
        others = [without(e.text, w) for w in e.words if w is not top]
        after = model.classify([without(e.text, top), *others])
        top_drops.append(e.score - after[0].probabilities[e.label])
        random_drops.append(np.mean([e.score - p.probabilities[e.label] for p in after[1:]]))  # expected over words
    assert top_is_keyword >= 16, top_is_keyword  # shuffled attributions: about 1 word in 6, ~3
    assert np.mean(top_drops) > np.mean(random_drops) + 0.2, (np.mean(top_drops), np.mean(random_drops))
