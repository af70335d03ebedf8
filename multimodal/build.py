"""The one builder: config -> encoders, adapters and backbone, wired into a `MultimodalModel`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from encoders import AudioEncoder, VisionEncoder
from multimodal.adapters import Adapter
from multimodal.backbone import backbone_from_dir, load_backbone
from multimodal.config import Config, load_config
from multimodal.model import PLACEHOLDERS, MultimodalModel
from multimodal.trainable import apply_training_modes


def build(
    config: Config | str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    pretrained: bool = True,
    backbone_dir: str | Path | None = None,
) -> MultimodalModel:
    """Build a model from a Config or a YAML path (+ `a.b=value` overrides).

    pretrained=False skips every pretrained weight (a checkpoint is about to overwrite them all);
    backbone_dir then names a saved HF config + tokenizer to build the backbone from.
    """
    if not isinstance(config, Config):
        config = load_config(config, overrides)
    elif overrides:
        raise ValueError("overrides apply to a YAML path; edit the Config object directly instead")
    torch.manual_seed(config.training.seed)  # random-init parts are reproducible from the config

    if backbone_dir is not None:
        backbone, tokenizer = backbone_from_dir(backbone_dir, config.backbone.kind)
    else:
        backbone, tokenizer = load_backbone(dataclasses.replace(config.backbone, pretrained=config.backbone.pretrained and pretrained))
    pretrained_parts: dict[str, str] = {}
    if config.backbone.pretrained:
        pretrained_parts["backbone"] = config.backbone.name
    lm_width = backbone.get_input_embeddings().embedding_dim
    embedding_rms = 1.0  # out_norm's starting gain; measured only when an adapter has one (a pass over the vocab)
    if "rmsnorm" in (config.adapters.image.out_norm, config.adapters.audio.out_norm):
        embedding_rms = float(backbone.get_input_embeddings().weight.detach().float().pow(2).mean(-1).sqrt().mean())

    encoders, adapters = {}, {}
    image_cfg, audio_cfg = config.encoders.image, config.encoders.audio
    if image_cfg is not None:
        if image_cfg.pretrained:
            pretrained_parts["image_encoder"] = f"{image_cfg.name} ({image_cfg.pretrained})"
        if not pretrained and image_cfg.source == "timm":
            image_cfg = dataclasses.replace(image_cfg, pretrained="")
        encoders["image"] = VisionEncoder(image_cfg)
        adapters["image"] = Adapter(config.adapters.image, encoders["image"].out_dim, lm_width, embedding_rms)
    if audio_cfg is not None:
        if audio_cfg.name:
            pretrained_parts["audio_encoder"] = audio_cfg.name
        encoders["audio"] = AudioEncoder(audio_cfg)
        adapters["audio"] = Adapter(config.adapters.audio, encoders["audio"].out_dim, lm_width, embedding_rms)

    heads = {}
    if config.heads.ctc:
        if "audio" not in encoders:
            raise ValueError("heads.ctc needs an audio encoder (encoders.audio is null)")
        from tasks.ctc_units import ctc_units

        units = ctc_units(config.heads)
        if units.kind == "phonemes" and units.accent:
            try:  # fail at build, not at the first training batch
                units.encode("a")
            except ValueError as e:
                raise ValueError(f"heads.ctc_phone_accent: {e}") from e
        from tasks.ctc_head import build_ctc_head

        heads["ctc"] = build_ctc_head(encoders["audio"].out_dim, len(units.vocab), config.heads.ctc_layers)
    if config.heads.ctc_shared and (not config.heads.ctc or config.heads.ctc_layers < 1):
        raise ValueError("heads.ctc_shared feeds the adapter from the CTC head's layers: it needs heads.ctc true and "
                         f"heads.ctc_layers >= 1 (got ctc={config.heads.ctc}, ctc_layers={config.heads.ctc_layers})")
    heads.update(_text_heads(config, lm_width))

    tokenizer.add_tokens([PLACEHOLDERS[m] for m in encoders], special_tokens=True)
    model = MultimodalModel(config, backbone, tokenizer, encoders, adapters, pretrained_parts, heads)
    apply_training_modes(model)
    return model


def _text_heads(config: Config, lm_width: int) -> dict[str, torch.nn.Module]:
    """The classification and tagging heads; none while its label list is empty (training fills it from data)."""
    from tasks.heads import SequenceClassificationHead, TokenClassificationHead

    heads: dict[str, torch.nn.Module] = {}
    classify, tag = config.heads.classify, config.heads.tag
    if classify is not None and classify.labels:
        heads["classify"] = SequenceClassificationHead(lm_width, classify, config.backbone.kind == "causal")
    if tag is not None and tag.labels:
        heads["tag"] = TokenClassificationHead(lm_width, tag)
    return heads
