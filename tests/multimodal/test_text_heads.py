"""Text heads on GPT-2, BERT and RoBERTa (tiny, random, loaded by path like a hub name), and label likelihood."""

import json
from pathlib import Path

import pytest
import torch

import multimodal as mm
from multimodal.classify import label_ids, label_scores, prompt_ids
from multimodal.config import load_config
from multimodal.data import DataError, load_rows
from multimodal.evaluate import evaluate
from multimodal.text_heads import encode_texts
from multimodal.train import train
from tasks import get_task
from tasks.corpora.ner_sentences import generate_ner_corpus
from tasks.heads import pool

from .corpora import text_file
from .corpora import write_jsonl as _write_jsonl
from .tiny_text_backbones import BUILDERS, KINDS, LORA_TARGETS, build

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["apples are sweet", "it rained all day", "a cold wind blows", "pears taste good"]  # rows of text_file


@pytest.fixture(scope="session")
def backbones(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("backbones")
    return {name: build(name, root / name) for name in BUILDERS}


def overrides(name: str, directory: Path, task: str = "classify_head", mode: str = "lora") -> list[str]:
    return [f"backbone.name={directory}", f"backbone.kind={KINDS[name]}", "backbone.pretrained=true",
            "backbone.overrides={}", "encoders.image=null", "encoders.audio=null", f"data.task={task}",
            "data.num_workers=0", f"training.backbone.mode={mode}", f"training.backbone.lora_targets={LORA_TARGETS[name]}",
            "training.backbone.lr=5e-3", "training.heads.lr=2e-2", "training.batch_size=8", "training.warmup_steps=0",
            "training.log_every=4", "training.save_every=0", "training.eval_every=0", "heads.classify.dropout=0.0"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    _write_jsonl(path, rows)
    return path


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_encoder_states_match_the_hf_model(backbones, name):
    """Parity: our encoder path (inputs_embeds + derived positions) gives the HF model's own states."""
    model = mm.build(load_config(ROOT / "configs/tiny.yaml", overrides(name, backbones[name]))).eval()
    batch = encode_texts(model.tokenizer, ["Maria moved to Paris.", "hi"], 32)
    with torch.no_grad():
        ours = model(**batch).hidden_states
        reference = model.backbone(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(ours[real], reference[real])


def test_decoder_head_pools_the_last_real_token(backbones):
    config = load_config(ROOT / "configs/tiny.yaml", overrides("gpt2", backbones["gpt2"]) + ["heads.classify.labels=[a, b]"])
    model = mm.build(config).eval()
    batch = encode_texts(model.tokenizer, ["Maria moved to Paris.", "hi"], 32)
    with torch.no_grad():
        logits = model(**batch, head="classify").head_logits
        states = model.backbone.base_model(**batch).last_hidden_state
        expected = model.heads["classify"].proj(pool(states, batch["attention_mask"], "last"))
    torch.testing.assert_close(logits, expected)
    assert model.heads["classify"].pooling == "last"


@pytest.mark.parametrize("name, mode", [("gpt2", "lora"), ("bert", "full"), ("roberta", "full")])
def test_classify_head_trains_saves_and_predicts(backbones, tmp_path, name, mode):
    data = text_file(tmp_path / "t.jsonl")
    config = load_config(ROOT / "configs/tiny.yaml", overrides(name, backbones[name], mode=mode) + ["training.max_steps=16"])
    summary = train(config, tmp_path / "run", train_data=data, eval_data=data, progress=False)
    losses = [r["loss"] for r in records(tmp_path / "run") if "loss" in r]
    assert losses[-1] < losses[0], losses
    assert summary["eval"]["accuracy"] == 1.0 and summary["eval"]["macro_f1"] == 1.0
    model = mm.load(tmp_path / "run" / "last")
    assert model.config.heads.classify.labels == ["fruit", "weather"]  # from the data, sorted, kept in the checkpoint
    predictions = model.classify(TEXTS)
    assert [p.label for p in predictions] == ["fruit", "weather", "weather", "fruit"]
    assert all(abs(sum(p.probabilities.values()) - 1) < 1e-5 for p in predictions)
    assert model.classify(TEXTS[1]).probabilities == pytest.approx(predictions[1].probabilities, abs=1e-5)  # batch-independent


def test_unknown_labels_name_the_label_and_the_row(backbones, tmp_path):
    data = text_file(tmp_path / "t.jsonl")
    bad_eval = write_jsonl(tmp_path / "e.jsonl", [{"text": "fine", "label": "fruit"}, {"text": "hail", "label": "hail"}])
    config = load_config(ROOT / "configs/tiny.yaml", overrides("gpt2", backbones["gpt2"]) + ["training.max_steps=1"])
    with pytest.raises(ValueError, match=r"eval data: row 1 \('hail'\): unknown label 'hail'"):
        train(config, tmp_path / "run", train_data=data, eval_data=bad_eval, progress=False)
    fixed = load_config(ROOT / "configs/tiny.yaml", overrides("gpt2", backbones["gpt2"]) + ["heads.classify.labels=[fruit, rain]"])
    with pytest.raises(ValueError, match=r"training data: row 0 \('it rained all day'\): unknown label 'weather'"):
        train(fixed, tmp_path / "run2", train_data=data, progress=False)


def test_multi_label_head(backbones, tmp_path):
    rows = [{"text": t, "label": labels} for t, labels in [
        ("sweet ripe apples", ["fruit", "sweet"]), ("a cold wind blows", ["weather"]), ("mango", ["fruit"]),
        ("sunny and sweet", ["sweet", "weather"])] * 4]
    data = write_jsonl(tmp_path / "m.jsonl", rows)
    config = load_config(ROOT / "configs/tiny.yaml", overrides("bert", backbones["bert"], mode="full") + [
        "heads.classify.multi_label=true", "training.max_steps=30"])
    summary = train(config, tmp_path / "run", train_data=data, eval_data=data, progress=False)
    assert summary["eval"]["accuracy"] >= 0.75, summary["eval"]  # exact match of the label set
    model = mm.load(tmp_path / "run" / "last")
    prediction = model.classify("sweet ripe apples")
    assert isinstance(prediction.label, list) and set(prediction.probabilities) == {"fruit", "sweet", "weather"}


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_ner_trains_and_tags_spans_with_character_offsets(backbones, tmp_path, name):
    generate_ner_corpus(tmp_path / "ner", 64, 16, seed=0)
    config = load_config(ROOT / "configs/tiny.yaml", overrides(name, backbones[name], task="ner", mode="full") + [
        "training.max_steps=12", "heads.tag.dropout=0.0"])
    summary = train(config, tmp_path / "run", train_data=tmp_path / "ner/train.jsonl",
                    eval_data=tmp_path / "ner/eval.jsonl", progress=False)
    losses = [r["loss"] for r in records(tmp_path / "run") if "loss" in r]
    assert losses[-1] < losses[0]
    model = mm.load(tmp_path / "run" / "last")
    assert model.config.heads.tag.labels == ["O", "B-DATE", "I-DATE", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    # the logged entity F1 is the F1 of the final model's word tags, counted here
    task = get_task("ner")
    outputs = evaluate(model, load_rows(tmp_path / "ner/eval.jsonl", task), task,
                       batch_size=config.training.batch_size, return_outputs=True)["outputs"]
    assert len(outputs) == 16 and summary["eval"]["entity_f1"] > 0
    assert summary["eval"]["entity_f1"] == pytest.approx(entity_f1_by_hand(outputs))
    text = "Maria Lopez joined Acme Corp in Berlin on 3 May 2021."
    entities = model.tag(text)
    assert entities  # 12 steps tag something here, so the offsets below are checked
    for entity in entities:
        assert text[entity.start:entity.end] == entity.text and entity.label in {"PER", "LOC", "ORG", "DATE"}


def entity_f1_by_hand(outputs: list[dict]) -> float:
    """Micro F1 over (sentence, first word, end, type) entities read from BIO word tags as conlleval reads them:
    an I- tag that does not continue an entity of its type starts one."""
    def entities(i: int, tags: list[str]) -> set[tuple]:
        found, start, kind = set(), None, None
        for j, tag in enumerate([*tags, "O"]):
            prefix, _, label = tag.partition("-")
            if start is not None and (prefix != "I" or label != kind):
                found.add((i, start, j, kind))
                start = None
            if prefix == "B" or (prefix == "I" and start is None):
                start, kind = j, label
        return found

    gold = set().union(*(entities(i, o["reference"]) for i, o in enumerate(outputs)))
    pred = set().union(*(entities(i, o["hypothesis"]) for i, o in enumerate(outputs)))
    return 2 * len(gold & pred) / (len(gold) + len(pred)) if gold or pred else 0.0


def test_ner_rows_from_text_and_entities_and_bad_tags(tmp_path):
    task = get_task("ner")
    spans = write_jsonl(tmp_path / "spans.jsonl", [{"text": "Maria smiled in Oslo.", "entities": [
        {"start": 0, "end": 5, "label": "PER"}, {"start": 16, "end": 20, "label": "LOC"}]}])
    rows = load_rows(spans, task)
    assert rows[0]["tokens"] == ["Maria", "smiled", "in", "Oslo", "."]
    assert rows[0]["tags"] == ["B-PER", "O", "O", "B-LOC", "O"]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"tokens": ["a", "b"], "tags": ["O", "O"]}, {"tokens": ["Oslo"], "tags": ["LOC"]}])
    with pytest.raises(DataError, match=r"row 1: word 0 'Oslo' has tag 'LOC'"):
        load_rows(bad, task)
    cut = write_jsonl(tmp_path / "cut.jsonl", [{"text": "Maria smiled.", "entities": [{"start": 0, "end": 3, "label": "PER"}]}])
    with pytest.raises(ValueError, match=r"row 0: .*cuts a word"):
        load_rows(cut, task)


def brute_force_scores(model, texts, labels, shots):
    """Each label's summed log-probability from one full forward pass per (text, label): no cache, no batching."""
    out = torch.empty(len(texts), len(labels))
    for i, text in enumerate(texts):
        prompt = prompt_ids(model.tokenizer, text, labels, shots)
        for j, label in enumerate(labels):
            answer = label_ids(model.tokenizer, label)
            ids = torch.tensor([prompt + answer])
            with torch.no_grad():
                logp = model.backbone(input_ids=ids).logits[0].log_softmax(-1)
            out[i, j] = sum(logp[len(prompt) - 1 + k, t] for k, t in enumerate(answer))
    return out


@pytest.mark.parametrize("name", ["gpt2", "smollm2"])
def test_label_likelihood_with_cache_equals_full_passes(backbones, name):
    if name == "smollm2":  # its real tokenizer and chat template, tiny random weights
        model = mm.build(ROOT / "configs/tiny.yaml", ["encoders.image=null", "encoders.audio=null"]).eval()
        assert model.tokenizer.chat_template
    else:
        model = mm.build(load_config(ROOT / "configs/tiny.yaml", overrides(name, backbones[name]))).eval()
    texts = ["a red apple", "it is raining again today", "hi"]
    labels = ["Food & Drink", "weather", "Smileys"]
    shots = [("green pear", "Food & Drink")]
    fast = label_scores(model, texts, labels, shots, batch_size=2)
    torch.testing.assert_close(fast, brute_force_scores(model, texts, labels, shots), atol=1e-4, rtol=1e-4)
    predictions = model.classify(texts, labels=labels, shots=shots)
    assert [p.label for p in predictions] == [labels[int(i)] for i in fast.argmax(-1)]
    assert all(abs(sum(p.probabilities.values()) - 1) < 1e-5 for p in predictions)


def test_classify_errors(backbones):
    model = mm.build(load_config(ROOT / "configs/tiny.yaml", overrides("bert", backbones["bert"])))
    with pytest.raises(ValueError, match="text 1 is empty"):
        model.classify(["fine", "  "])
    with pytest.raises(ValueError, match="no trained classification head"):
        model.classify(["fine"])
    with pytest.raises(ValueError, match="encoder LM: label likelihood needs a causal"):
        model.classify(["fine"], labels=["a", "b"])
    with pytest.raises(ValueError, match="no trained tagging head"):
        model.tag("Maria smiled.")


def test_evaluate_command_path_scores_a_head(backbones, tmp_path):
    data = text_file(tmp_path / "t.jsonl")
    config = load_config(ROOT / "configs/tiny.yaml", overrides("gpt2", backbones["gpt2"]) + ["heads.classify.labels=[fruit, weather]"])
    model = mm.build(config)
    metrics = evaluate(model, load_rows(data, get_task("classify_head")), get_task("classify_head"), return_outputs=True)
    assert metrics["n_examples"] == 24 and {"accuracy", "macro_f1", "loss"} <= set(metrics)
    assert metrics["outputs"][0]["reference"] == ["weather"]


def test_a_frozen_part_of_a_fully_trained_backbone_stays_pretrained_and_is_not_stored(backbones, tmp_path):
    """training.backbone.freeze=[embeddings]: the word table keeps its pretrained values through training, the
    adapter-only checkpoint leaves it out (the package supplies it), and the reloaded model predicts the same."""
    data = text_file(tmp_path / "t.jsonl")
    config = load_config(ROOT / "configs/tiny.yaml", overrides("bert", backbones["bert"], mode="full") + [
        "training.max_steps=8", "training.backbone.freeze=[embeddings]"])
    pretrained = {k: v.clone() for k, v in mm.build(config).backbone.state_dict().items()}
    train(config, tmp_path / "run", train_data=data, progress=False)
    model = mm.load(tmp_path / "run" / "last")
    after = model.backbone.state_dict()
    frozen = [k for k in after if "embeddings" in k]
    assert frozen and all(torch.equal(after[k], pretrained[k]) for k in frozen)
    assert any(not torch.equal(after[k], pretrained[k]) for k in after if "encoder.layer" in k)  # the rest trained
    saved = model.save(tmp_path / "small", adapter_only=True)
    stored = json.loads((saved / "checkpoint.json").read_text())["stored_keys"]
    assert stored and not [k for k in stored if "embeddings" in k]
    assert any(k.startswith("backbone.encoder.layer") or ".encoder.layer" in k for k in stored)
    reloaded = mm.load(saved)
    expected = [p.probabilities for p in model.classify(TEXTS)]
    assert [p.probabilities for p in reloaded.classify(TEXTS)] == [pytest.approx(e, abs=1e-5) for e in expected]


def test_freezing_a_name_no_parameter_has_is_an_error_naming_it(backbones):
    config = load_config(ROOT / "configs/tiny.yaml", overrides("bert", backbones["bert"], mode="full") + [
        "training.backbone.freeze=[embedings]"])
    from multimodal.trainable import apply_training_modes

    with pytest.raises(ValueError, match=r"training.backbone.freeze \['embedings'\]: no parameter"):
        apply_training_modes(mm.build(config))
