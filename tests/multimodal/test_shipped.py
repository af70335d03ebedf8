"""Shipped models on a tiny classifier: ship (bf16, test-split score), load by name, integrity, budget, the
one resolver behind every command's --model, and decoding settings that travel with a model."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import multimodal as mm
from multimodal import shipped
from multimodal.checkpoint import CheckpointError
from multimodal.cli import main
from multimodal.resolve import decoding_settings
from multimodal.shipped import ShippedModelError, ship

from .corpora import text_file
from .test_text_cli import tiny_text_model

TEXTS = ["apples are sweet", "it rained all day", "the mango was juicy"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return tiny_text_model(tmp_path_factory.mktemp("ship"), "gpt2",
                           ["heads.classify.labels=[fruit, weather]", "data.task=classify_head"])


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """An empty folder of shipped models standing in for the package's."""
    folder = tmp_path / "shipped"
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    monkeypatch.setattr(shipped, "DEFAULT_MODELS", {**shipped.DEFAULT_MODELS, "classify": "tiny-cls"})
    return folder


def _ship(checkpoint, root, tmp_path, **kwargs):
    card = tmp_path / "card.md"
    card.write_text("# tiny-cls\n")
    data = text_file(tmp_path / "test.jsonl")
    return ship(checkpoint, "tiny-cls", data, card=card, root=root, **kwargs)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_ship_stores_bf16_weights_scores_them_and_loads_by_name(checkpoint, root, tmp_path):
    manifest = _ship(checkpoint, root, tmp_path)
    folder = root / "tiny-cls"
    weights = load_file(folder / "model.safetensors")
    assert weights and all(t.dtype == torch.bfloat16 for t in weights.values() if t.is_floating_point())
    assert (folder / "README.md").read_text() == "# tiny-cls\n"
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk["files"]["model.safetensors"]["sha256"] == shipped.sha256(folder / "model.safetensors")
    assert "README.md" not in on_disk["files"]  # the card may be edited; the weights may not
    h = manifest.headline
    assert h["metric"] == "accuracy" and h["low"] <= h["value"] <= h["high"] and h["n_examples"] == 24
    assert manifest.task == "classify_head" and manifest.weight_bytes == (folder / "model.safetensors").stat().st_size

    original, by_name = mm.load(checkpoint), mm.load("tiny-cls")
    for a, b in zip(original.classify(TEXTS), by_name.classify(TEXTS)):
        for label in a.probabilities:  # bf16 weights: close to the fp32 model, not bit-equal
            assert a.probabilities[label] == pytest.approx(b.probabilities[label], abs=0.02)


def test_a_changed_or_missing_file_is_an_error_naming_model_and_file(checkpoint, root, tmp_path):
    _ship(checkpoint, root, tmp_path)
    weights = root / "tiny-cls" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the tensor data
    weights.write_bytes(bytes(data))
    with pytest.raises(ShippedModelError, match=r"'tiny-cls': file model.safetensors does not match its recorded sha256"):
        mm.load("tiny-cls")
    weights.unlink()
    with pytest.raises(ShippedModelError, match=r"'tiny-cls': file model.safetensors is missing"):
        mm.load("tiny-cls")


def test_a_model_is_replaced_only_when_it_improves_and_within_the_budget(checkpoint, root, tmp_path, monkeypatch):
    first = _ship(checkpoint, root, tmp_path)
    with pytest.raises(ValueError, match="replaced only when it improves"):
        _ship(checkpoint, root, tmp_path)
    assert shipped.read_manifest("tiny-cls", root).files == first.files  # the refused one left nothing behind
    monkeypatch.setattr(shipped, "BUDGET_BYTES", first.weight_bytes - 1)
    with pytest.raises(ValueError, match="over the 0 MB budget"):
        _ship(checkpoint, root, tmp_path, force=True)
    assert sorted(p.name for p in root.iterdir()) == ["tiny-cls"]  # no temporary folder left


def test_ship_refuses_decoding_settings_the_task_does_not_read(checkpoint, root, tmp_path):
    with pytest.raises(ValueError, match=r"\['num_beams'\] do not apply to task 'classify_head'"):
        _ship(checkpoint, root, tmp_path, decoding={"num_beams": 3})


def test_decoding_settings_fill_what_the_caller_left_unset():
    class Model:
        decoding = {"num_beams": 3, "decoder": "ctc"}

    assert decoding_settings(Model(), "caption", num_beams=None, max_new_tokens=None) == {"num_beams": 3}
    assert decoding_settings(Model(), "caption", num_beams=1, max_new_tokens=20) == {"num_beams": 1, "max_new_tokens": 20}
    # a setting of another task is not taken, even when its name matches
    assert decoding_settings(Model(), "transcribe", decoder=None, lexicon=None) == {"decoder": "ctc"}
    assert decoding_settings(Model(), "caption", num_beams=None, decoder=None) == {"num_beams": 3}


def test_models_lists_and_classify_uses_the_default_shipped_model(checkpoint, root, tmp_path, capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "no shipped models" in out
    _ship(checkpoint, root, tmp_path)
    code, out, _ = run(capsys, "models")
    assert code == 0 and "tiny-cls" in out and "classify_head" in out and "accuracy" in out, out
    code, out, _ = run(capsys, "models", "--format", "json")
    assert json.loads(out)["default_for"] == "classify"
    code, out, err = run(capsys, "classify", "apples are sweet", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["label"] in {"fruit", "weather"}
    code, out, _ = run(capsys, "evaluate", "--model", "tiny-cls", "--data", text_file(tmp_path / "e.jsonl"),
                       "--intervals", "--format", "json")
    metrics = json.loads(out)
    assert code == 0 and metrics["accuracy_low"] <= metrics["accuracy"] <= metrics["accuracy_high"]


def test_every_command_resolves_a_run_dir_to_its_best_checkpoint(checkpoint, tmp_path, capsys):
    """The README's `classify --model runs/demo` took the run dir for a backbone name; now one resolver serves all."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best").symlink_to(checkpoint, target_is_directory=True)
    code, out, err = run(capsys, "classify", "apples are sweet", "--model", run_dir, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["label"] in {"fruit", "weather"}


@pytest.mark.parametrize("argv, message", [
    (["transcribe", "x.wav"], r"`transcribe` without --model uses the shipped model 'speech-en', which is not shipped yet"),
    (["caption", "x.png"], r"uses the shipped model 'caption-en', which is not shipped yet"),
    (["transcribe", "x.wav", "--model", "no-such-model"], r"model 'no-such-model' is neither a checkpoint dir, a run dir "
                                                          r"nor a shipped model \(shipped: "),
    (["caption", "x.png", "--model", "{folder}"], r"is not a multimodal checkpoint: config.yaml is missing"),
])
def test_a_model_that_cannot_be_resolved_is_one_clear_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "none")
    code, _, err = run(capsys, *[a.format(folder=tmp_path) for a in argv])
    assert code == 2 and len(err.strip().splitlines()) == 1 and __import__("re").search(message, err), err


def test_mm_load_raises_checkpoint_error_for_an_unknown_name(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="shipped: none yet"):
        mm.load("speech-xx")


def test_model_methods_decode_with_the_stored_settings_unless_given(monkeypatch):
    import multimodal.caption
    import multimodal.transcribe

    seen = {}

    def record(name):
        def fake(model, sources, **kwargs):
            seen[name] = kwargs
            return [None]
        return fake

    monkeypatch.setattr(multimodal.caption, "caption", record("caption"))
    monkeypatch.setattr(multimodal.transcribe, "transcribe", record("transcribe"))

    class Model:
        decoding = {"num_beams": 3, "decoder": "ctc", "rescore": True}

    mm.MultimodalModel.caption(Model(), "x.png")
    assert seen["caption"]["num_beams"] == 3 and "max_new_tokens" not in seen["caption"]
    mm.MultimodalModel.caption(Model(), "x.png", num_beams=1)
    assert seen["caption"]["num_beams"] == 1
    mm.MultimodalModel.transcribe(Model(), "x.wav", rescore=False)
    assert seen["transcribe"]["decoder"] == "ctc" and seen["transcribe"]["rescore"] is False


def test_init_from_takes_a_shipped_name_and_a_run_dir(checkpoint, root, tmp_path):
    from multimodal.warm_start import init_from
    from multimodal.resolve import checkpoint_dir

    _ship(checkpoint, root, tmp_path)
    assert checkpoint_dir("tiny-cls") == root / "tiny-cls"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last").symlink_to(checkpoint, target_is_directory=True)
    assert checkpoint_dir(run_dir) == run_dir / "last"
    fresh = mm.build(mm.load(checkpoint).config)
    copied = init_from(fresh, checkpoint_dir("tiny-cls"))
    assert any(name.startswith("heads.classify") for name in copied)
    shipped_head = mm.load("tiny-cls").heads["classify"].state_dict()
    for key, value in fresh.heads["classify"].state_dict().items():
        torch.testing.assert_close(value, shipped_head[key])


def test_the_ship_command_records_how_it_was_called_and_refuses_a_bad_setting(checkpoint, root, tmp_path, capsys):
    data = text_file(tmp_path / "test.jsonl")
    card = tmp_path / "card.md"
    card.write_text("# tiny\n")
    code, _, err = run(capsys, "ship", checkpoint, "--name", "tiny-cls", "--test", data, "--decoding", "num_beams")
    assert code == 2 and "--decoding 'num_beams': write KEY=VALUE" in err, err
    code, out, err = run(capsys, "ship", checkpoint, "--name", "tiny-cls", "--test", data, "--card", card)
    assert code == 0 and "shipped 'tiny-cls'" in out and "on 24 test examples" in out, err
    command = shipped.read_manifest("tiny-cls").headline["command"]
    assert command.startswith("multimodal ship ") and "--name tiny-cls --test " in command
    code, _, err = run(capsys, "ship", checkpoint, "--name", "../x", "--test", data)
    assert code == 2 and "must be a plain folder name" in err


def test_ship_keeps_a_run_time_setting_and_refuses_one_that_changes_the_weights(checkpoint, root, tmp_path, capsys):
    data = text_file(tmp_path / "test.jsonl")
    code, out, err = run(capsys, "ship", checkpoint, "--name", "tiny-cls", "--test", data,
                         "--set", "heads.classify.threshold=0.7")
    assert code == 0, err
    assert mm.load("tiny-cls").config.heads.classify.threshold == 0.7
    assert mm.load(checkpoint).config.heads.classify.threshold == 0.5  # the checkpoint itself is left alone
    assert "--set heads.classify.threshold=0.7" in shipped.read_manifest("tiny-cls").headline["command"]
    before = shipped.read_manifest("tiny-cls")
    code, _, err = run(capsys, "ship", checkpoint, "--name", "tiny-cls", "--test", data, "--force",
                       "--set", "heads.classify.labels=[fruit,weather,sport]")
    assert code == 2 and "change the model's weights" in err, err
    assert shipped.read_manifest("tiny-cls") == before  # the shipped model is as it was


def test_a_speech_models_word_list_ships_inside_it_and_is_found_by_name(root, tmp_path):
    from .corpora import audio_folder
    from .test_train import ROOT

    asr = tmp_path / "asr"
    mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "data.task=transcribe"]).save(asr)
    data = audio_folder(tmp_path / "clips", n=4)
    words = tmp_path / "elsewhere" / "words.txt"
    words.parent.mkdir()
    words.write_text("hello\nworld\n")
    manifest = ship(asr, "tiny-asr", data, root=root, decoding={"decoder": "ctc", "lexicon": str(words)})
    assert manifest.decoding == {"decoder": "ctc", "lexicon": "decoding/words.txt"}
    assert manifest.files["decoding/words.txt"]["sha256"] == shipped.sha256(words)
    assert manifest.weight_bytes >= words.stat().st_size  # decoding files count towards the budget
    words.unlink()  # the shipped copy is what a user's machine has
    model = mm.load("tiny-asr")
    assert model.decoding["lexicon"] == str(root / "tiny-asr" / "decoding" / "words.txt")
    assert set(model.transcribe(data / "clip_000.wav").text.split()) <= {"hello", "world"}
    with pytest.raises(ValueError, match="no such file"):
        ship(asr, "tiny-asr2", data, root=root, decoding={"lexicon": str(words)})
