import numpy as np
import pytest
import torch
from PIL import Image

import multimodal as mm
from multimodal.model import PLACEHOLDERS, PlaceholderMismatchError

# Larger random weights than HF's default init: a tiny model then generates varied tokens, not one repeated.
VARIED = ["backbone.overrides.initializer_range=0.5"]


def examples(with_targets=True):
    rng = np.random.RandomState(0)
    t = (lambda s: s) if with_targets else (lambda s: None)
    return [
        mm.Example("Describe <image> please, a longer prompt", t("a red square"), images=[Image.new("RGB", (40, 30), "red")]),
        mm.Example("Transcribe <audio>", t("hello"), audios=[rng.randn(16000).astype("float32")]),
        mm.Example("Both <image> then <audio>:", t("x y"), images=[Image.new("RGB", (9, 50), "blue")], audios=[rng.randn(5000).astype("float32")]),
        mm.Example("Only text", t("fine")),
    ]


@pytest.fixture(scope="module")
def model(tiny_config_path):
    return mm.build(tiny_config_path, VARIED)


def test_loss_covers_target_tokens_only(model):
    processor = mm.Processor(model)
    batch = processor(examples())
    n_targets = int((batch["labels"][:, 1:] != -100).sum())
    expected = sum(len(model.tokenizer(e.target, add_special_tokens=False).input_ids) + 1 for e in examples())
    assert n_targets == expected  # every target token plus a supervised EOS, nothing of the prompts
    model.eval()
    out = model(**batch, return_logits=True)
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]
    keep = labels != -100
    reference = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    assert torch.allclose(out.loss, reference, atol=1e-5)


def test_placeholder_count_mismatch_raises(model):
    batch = mm.Processor(model)(examples()[:1])
    batch["input_ids"][0, 0] = model.placeholder_ids["image"]  # one placeholder too many (first token is text)
    with pytest.raises(PlaceholderMismatchError,
                       match=r"row 0: the prompt holds 5 <image> tokens but image input 0 gives 4 adapter tokens"):
        model(**batch)
    batch = mm.Processor(model)(examples()[:1])
    del batch["pixel_values"]
    with pytest.raises(PlaceholderMismatchError, match="no image input"):
        model(**batch)


@pytest.mark.parametrize("modality", ["image", "audio"])
def test_placeholder_count_is_checked_per_row(model, modality):
    """One row with a placeholder too many and the next with one too few: the batch's totals agree, the rows do not."""
    rng = np.random.RandomState(0)
    if modality == "image":
        media = [{"images": [Image.new("RGB", (32, 32), colour)]} for colour in ("red", "blue")]
    else:
        media = [{"audios": [rng.randn(n).astype("float32")]} for n in (16000, 8000)]
    marker = PLACEHOLDERS[modality]
    batch = mm.Processor(model)([mm.Example(f"Look at {marker} now", "ok", **m) for m in media])
    token = model.placeholder_ids[modality]
    slots = [int(n) for n in (batch["input_ids"] == token).sum(1)]
    assert slots[0] > 1 and slots[1] > 1, slots
    first_text = int((batch["input_ids"][0] != token).nonzero()[0])
    batch["input_ids"][0, first_text] = token  # row 0: one placeholder too many
    batch["input_ids"][1, int((batch["input_ids"][1] == token).nonzero()[0])] = 3  # row 1: one too few
    assert int((batch["input_ids"] == token).sum()) == sum(slots)  # the batch's count still matches
    with pytest.raises(PlaceholderMismatchError, match=rf"row 0: the prompt holds {slots[0] + 1} {marker} tokens "
                                                       rf"but {modality} inputs 0-1 give {sum(slots)} adapter tokens"):
        model(**batch)
    batch["input_ids"][0, first_text] = 3  # row 0 right again: row 1 is one short
    with pytest.raises(PlaceholderMismatchError, match=rf"row 1: the prompt holds {slots[1] - 1} {marker} tokens "
                                                       rf"but {modality} input 1 gives {slots[1]} adapter tokens"):
        model(**batch)


def test_prompt_marker_count_must_match_inputs(model):
    with pytest.raises(ValueError, match=r"1 <image> and 0 <audio> markers for 2 image"):
        mm.Processor(model)([mm.Example("<image>", images=[Image.new("RGB", (8, 8))] * 2)])


def test_frozen_parts_get_no_gradient_lora_and_adapters_do(tiny_config_path):
    model = mm.build(tiny_config_path, ["training.image_encoder.mode=frozen", "training.audio_encoder.mode=lora",
                                        "training.audio_encoder.lora_targets=[q_proj, v_proj]"])
    model.train()
    assert not model.encoders["image"].training  # frozen parts stay in eval mode
    model(**mm.Processor(model)(examples())).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    image = [n for n in grads if n.startswith("encoders.image.")]
    assert image and all(grads[n] is None for n in image)
    for prefix in ("backbone.", "encoders.audio."):
        lora = [n for n in grads if n.startswith(prefix) and "lora_" in n]
        base = [n for n in grads if n.startswith(prefix) and "lora_" not in n]
        assert lora and all(grads[n] is not None for n in lora if "lora_B" in n)
        assert all(grads[n] is None for n in base), prefix
    adapters = [n for n in grads if n.startswith("adapters.")]
    assert adapters and all(grads[n] is not None and grads[n].abs().sum() > 0 for n in adapters)


def test_parameter_groups_carry_component_learning_rates(model):
    from multimodal.trainable import parameter_groups

    groups = parameter_groups(model, weight_decay=0.1)
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs == {"backbone": 1e-3, "adapters": 3e-3, "image_encoder": 1e-3, "audio_encoder": 1e-3}
    grouped = {id(p) for g in groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters() if p.requires_grad}
    assert all(g["weight_decay"] == 0.0 for g in groups if all(p.ndim == 1 for p in g["params"]))


@pytest.mark.parametrize("num_beams", [1, 3])
def test_batched_left_padded_generation_equals_one_by_one(model, num_beams):
    model.eval()
    processor = mm.Processor(model)
    config = mm.GenerationConfig(max_new_tokens=8, num_beams=num_beams, max_repeats=0)
    prompts = examples(with_targets=False)
    batched = model.generate(processor(prompts, padding_side="left"), config)
    single = [model.generate(processor([e], padding_side="left"), config)[0] for e in prompts]
    assert batched == single
    assert len(set(batched)) == len(prompts)  # the rows really differ, so padding could have shown


def test_generation_refuses_right_padding(model):
    batch = mm.Processor(model)(examples(with_targets=False)[:2], padding_side="right")
    with pytest.raises(ValueError, match="left padding"):
        model.generate(batch)


def test_left_and_right_padding_give_the_same_loss(model):
    model.eval()
    processor = mm.Processor(model)
    right, left = processor(examples(), "right"), processor(examples(), "left")
    assert not torch.equal(right["input_ids"], left["input_ids"])
    assert torch.allclose(model(**right).loss, model(**left).loss, atol=1e-5)


def test_ctc_head_stage_one_trains_the_encoder_only(tiny_config_path):
    model = mm.build(tiny_config_path, ["heads.ctc=true", "training.lm_loss_weight=0", "training.ctc_loss_weight=1",
                                        "training.backbone.mode=frozen"])
    batch = mm.Processor(model)([e for e in examples() if e.audios])
    assert batch["ctc_labels"].shape[0] == 2 and (batch["ctc_labels"] >= -1).all()
    loss = model(**batch).loss
    loss.backward()
    assert loss > 0
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert any(n.startswith("heads.ctc") for n in grads) and any(n.startswith("encoders.audio") for n in grads)
    assert not any(n.startswith(("backbone.", "adapters.")) for n in grads)  # the LM is not even run
    model.eval()
    paths = model.ctc_texts(batch["audio_values"], batch["audio_attention_mask"])
    assert len(paths) == 2


def test_ctc_and_lm_losses_combine(tiny_config_path):
    model = mm.build(tiny_config_path, ["heads.ctc=true", "training.ctc_loss_weight=0.5"]).eval()
    batch = mm.Processor(model)([e for e in examples() if e.audios])
    both = model(**batch).loss
    without = model(**{k: v for k, v in batch.items() if k != "ctc_labels"}).loss
    ctc_only = model._ctc_loss(model.encoders["audio"](batch["audio_values"], batch["audio_attention_mask"]), batch["ctc_labels"])
    assert torch.allclose(both, without + 0.5 * ctc_only, atol=1e-5)


def test_shared_ctc_layers_feed_the_adapter_and_train_from_both_losses(tiny_config_path):
    model = mm.build(tiny_config_path, ["heads.ctc=true", "heads.ctc_layers=1", "heads.ctc_shared=true",
                                        "training.ctc_loss_weight=0.5"])
    batch = mm.Processor(model)([e for e in examples() if e.audios])
    model(**{k: v for k, v in batch.items() if k != "ctc_labels"}).loss.backward()  # the LM loss alone
    layer_grads = [p.grad for n, p in model.named_parameters() if n.startswith("heads.ctc.layers")]
    assert layer_grads and all(g is not None and g.abs().sum() > 0 for g in layer_grads)
    model.zero_grad()
    with torch.no_grad():  # the adapter reads the head's layers: moving them moves the LM's loss
        before = model(**batch).loss
        for p in model.heads["ctc"].layers.parameters():
            p.add_(torch.randn_like(p))
        assert not torch.allclose(model(**batch).loss, before)
    model.eval()
    assert len(model.ctc_texts(batch["audio_values"], batch["audio_attention_mask"])) == 2


def test_shared_ctc_layers_need_a_transformer_head(tiny_config_path):
    with pytest.raises(ValueError, match="ctc_layers >= 1"):
        mm.build(tiny_config_path, ["heads.ctc=true", "heads.ctc_shared=true"])
