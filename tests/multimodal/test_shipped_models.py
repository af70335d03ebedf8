"""The models shipped in this repository: whole, within the budget, carded, carried by a wheel, and working."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import multimodal as mm
from multimodal import shipped

ROOT = Path(__file__).resolve().parents[2]
CARD_SECTIONS = ("## Model details", "## Intended use and limits", "## Training data", "## Training procedure",
                 "## Evaluation", "## Licences")


def test_at_least_one_model_ships_and_the_task_defaults_name_real_tasks():
    from tasks import TASKS

    assert "sentiment-en" in shipped.names()
    for name in shipped.names():
        assert shipped.read_manifest(name).task in TASKS


@pytest.mark.parametrize("name", shipped.names())
def test_every_recorded_file_matches_its_hash(name):
    folder = shipped.verified_dir(name)
    recorded = set(shipped.read_manifest(name).files)
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {shipped.CARD, shipped.MANIFEST}
    assert present == recorded, f"files not recorded in the manifest: {present - recorded}"


@pytest.mark.parametrize("name", shipped.names())
def test_every_card_has_the_model_card_sections_and_its_headline_figure(name):
    card = (shipped.SHIPPED_DIR / name / shipped.CARD).read_text(encoding="utf-8")
    for section in CARD_SECTIONS:
        assert section in card, f"{name}'s card lacks '{section}'"
    h = shipped.read_manifest(name).headline
    figure = f"{h['value']:.3f} [{h['low']:.3f}, {h['high']:.3f}]"
    assert figure in card, f"{name}'s card does not give its test figure {figure}"
    assert f"{h['n_examples']:,}" in card  # the size of the test split it was read on


def test_all_shipped_weights_fit_the_budget():
    assert 0 < shipped.total_weight_bytes() <= shipped.BUDGET_BYTES


def test_weights_are_stored_in_half_precision():
    from safetensors import safe_open

    for name in shipped.names():
        with safe_open(shipped.SHIPPED_DIR / name / "model.safetensors", "pt") as f:
            dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}
        assert dtypes <= {"BF16", "F16", "I64"}, (name, dtypes)


def test_a_non_editable_wheel_carries_the_shipped_models(tmp_path):
    """`pip install .` must carry the models, not only an editable checkout."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("multimodal-*.whl"))
    members = set(zipfile.ZipFile(wheel).namelist())
    for name in shipped.names():
        for rel in [*shipped.read_manifest(name).files, shipped.MANIFEST, shipped.CARD]:
            assert f"multimodal/shipped/{name}/{rel}" in members, rel


@pytest.mark.pretrained
def test_the_shipped_sentiment_model_reads_clear_opinions():
    model = mm.load("sentiment-en")
    out = model.classify(["A moving, beautifully acted film that stays with you.",
                          "Dull, overlong and badly written; I was bored throughout."])
    assert [p.label for p in out] == ["positive", "negative"]
    assert out[0].probabilities["positive"] > 0.8 and out[1].probabilities["negative"] > 0.8


@pytest.mark.pretrained
def test_classify_without_model_uses_the_shipped_default(capsys):
    from multimodal.cli import main

    code = main(["classify", "What a wonderful, funny film.", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0 and re.search(r'"label": "positive"', out), out


@pytest.mark.pretrained
def test_the_shipped_speech_model_transcribes_an_unheard_voice_with_word_times():
    """flite's rms is a test-only speaker: never heard in training, nor used for a choice."""
    from tasks.corpora.voices import TEST_ONLY_SPEAKERS, VoiceUtterance, engine_missing, synthesize
    from tasks.metrics import wer

    if engine_missing("flite"):
        pytest.skip(engine_missing("flite"))
    assert "flite-rms" in TEST_ONLY_SPEAKERS
    sentences = ["the weather was warm and the children played in the garden all afternoon",
                 "please call me back when you have time to talk about the new house"]
    import numpy as np

    speech = [synthesize(VoiceUtterance(s, "flite-rms", 1.0, None, 0)) for s in sentences]
    pause = np.zeros(8000, dtype=np.float32)
    audio = np.concatenate([speech[0], pause, speech[1], pause])
    second_starts_s = (len(speech[0]) + len(pause)) / 16000
    model = mm.load("speech-en")
    assert model.decoding["decoder"] == "ctc" and Path(model.decoding["lm"]).is_file()
    result = model.transcribe(audio, sample_rate=16000, word_timestamps=True)
    assert wer([" ".join(sentences)], [result.text]) <= 0.5, result.text
    words = [w for s in result.segments for w in s.words]
    assert [w.text for w in words] == result.text.split()
    starts = [w.start_s for w in words]
    assert starts == sorted(starts) and words[-1].end_s <= len(audio) / 16000 + 1e-6
    first, second = set(sentences[0].split()) - set(sentences[1].split()), set(sentences[1].split()) - set(sentences[0].split())
    heard = [(w, w.text in second) for w in words if w.text in first | second]
    assert sum(in_second for _, in_second in heard) >= 3 and sum(not in_second for _, in_second in heard) >= 3
    for word, in_second in heard:  # each sentence's words are timed within that sentence
        assert (word.start_s >= second_starts_s - 0.5) if in_second else (word.end_s <= second_starts_s), word
