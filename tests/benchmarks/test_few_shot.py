"""benchmarks/few_shot.py, the transfer curve: what turns a config into each method, and the split it scores."""

import json
from types import SimpleNamespace

import pytest

from multimodal.config import load_config

from ..conftest import ROOT
from . import load_benchmark


def test_scratch_is_minilm_from_random_weights_and_roberta_is_a_backbone_name():
    bench = load_benchmark("few_shot")
    args = SimpleNamespace(roberta="some/roberta")
    scratch = load_config(ROOT / bench.TRAINED["minilm-scratch"], bench.method_overrides("minilm-scratch", args))
    pretrained = load_config(ROOT / bench.TRAINED["minilm"], bench.method_overrides("minilm", args))
    assert not scratch.backbone.pretrained and pretrained.backbone.pretrained
    assert scratch.backbone.name == pretrained.backbone.name  # same architecture, same recipe
    assert scratch.training == pretrained.training
    roberta = load_config(ROOT / bench.TRAINED["roberta"], bench.method_overrides("roberta", args))
    assert roberta.backbone.name == "some/roberta" and roberta.backbone.kind == "encoder"


def test_the_scored_split_is_eval_or_test_and_a_missing_one_is_named(tmp_path):
    bench = load_benchmark("few_shot")
    for split, text in (("train", "a"), ("eval", "b"), ("test", "c")):
        (tmp_path / f"{split}.jsonl").write_text(json.dumps({"text": text, "label": "x"}) + "\n")
    assert bench.corpus_splits("emoji", tmp_path, tmp_path, "test")[1] == [{"text": "c", "label": "x"}]
    assert bench.corpus_splits("emoji", tmp_path, tmp_path)[1] == [{"text": "b", "label": "x"}]
    (tmp_path / "test.jsonl").unlink()
    with pytest.raises(SystemExit, match="test.jsonl is missing"):
        bench.corpus_splits("emoji", tmp_path, tmp_path, "test")


def test_max_n_names_a_malformed_cap():
    bench = load_benchmark("few_shot")
    assert bench.parse_caps(["smollm2-lora=100", "minilm=10"]) == {"smollm2-lora": 100, "minilm": 10}
    for bad in ("smollm2-lora", "smollm2=100", "minilm=ten"):
        with pytest.raises(ValueError, match=repr(bad)):
            bench.parse_caps([bad])
