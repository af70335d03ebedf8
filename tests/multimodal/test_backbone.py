"""Backbones by preset, hub-style local dir, or random init; the real SmolLM2 and MiniLM weights."""

import pytest
import torch

import multimodal as mm
from multimodal.backbone import PRESETS, load_backbone, resolve
from multimodal.config import BackboneConfig


def test_unknown_backbone_names_the_presets():
    with pytest.raises(OSError, match=r"(?s)cannot load backbone 'no/such-model'.*smollm2-135m-instruct"):
        load_backbone(BackboneConfig(name="no/such-model"))


def test_local_dir_goes_through_the_same_path(tmp_path):
    """A GPT-2 saved to a dir loads by path like a hub name would, and gets a pad token."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate(["<|endoftext|>"] + list("abcdefghijklmnopqrstuvwxyz ."))}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    raw.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|endoftext|>")
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=0, eos_token_id=0)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model, tokenizer = load_backbone(BackboneConfig(name=str(tmp_path)))
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert tokenizer.pad_token == "<|endoftext|>"
    # and the whole fused model builds on it, with LoRA on GPT-2's fused attention projection
    fused = mm.build("configs/tiny.yaml", [f"backbone.name={tmp_path}", "backbone.overrides={}",
                                           "training.backbone.lora_targets=[c_attn]"])
    assert any("lora_" in n for n, p in fused.backbone.named_parameters() if p.requires_grad)


def test_lora_targets_are_checked():
    with pytest.raises(ValueError, match=r"training\.backbone\.lora_targets.*\['qkv'\].*q_proj"):
        mm.build("configs/tiny.yaml", ["training.backbone.lora_targets=[qkv]"])


@pytest.mark.pretrained
def test_smollm2_from_its_package_continues_sensibly():
    model = mm.build("configs/tiny.yaml", ["backbone.pretrained=true", "backbone.overrides={}"]).eval()
    assert sum(p.numel() for n, p in model.backbone.named_parameters() if "lora_" not in n) == 134_515_008
    processor = mm.Processor(model)
    text = model.generate(processor([mm.Example("The capital of France is")], padding_side="left"),
                          mm.GenerationConfig(max_new_tokens=6))[0]
    assert "Paris" in text, text


@pytest.mark.pretrained
def test_minilm_encoder_backbone_gives_sentence_states():
    model = mm.build("configs/tiny.yaml", ["backbone.name=all-minilm-l6-v2", "backbone.kind=encoder", "backbone.pretrained=true",
                                           "backbone.overrides={}", "training.backbone.lora_targets=[query, value]"]).eval()
    batch = mm.Processor(model)([mm.Example("A cat sits on the mat."), mm.Example("A kitten rests on a rug."),
                                 mm.Example("Stock markets fell sharply today.")])
    with torch.no_grad():
        states = model(**batch).hidden_states  # (B, L, 384)
    mask = batch["attention_mask"].unsqueeze(-1)
    emb = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)  # mean pooling
    similar, unrelated = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert similar > unrelated + 0.3, (similar, unrelated)
    with pytest.raises(ValueError, match="encoder LM; it cannot generate"):
        model.generate(mm.Processor(model)([mm.Example("hi")], padding_side="left"))


def test_presets_resolve_to_package_dirs():
    assert set(PRESETS) >= {"smollm2-135m-instruct", "all-minilm-l6-v2"}
    assert resolve("some/hub-name") == "some/hub-name"
