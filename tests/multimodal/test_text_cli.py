"""`multimodal classify`, `tag` and the text corpora commands: input files, output formats, bad input."""

import json
import re
from pathlib import Path

import pytest
import torch

import multimodal as mm
from multimodal.cli import main
from multimodal.config import load_config
from tasks.text_files import read_shots, read_texts

from .corpora import text_file
from .tiny_text_backbones import build as build_backbone

ROOT = Path(__file__).resolve().parents[2]


def tiny_text_model(root: Path, name: str, heads: list[str]) -> Path:
    """A saved (untrained) checkpoint on a tiny backbone with the given heads."""
    backbone = build_backbone(name, root / f"{name}_backbone")
    kind = "causal" if name == "gpt2" else "encoder"
    targets = "[c_attn]" if name == "gpt2" else "[query, value]"
    config = load_config(ROOT / "configs/tiny.yaml", [
        f"backbone.name={backbone}", f"backbone.kind={kind}", "backbone.overrides={}", "encoders.image=null",
        "encoders.audio=null", f"training.backbone.lora_targets={targets}", *heads])
    return mm.build(config).save(root / f"{name}_model")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    return tiny_text_model(tmp_path_factory.mktemp("cls"), "gpt2", ["heads.classify.labels=[fruit, weather, other]"])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_json_keeps_input_order_with_every_probability(classifier, tmp_path, capsys):
    texts = ["a much longer text about the weather and the rain today", "hi", "apples are sweet"]
    file = tmp_path / "in.jsonl"
    file.write_text("".join(json.dumps({"id": i, "text": t, "label": "ignored"}) + "\n" for i, t in enumerate(texts)))
    code, out, _ = run(capsys, "classify", "--file", file, "--model", classifier, "--format", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == texts
    for r in rows:
        assert set(r["probabilities"]) == {"fruit", "weather", "other"}
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-5
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
    code, table, _ = run(capsys, "classify", *texts, "--model", classifier)
    assert code == 0 and table.splitlines()[0].split() == ["label", "p", "text"] and len(table.splitlines()) == 4


def test_input_files_csv_json_and_plain_text(tmp_path):
    (tmp_path / "a.csv").write_text("id,text,extra\n1,first text,x\n2,\"second, with comma\",y\n")
    assert read_texts(tmp_path / "a.csv") == ["first text", "second, with comma"]
    (tmp_path / "a.txt").write_text("one\n\ntwo words\n")
    assert read_texts(tmp_path / "a.txt") == ["one", "two words"]
    (tmp_path / "a.json").write_text(json.dumps(["x", {"text": "y"}]))
    assert read_texts(tmp_path / "a.json") == ["x", "y"]
    (tmp_path / "shots.jsonl").write_text(json.dumps({"text": "pear", "label": "fruit"}) + "\n")
    assert read_shots(tmp_path / "shots.jsonl") == [("pear", "fruit")]


@pytest.mark.parametrize("content, message", [
    (b"good line\n\xff\xfe bad bytes\n", r"is not UTF-8 text: byte 0xff at offset 10 \(line 2\)"),
])
def test_non_utf8_file_exits_2_naming_it(classifier, tmp_path, capsys, content, message):
    file = tmp_path / "latin.txt"
    file.write_bytes(content)
    code, _, err = run(capsys, "classify", "--file", file, "--model", classifier)
    assert code == 2
    assert "latin.txt" in err and re.search(message, err), err


@pytest.mark.parametrize("argv, message", [
    (["classify", "fine", "", "--model", "{model}"], "text 1 is empty"),
    (["classify", "--file", "{empty_jsonl}", "--model", "{model}"], r"line 2: empty 'text'"),
    (["classify", "--file", "{nocol_csv}", "--model", "{model}"], r"has no column\(s\) \['text'\]"),
    (["classify", "x", "--file", "{empty_jsonl}", "--model", "{model}"], "one of the two"),
    (["classify", "x", "--model", "{model}", "--shots", "{empty_jsonl}"], "--shots needs --labels"),
    (["tag", "Maria smiled.", "--model", "{model}"], "no trained tagging head"),
])
def test_bad_input_exits_2_with_one_line(classifier, tmp_path, capsys, argv, message):
    (tmp_path / "e.jsonl").write_text('{"text": "ok"}\n{"text": "  "}\n')
    (tmp_path / "n.csv").write_text("body\nhello\n")
    paths = {"model": classifier, "empty_jsonl": tmp_path / "e.jsonl", "nocol_csv": tmp_path / "n.csv"}
    code, _, err = run(capsys, *[a.format(**paths) for a in argv])
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_train_refuses_an_unknown_label_in_training_data(tmp_path, capsys):
    backbone = build_backbone("gpt2", tmp_path / "gpt2")
    data = text_file(tmp_path / "t.jsonl")
    code, _, err = run(capsys, "train", "configs/classify.yaml", "--train", data, "--output", tmp_path / "run",
                       f"backbone.name={backbone}", "training.backbone.lora_targets=[c_attn]",
                       "heads.classify.labels=[fruit, sunshine]", "--max-steps", "1")
    assert code == 2 and "unknown label 'weather'" in err and "row 0" in err, err


def test_train_the_classify_config_end_to_end(tmp_path, capsys):
    """`multimodal train configs/classify.yaml --train F --eval F --output DIR`, then `classify` on the result."""
    backbone = build_backbone("gpt2", tmp_path / "gpt2")
    data = text_file(tmp_path / "t.jsonl")
    code, out, err = run(capsys, "train", "configs/classify.yaml", "--train", data, "--eval", data, "--output",
                         tmp_path / "run", f"backbone.name={backbone}", "training.backbone.lora_targets=[c_attn]",
                         "--max-steps", "3", "training.batch_size=8")
    assert code == 0, err
    assert "accuracy" in out and (tmp_path / "run/best/model.safetensors").is_file()
    code, out, _ = run(capsys, "classify", "apples are sweet", "--model", tmp_path / "run/best", "--format", "json")
    assert code == 0 and json.loads(out)["label"] in {"fruit", "weather"}


def test_tag_json(tmp_path, capsys):
    model = tiny_text_model(tmp_path, "bert", ["heads.tag.labels=[O, B-PER, I-PER]"])
    tagger = mm.load(model)  # an untrained head tags at random: make it call every word B-PER, so entities exist
    with torch.no_grad():
        tagger.heads["tag"].proj.weight.zero_()
        tagger.heads["tag"].proj.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    tagger.save(model)
    text = "Maria Lopez smiled at Bo."
    code, out, _ = run(capsys, "tag", text, "second text", "--model", model, "--format", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == [text, "second text"]
    assert len(rows[0]["entities"]) == 6  # one per word: Maria, Lopez, smiled, at, Bo and the full stop
    for e in rows[0]["entities"]:
        assert text[e["start"]:e["end"]] == e["text"] and e["label"] == "PER"


def test_data_commands_write_train_and_eval(tmp_path, capsys):
    code, out, _ = run(capsys, "data", "text-classify", "--corpus", "emoji", "--out", tmp_path / "emoji")
    assert code == 0 and "train.jsonl" in out and (tmp_path / "emoji/eval.jsonl").is_file()
    code, out, _ = run(capsys, "data", "ner", "--out", tmp_path / "ner", "--train", "20", "--eval", "5")
    assert code == 0 and len((tmp_path / "ner/eval.jsonl").read_text().splitlines()) == 5


def test_engines_without_natural_voices_is_one_clear_line(tmp_path, capsys):
    code, _, err = run(capsys, "data", "speech", "--out", tmp_path / "s", "--hours", "0.001", "--engines", "flite")
    assert code == 2 and err.strip() == "multimodal data: error: --engines and --test-fraction go with --voices natural", err
