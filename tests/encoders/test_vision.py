"""VisionEncoder on tiny random timm models and a tiny transformers ViT (parity with the wrapped model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from encoders import EncoderOutput, VisionEncoder, VisionEncoderConfig

TINY_VIT = VisionEncoderConfig(
    name="vit_tiny_patch16_224",
    image_size=32,
    model_kwargs={"patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2},
)


def test_tiny_timm_vit_grid_and_mask():
    encoder = VisionEncoder(TINY_VIT).eval()
    assert encoder.out_dim == 32
    assert encoder.grid_size == (4, 4)
    assert encoder.n_tokens == 16
    pixel_values = torch.randn(2, 3, 32, 32)
    output = encoder(pixel_values)
    assert isinstance(output, EncoderOutput)
    assert output.features.shape == (2, 16, 32)
    assert output.mask.dtype == torch.bool and output.mask.all() and output.mask.shape == (2, 16)
    assert output.grid == (4, 4)
    # the prefix (class) token is dropped: features are forward_features without its first token
    with torch.no_grad():
        full = encoder.model.forward_features(pixel_values)  # (B, 1 + T, D)
    torch.testing.assert_close(output.features, full[:, 1:])


def test_timm_cnn_flattens_its_final_map_row_major():
    encoder = VisionEncoder(VisionEncoderConfig(name="resnet10t", image_size=64)).eval()
    assert encoder.grid_size == (2, 2)
    pixel_values = torch.randn(1, 3, 64, 64)
    output = encoder(pixel_values)
    assert output.features.shape == (1, 4, encoder.out_dim) and output.grid == (2, 2)
    with torch.no_grad():
        feature_map = encoder.model.forward_features(pixel_values)  # (B, C, H, W)
    torch.testing.assert_close(output.features[0, 1], feature_map[0, :, 0, 1])  # token 1 = row 0, column 1
    torch.testing.assert_close(output.features[0, 2], feature_map[0, :, 1, 0])  # token 2 = row 1, column 0


def test_extra_feature_stages_append_pooled_earlier_maps_to_each_token():
    config = VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, extra_feature_stages=[1, 2])
    encoder = VisionEncoder(config).eval()
    assert encoder.out_dim == 1280 + 24 + 40 and encoder.grid_size == (2, 2)
    pixel_values = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        output = encoder(pixel_values)
        final = encoder.model.forward_features(pixel_values)  # (B, 1280, 2, 2)
        stage_2 = encoder.model.forward_intermediates(pixel_values, indices=[2], intermediates_only=True)[0]  # (B, 40, 8, 8)
    assert output.features.shape == (2, 4, 1280 + 64)
    torch.testing.assert_close(output.features[..., :1280], final.flatten(2).transpose(1, 2))  # the final map first
    # token 1 (row 0, column 1) ends with the mean of stage 2's top-right 4x4 block
    torch.testing.assert_close(output.features[:, 1, 1280 + 24 :], stage_2[:, :, :4, 4:].mean(dim=(2, 3)))


@pytest.mark.parametrize("stages, message", [([4], "not among"), ([-1], "not among"), ([1, 1], "each once")])
def test_extra_feature_stages_out_of_range_are_named(stages, message):
    with pytest.raises(ValueError, match=message):
        VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, extra_feature_stages=stages))


def test_extra_feature_stages_refused_for_a_vit():
    with pytest.raises(ValueError, match="timm CNNs"):
        VisionEncoder(VisionEncoderConfig(**{**TINY_VIT.__dict__, "extra_feature_stages": [0]}))


def test_output_stage_cuts_the_network_after_that_stage():
    config = VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, output_stage=3, extra_feature_stages=[1])
    encoder = VisionEncoder(config).eval()
    assert encoder.out_dim == 112 + 24 and encoder.grid_size == (4, 4)  # stride 16 at 64 px
    pixel_values = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        output = encoder(pixel_values)
        stage_1, stage_3 = encoder.model.forward_intermediates(pixel_values, indices=[1, 3], intermediates_only=True)
    assert output.features.shape == (2, 16, 136) and output.grid == (4, 4)
    torch.testing.assert_close(output.features[..., :112], stage_3.flatten(2).transpose(1, 2))  # the stage's map first
    # token 5 (row 1, column 1) ends with the mean of stage 1's (16x16 map) 4x4 block at rows 4-7, columns 4-7
    torch.testing.assert_close(output.features[:, 5, 112:], stage_1[:, :, 4:8, 4:8].mean(dim=(2, 3)))
    # the layers after stage 3 never run: the head's output would not change the features
    encoder.model.conv_head.register_forward_hook(lambda *_: pytest.fail("conv_head ran"))
    encoder(pixel_values)


@pytest.mark.parametrize("stage, extra, message", [(5, [], "output_stage 5 is not -1"), (-2, [], "output_stage -2"),
                                                    (2, [2], "the output stage"), (2, [5], "out of range")])
def test_output_stage_and_its_extra_stages_are_checked(stage, extra, message):
    with pytest.raises(ValueError, match=message):
        VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, output_stage=stage,
                                          extra_feature_stages=extra))


def test_a_later_stage_is_repeated_onto_the_output_grid():
    config = VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, output_stage=3, extra_feature_stages=[4, 1])
    encoder = VisionEncoder(config).eval()
    assert encoder.out_dim == 112 + 320 + 24 and encoder.grid_size == (4, 4)
    pixel_values = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        output = encoder(pixel_values)
        stage_1, stage_3, stage_4 = encoder.model.forward_intermediates(pixel_values, indices=[1, 3, 4],
                                                                        intermediates_only=True)  # 16, 4, 2 px maps
    torch.testing.assert_close(output.features[..., :112], stage_3.flatten(2).transpose(1, 2))
    # token 5 (row 1, column 1) holds stage 4's (2x2 map) top-left cell, then stage 1's mean over rows/columns 4-7
    torch.testing.assert_close(output.features[:, 5, 112:432], stage_4[:, :, 0, 0])
    torch.testing.assert_close(output.features[:, 15, 112:432], stage_4[:, :, 1, 1])
    torch.testing.assert_close(output.features[:, 5, 432:], stage_1[:, :, 4:8, 4:8].mean(dim=(2, 3)))


def test_output_stage_refused_for_a_vit():
    with pytest.raises(ValueError, match="timm CNNs"):
        VisionEncoder(VisionEncoderConfig(**{**TINY_VIT.__dict__, "output_stage": 1}))


def test_random_init_efficientnet_lite_grid():
    encoder = VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64))
    assert encoder.out_dim == 1280 and encoder.grid_size == (2, 2)


def test_preprocess_uses_the_models_data_config():
    encoder = VisionEncoder(TINY_VIT)
    images = [Image.new("RGB", (50, 40), (255, 255, 255)), Image.new("L", (20, 90), 0)]
    pixel_values = encoder.preprocess(images)
    assert pixel_values.shape == (2, 3, 32, 32) and pixel_values.dtype == torch.float32
    # vit_tiny_patch16_224 normalises with mean = std = 0.5: white -> 1, black -> -1
    torch.testing.assert_close(pixel_values[0], torch.ones(3, 32, 32), atol=1e-5, rtol=0)
    torch.testing.assert_close(pixel_values[1], -torch.ones(3, 32, 32), atol=1e-5, rtol=0)


def test_preprocess_efficientnet_lite_normalises_with_half():
    encoder = VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64))
    gray = Image.new("RGB", (64, 64), (51, 51, 51))  # 0.2 -> (0.2 - 0.5) / 0.5 = -0.6
    pixel_values = encoder.preprocess([gray])
    assert pixel_values.shape == (1, 3, 64, 64)
    torch.testing.assert_close(pixel_values, torch.full_like(pixel_values, -0.6), atol=1e-5, rtol=0)


def test_package_weights_only_for_efficientnet_lite():
    with pytest.raises(ValueError, match="tf_efficientnet_lite0"):
        VisionEncoder(VisionEncoderConfig(name="resnet10t", pretrained="package"))


def test_tags_are_the_imagenet_heads_top_classes():
    from encoders.vision import imagenet_names

    torch.manual_seed(0)
    encoder = VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, tags=3)).eval()
    pixel_values = torch.randn(2, 3, 64, 64)
    names = encoder.tag_names(pixel_values)
    # Independently: the mean of the final map (a CNN's global average pool), then the ImageNet head.
    with torch.no_grad():
        pooled = encoder.model.forward_features(pixel_values).mean(dim=(2, 3))  # (2, 1280)
        top = encoder.tag_head(pooled).topk(3).indices.tolist()
    assert names == [[imagenet_names()[i] for i in row] for row in top]
    assert all(len(row) == 3 and len(set(row)) == 3 for row in names)
    assert encoder(pixel_values).features.shape == (2, 4, 1280)  # the tag head leaves the tokens alone
    cut = VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, tags=3, output_stage=3)).eval()
    cut.load_state_dict(encoder.state_dict())
    assert cut.tag_names(pixel_values) == names  # tags come from the whole network, whatever grid the tokens use


def test_a_vit_gives_tags_from_its_class_token():
    encoder = VisionEncoder(VisionEncoderConfig(**{**TINY_VIT.__dict__, "tags": 2}))
    names = encoder.tag_names(torch.randn(3, 3, 32, 32))
    assert len(names) == 3 and all(len(row) == 2 for row in names)
    assert encoder.training  # tagging ran in eval mode and left the mode as it was


def test_tags_need_an_imagenet_head():
    with pytest.raises(ValueError, match="tags must be 0 .none. to 1000, got -1"):
        VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, tags=-1))
    with pytest.raises(ValueError, match="ImageNet-1k classifier"):
        VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, tags=3,
                                          model_kwargs={"num_classes": 10}))
    with pytest.raises(ValueError, match="gives no tags"):
        VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64)).tag_names(torch.zeros(1, 3, 64, 64))


def test_timm_local_weights_file(tmp_path):
    from safetensors.torch import save_file

    source = VisionEncoder(TINY_VIT).eval()
    path = tmp_path / "vit.safetensors"
    save_file(source.model.state_dict(), str(path))
    loaded = VisionEncoder(VisionEncoderConfig(**{**TINY_VIT.__dict__, "pretrained": str(path)})).eval()
    pixel_values = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded(pixel_values).features, source(pixel_values).features)


@pytest.fixture(scope="module")
def tiny_hf_vit_dir(tmp_path_factory):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
    )
    directory = tmp_path_factory.mktemp("tiny_vit")
    ViTModel(config).eval().save_pretrained(directory)
    return directory


@pytest.mark.parametrize("pretrained", ["hub", "dir"])
def test_hf_vit_parity_with_the_wrapped_model(tiny_hf_vit_dir, pretrained):
    from transformers import ViTModel

    directory = str(tiny_hf_vit_dir)
    config = VisionEncoderConfig(
        source="hf", name=directory, pretrained="hub" if pretrained == "hub" else directory, image_size=32
    )
    encoder = VisionEncoder(config).eval()
    assert encoder.out_dim == 32 and encoder.grid_size == (4, 4)
    reference = ViTModel.from_pretrained(directory).eval()
    pixel_values = torch.randn(2, 3, 32, 32)
    output = encoder(pixel_values)
    with torch.no_grad():
        expected = reference(pixel_values=pixel_values).last_hidden_state[:, 1:]  # drop CLS
    assert output.features.shape == (2, 16, 32) and output.grid == (4, 4) and output.mask.all()
    torch.testing.assert_close(output.features, expected)


def test_hf_random_init_from_config_and_preprocess(tiny_hf_vit_dir):
    encoder = VisionEncoder(VisionEncoderConfig(source="hf", name=str(tiny_hf_vit_dir), image_size=32))
    image = Image.fromarray(np.full((40, 60, 3), 255, dtype=np.uint8))
    pixel_values = encoder.preprocess([image])
    assert pixel_values.shape == (1, 3, 32, 32)
    torch.testing.assert_close(pixel_values, torch.ones_like(pixel_values), atol=1e-5, rtol=0)  # mean = std = 0.5
    assert encoder(pixel_values).features.shape == (1, 16, 32)


def test_timm_local_weights_file_with_a_classifier_head(tmp_path):
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("resnet10t", pretrained=False).eval()  # 1000-class head included
    path = tmp_path / "resnet.safetensors"
    save_file(source.state_dict(), str(path))
    encoder = VisionEncoder(VisionEncoderConfig(name="resnet10t", image_size=64, pretrained=str(path))).eval()
    pixel_values = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = source.forward_features(pixel_values).flatten(2).transpose(1, 2)
    torch.testing.assert_close(encoder(pixel_values).features, expected)


def test_hf_dir_with_a_saved_processor_uses_it(tiny_hf_vit_dir, tmp_path):
    import shutil

    from transformers import ViTImageProcessor

    directory = tmp_path / "with_processor"
    shutil.copytree(tiny_hf_vit_dir, directory)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.0] * 3, image_std=[1.0] * 3).save_pretrained(
        directory
    )
    encoder = VisionEncoder(VisionEncoderConfig(source="hf", name=str(directory), pretrained="hub", image_size=32))
    pixel_values = encoder.preprocess([Image.new("RGB", (50, 50), (255, 255, 255))])
    torch.testing.assert_close(pixel_values, torch.ones_like(pixel_values), atol=1e-5, rtol=0)  # mean 0, std 1
    black = encoder.preprocess([Image.new("RGB", (50, 50), (0, 0, 0))])
    torch.testing.assert_close(black, torch.zeros_like(black), atol=1e-5, rtol=0)


def test_encoder_pickles_after_preprocess():
    import pickle

    encoder = VisionEncoder(TINY_VIT)
    encoder.preprocess([Image.new("RGB", (8, 8))])
    clone = pickle.loads(pickle.dumps(encoder))
    assert clone.preprocess([Image.new("RGB", (8, 8))]).shape == (1, 3, 32, 32)
