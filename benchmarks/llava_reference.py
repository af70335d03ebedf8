"""Training throughput of our captioning model against transformers' LlavaForConditionalGeneration.

Both models get the same parts and the same work:
- the same vision tower: a CLIP ViT (random weights, ViT-S/16 shape by default) saved once and loaded by both;
  both read the last layer's patch tokens without the class token (Llava: vision_feature_layer=-1, 'default');
- the same LM: SmolLM2-135M-Instruct's config and weights (our backbone, copied into Llava's language model);
- the same projector: Linear -> GELU -> Linear at the LM's width, no norm (Llava's multi_modal_projector);
- the same trainable set: vision tower frozen, projector trained, LoRA r=8 on the LM's q_proj/v_proj (peft);
- the same batch: our Processor's input ids (image tokens expanded), labels, mask and pixels feed both.
Steps alternate (ours, Llava, ours, ...) so machine noise hits both alike. Peak RSS is measured in a
separate process per model. Model FLOPs per step are counted by torch's FlopCounterMode on the real step,
and the matmul peak is measured in the same run (a large fp32 matmul), giving model FLOPs utilisation.

    .venv/bin/python benchmarks/llava_reference.py                     # batch 4, 3 timed steps each
    .venv/bin/python benchmarks/llava_reference.py --batch-size 8 --steps 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import multimodal as mm
from peak_memory import peak_rss_gb
from multimodal.trainable import count_parameters, parameter_groups

CAPTION = "two small red circles above a large blue square on a grey background"


def save_vision_tower(directory: Path, width: int, layers: int, image_size: int) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
                              num_attention_heads=max(1, width // 64), image_size=image_size, patch_size=16)
    CLIPVisionModel(config).save_pretrained(directory)


def build_ours(tower: Path, image_size: int):
    overrides = [
        "encoders.image={source: hf, name: %s, pretrained: %s, image_size: %d}" % (tower, tower, image_size),
        "encoders.audio=null",
        "adapters.image={reduction: none, factor: 1, projector: mlp, norm: none}",
        "training.image_encoder.mode=frozen",
        "training.adapters.mode=full",
        "training.backbone={mode: lora, lr: 2.0e-4, lora_r: 8, lora_alpha: 16, lora_targets: [q_proj, v_proj]}",
        "training.gradient_checkpointing=false",
    ]
    return mm.build("configs/default.yaml", overrides).train()


def build_llava(ours, tower: Path):
    """Llava with our model's vision tower, LM weights, projector weights and the same LoRA set-up."""
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import AutoConfig, LlavaConfig, LlavaForConditionalGeneration

    text_config = ours.backbone.config
    config = LlavaConfig(
        vision_config=AutoConfig.from_pretrained(tower),
        text_config=text_config,
        image_token_index=ours.placeholder_ids["image"],
        image_seq_length=ours.encoders["image"].n_tokens,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=bool(getattr(text_config, "tie_word_embeddings", False)),
    )
    llava = LlavaForConditionalGeneration(config)
    lc = ours.config.training.backbone
    lora = LoraConfig(r=lc.lora_r, lora_alpha=lc.lora_alpha, lora_dropout=lc.lora_dropout, target_modules=list(lc.lora_targets))
    inject_adapter_in_model(lora, llava.model.language_model)  # same LoRA layers as ours, weights copied below
    llava.model.vision_tower.load_state_dict(ours.encoders["image"].model.state_dict())
    state = ours.backbone.state_dict()
    llava.model.language_model.load_state_dict(
        {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    llava.lm_head.load_state_dict({"weight": state["lm_head.weight"]})
    proj = ours.adapters["image"].proj  # Sequential(Linear, GELU, Linear)
    llava.model.multi_modal_projector.linear_1.load_state_dict(proj[0].state_dict())
    llava.model.multi_modal_projector.linear_2.load_state_dict(proj[2].state_dict())
    # Llava looks the image token up in the embedding table before replacing it, so the table grows by the
    # placeholder row (ours masks placeholders out instead): one extra vocabulary row, as Llava ships.
    llava.resize_token_embeddings(len(ours.tokenizer))
    for name, p in llava.named_parameters():
        p.requires_grad = "lora_" in name or "multi_modal_projector" in name
    return llava.train()


def make_batch(model, batch_size: int):
    rng = np.random.RandomState(0)
    examples = [
        mm.Example("<image>\nDescribe the image.", CAPTION,
                   images=[Image.fromarray(rng.randint(0, 255, (224, 224, 3), dtype=np.uint8))])
        for _ in range(batch_size)
    ]
    return mm.Processor(model)(examples)


def step_fn(model, batch):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels", "pixel_values")}

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def count_flops(step) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """fp32 matmul FLOP/s on this machine now (best of `repeats`)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def setup(args):
    tmp = Path(tempfile.mkdtemp(prefix="llava_ref_"))
    tower = tmp / "vision_tower"
    save_vision_tower(tower, args.vision_width, args.vision_layers, 224)
    torch.manual_seed(0)
    ours = build_ours(tower, 224)
    batch = make_batch(ours, args.batch_size)
    return tower, ours, batch


def memory_child(args) -> None:
    """One model, two steps, print peak RSS: run in its own process so the other model is not counted."""
    _, ours, batch = setup(args)
    model = ours if args.memory_of == "ours" else build_llava(ours, Path(args.tower))
    if args.memory_of == "llava":
        del ours
    step = step_fn(model, batch)
    step(), step()
    print(json.dumps({"peak_rss_gb": peak_rss_gb()}))


def peak_rss_of(which: str, args, tower: Path) -> float:
    cmd = [sys.executable, __file__, "--memory-of", which, "--tower", str(tower), "--batch-size", str(args.batch_size),
           "--vision-width", str(args.vision_width), "--vision-layers", str(args.vision_layers)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["peak_rss_gb"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--vision-width", type=int, default=384)
    p.add_argument("--vision-layers", type=int, default=12)
    p.add_argument("--no-memory", action="store_true", help="skip the per-model peak RSS processes")
    p.add_argument("--memory-of", choices=["ours", "llava"], help=argparse.SUPPRESS)
    p.add_argument("--tower", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_of:
        return memory_child(args)

    tower, ours, batch = setup(args)
    llava = build_llava(ours, tower)
    steps = {"ours": step_fn(ours, batch), "llava": step_fn(llava, batch)}
    with torch.no_grad():  # same weights, same batch: the losses must agree before anything is timed
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels", "pixel_values")}
        loss_ours, loss_llava = float(ours(**inputs).loss), float(llava(**inputs).loss)
    flops = {name: count_flops(step) for name, step in steps.items()}  # also the warm-up step
    times: dict[str, list[float]] = {"ours": [], "llava": []}
    for _ in range(args.steps):
        for name, step in steps.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)
    peak = matmul_peak()
    n_tokens = int(batch["attention_mask"].sum())
    total, trainable = count_parameters(ours)
    print(f"batch               {args.batch_size} images (224 px, {ours.encoders['image'].n_tokens} image tokens each), "
          f"{tuple(batch['input_ids'].shape)} token ids, {n_tokens} real tokens")
    print(f"vision tower        CLIP ViT width {args.vision_width}, {args.vision_layers} layers, patch 16 (frozen)")
    print(f"ours                {total:,} parameters, {trainable:,} trainable")
    print(f"loss before steps   ours {loss_ours:.4f}   llava {loss_llava:.4f}   (same weights; Llava's extra image-token row in the tied head shifts it slightly)")
    print(f"matmul peak         {peak / 1e9:.1f} GFLOP/s (fp32 2048^3, best of 10, this run)")
    # MFU counts the work the step needs (the smaller of the two executed counts: ours computes the LM head on
    # target positions only) over the measured peak; "executed" is each model's own count over the peak.
    model_flops = min(flops.values())
    print(f"{'':10}{'step s (median)':>16}{'tokens/s':>10}{'GFLOP run':>11}{'executed/peak':>15}{'MFU':>7}{'peak RSS':>10}")
    rss = {} if args.no_memory else {name: peak_rss_of(name, args, tower) for name in steps}
    for name in steps:
        med = statistics.median(times[name])
        mem = f"{rss[name]:.2f} GB" if rss else "-"
        print(f"{name:<10}{med:>16.3f}{n_tokens / med:>10.0f}{flops[name] / 1e9:>11.1f}{flops[name] / med / peak:>15.1%}"
              f"{model_flops / med / peak:>7.1%}{mem:>10}")
    ratio = statistics.median(times["llava"]) / statistics.median(times["ours"])
    print(f"throughput ours / llava: {ratio:.2f}x  (step times: ours {times['ours']}, llava {times['llava']})")


if __name__ == "__main__":
    main()
