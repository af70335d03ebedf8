"""What trains and how fast: frozen, LoRA (peft) or full per component; one learning rate per component.

Also decides what an adapter-only checkpoint must store: everything that is not a pretrained weight
left untouched — adapters, LoRA matrices, fully trained parts, parts trained from scratch, and an image
encoder's fitted object head (encoders/object_head.py).
"""

from __future__ import annotations

import torch
from torch import nn

from multimodal.config import ComponentTraining
from multimodal.model import MultimodalModel

LORA_MARK = "lora_"  # every parameter peft adds for LoRA has this in its name
FITTED_MARK = ".object_head."  # an image encoder's object head: fitted by `multimodal fit-tags`, never pretrained


def kept_frozen(name: str, setting: ComponentTraining) -> bool:
    """Whether parameter `name` is named by the component's `freeze` list (frozen whatever its mode)."""
    return any(part in name for part in setting.freeze)


def apply_training_modes(model: MultimodalModel) -> None:
    """Inject LoRA where asked and set requires_grad for every component."""
    for name, module in model.components().items():
        setting: ComponentTraining = getattr(model.config.training, name)
        if setting.mode == "lora":
            _inject_lora(name, module, setting)
        names = [pname for pname, _ in module.named_parameters()]
        unmatched = [part for part in setting.freeze if not any(part in pname for pname in names)]
        if unmatched:
            raise ValueError(f"training.{name}.freeze {unmatched}: no parameter of the {name} has that in its name "
                             f"(e.g. {', '.join(names[:3])})")
        for pname, p in module.named_parameters():
            trains = setting.mode == "full" or (setting.mode == "lora" and LORA_MARK in pname)
            p.requires_grad_(trains and not kept_frozen(pname, setting))
    model.train(model.training)  # re-apply eval mode on frozen parts


def _inject_lora(name: str, module: nn.Module, setting: ComponentTraining) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    present = {  # leaf layers with weights: nn.Linear, GPT-2's Conv1D, ...
        n.rsplit(".", 1)[-1] for n, m in module.named_modules() if not list(m.children()) and hasattr(m, "weight")
    }
    missing = [t for t in setting.lora_targets if t not in present]
    if missing or not setting.lora_targets:
        raise ValueError(
            f"training.{name}.lora_targets {setting.lora_targets}: {missing or 'empty'} not among the "
            f"{name}'s layers: {', '.join(sorted(present))}"
        )
    lora = LoraConfig(
        r=setting.lora_r,
        lora_alpha=setting.lora_alpha,
        lora_dropout=setting.lora_dropout,
        target_modules=list(setting.lora_targets),
    )
    inject_adapter_in_model(lora, module)  # in place: the module keeps its class (and `generate`)


def parameter_groups(model: MultimodalModel, weight_decay: float) -> list[dict]:
    """AdamW groups: one learning rate per component; no weight decay on biases and norms (1-D tensors)."""
    groups = []
    for name, module in model.components().items():
        setting: ComponentTraining = getattr(model.config.training, name)
        params = [p for p in module.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        for ps, wd in ((decay, weight_decay), (no_decay, 0.0)):
            if ps:
                groups.append({"params": ps, "lr": setting.lr, "weight_decay": wd, "name": name})
    return groups


def stored_keys(model: MultimodalModel) -> list[str]:
    """State-dict keys an adapter-only checkpoint stores; the rest comes from `model.pretrained_parts`."""
    keys = []
    prefixes = {"backbone": "backbone.", "adapters": "adapters.", "heads": "heads."}
    prefixes.update({f"{m}_encoder": f"encoders.{m}." for m in model.encoders})
    state = model.state_dict()
    for name, prefix in prefixes.items():
        mode = getattr(model.config.training, name).mode
        own = [k for k in state if k.startswith(prefix)]
        if name not in model.pretrained_parts:
            keys += own  # trained from scratch
        elif mode == "full":
            setting = getattr(model.config.training, name)
            keys += [k for k in own if not kept_frozen(k, setting)]  # every weight not kept frozen
        elif mode == "lora":
            keys += [k for k in own if LORA_MARK in k]
        if name in model.pretrained_parts:  # a fitted head inside a pretrained part is stored whatever its mode
            keys += [k for k in own if FITTED_MARK in k and k not in keys]
    return keys


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts; tied weights count once."""
    seen: dict[int, torch.Tensor] = {p.data_ptr(): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return total, trainable
