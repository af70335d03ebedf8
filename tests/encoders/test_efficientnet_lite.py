"""EfficientNet-Lite0 ImageNet weights from their package, mapped into timm, predict real photos right.

The top-5 on scikit-image's photos (2026-11-29): chelsea -> tiger cat, Egyptian cat, tabby, lynx, window screen;
coffee -> espresso, cup, consomme, chocolate sauce, coffee mug; rocket -> missile, projectile, drilling platform,
space shuttle, mosque. Run with -s to print them.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from encoders import VisionEncoder, VisionEncoderConfig
from encoders import efficientnet_lite

pytestmark = pytest.mark.pretrained

TOP_K = 5
# ImageNet-1k class indices a correct model puts in its top 5 for scikit-image's sample photos.
EXPECTED_CLASSES = {
    "chelsea": {281, 282, 283, 284, 285, 287},  # tabby, tiger cat, Persian, Siamese, Egyptian cat, lynx
    "coffee": {504, 967, 968},  # coffee mug, espresso, cup
    "rocket": {657, 744, 812},  # missile, projectile, space shuttle
}


@pytest.fixture(scope="module")
def package_encoder(classifier):
    return VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", pretrained="package", image_size=224)).eval()


@pytest.fixture(scope="module")
def classifier():
    pytest.importorskip("timm")
    try:
        efficientnet_lite.weights_path()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    return efficientnet_lite.build_efficientnet_lite0(pretrained=True).eval()


def test_mapping_uses_every_source_key_and_fills_every_target_key(classifier):
    source = torch.load(efficientnet_lite.weights_path(), map_location="cpu", weights_only=True)
    mapping = efficientnet_lite.key_mapping(classifier)
    target_keys = set(classifier.state_dict())
    assert set(source) == set(mapping)  # every source key has a place, and nothing is mapped from thin air
    assert set(mapping.values()) == target_keys  # every timm key is filled (the source has num_batches_tracked)
    assert len(set(mapping.values())) == len(mapping)  # one-to-one
    for source_key, target_key in mapping.items():
        assert source[source_key].shape == classifier.state_dict()[target_key].shape, source_key


def test_loaded_weights_equal_the_file(classifier):
    source = torch.load(efficientnet_lite.weights_path(), map_location="cpu", weights_only=True)
    state = classifier.state_dict()
    torch.testing.assert_close(state["blocks.5.3.conv_pwl.weight"], source["_blocks.14._project_conv.weight"])
    torch.testing.assert_close(state["classifier.bias"], source["_fc.bias"])


@pytest.mark.parametrize("photo", sorted(EXPECTED_CLASSES))
def test_imagenet_predictions_on_real_photos(classifier, package_encoder, photo):
    skimage_data = pytest.importorskip("skimage.data")
    from timm.data import ImageNetInfo

    image = Image.fromarray(getattr(skimage_data, photo)()).convert("RGB")
    pixel_values = package_encoder.preprocess([image])  # (1, 3, 224, 224)
    with torch.no_grad():
        logits = classifier(pixel_values)  # (1, 1000)
    top = logits[0].topk(TOP_K).indices.tolist()
    info = ImageNetInfo()
    print(photo, "top-5:", [(index, info.index_to_description(index)) for index in top])
    expected = sorted(EXPECTED_CLASSES[photo])
    assert top[0] in expected, f"{photo}: top-5 {top}, expected the top-1 in {expected}"


def test_encoder_with_package_weights_gives_a_7x7x1280_grid(classifier, package_encoder):
    encoder = package_encoder
    assert encoder.out_dim == 1280 and encoder.grid_size == (7, 7)
    pixel_values = torch.randn(1, 3, 224, 224)
    output = encoder(pixel_values)
    assert output.features.shape == (1, 49, 1280) and output.grid == (7, 7)
    with torch.no_grad():  # same weights as the classifier's trunk
        expected = classifier.forward_features(pixel_values).flatten(2).transpose(1, 2)  # (1, 49, 1280)
    torch.testing.assert_close(output.features, expected)
