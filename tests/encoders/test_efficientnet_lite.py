"""EfficientNet-Lite0/1/2 ImageNet weights from their packages, mapped into timm, predict real photos right.

The top-5 of Lite0 on scikit-image's photos (2026-11-29): chelsea -> tiger cat, Egyptian cat, tabby, lynx,
window screen; coffee -> espresso, cup, consomme, chocolate sauce, coffee mug; rocket -> missile, projectile,
drilling platform, space shuttle, mosque. Lite2 puts drilling platform first on the rocket (missile second),
so a right class must be among the first two. Run with -s to print each variant's.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from encoders import VisionEncoder, VisionEncoderConfig
from encoders import efficientnet_lite

pytestmark = pytest.mark.pretrained

TOP_K = 5
TOP_RIGHT = 2  # a right class must be among the first TOP_RIGHT
# ImageNet-1k class indices a correct model ranks first for scikit-image's sample photos.
EXPECTED_CLASSES = {
    "chelsea": {281, 282, 283, 284, 285, 287},  # tabby, tiger cat, Persian, Siamese, Egyptian cat, lynx
    "coffee": {504, 967, 968},  # coffee mug, espresso, cup
    "rocket": {657, 744, 812},  # missile, projectile, space shuttle
}
VARIANTS = sorted(efficientnet_lite.VARIANTS)
# Final feature grid at each variant's native input size: Lite0 224 -> 7x7, Lite1 240 -> 8x8, Lite2 260 -> 9x9.
GRIDS = {"tf_efficientnet_lite0": (7, 7), "tf_efficientnet_lite1": (8, 8), "tf_efficientnet_lite2": (9, 9)}


def native_size(name: str) -> int:
    return efficientnet_lite.VARIANTS[name][3]


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request):
    """(name, ImageNet classifier, package encoder at the native size) of one Lite variant."""
    pytest.importorskip("timm")
    name = request.param
    try:
        efficientnet_lite.weights_path(name)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    classifier = efficientnet_lite.build_efficientnet_lite(name, pretrained=True).eval()
    encoder = VisionEncoder(VisionEncoderConfig(name=name, pretrained="package", image_size=native_size(name))).eval()
    return name, classifier, encoder


def test_mapping_uses_every_source_key_and_fills_every_target_key(variant):
    name, classifier, _ = variant
    source = torch.load(efficientnet_lite.weights_path(name), map_location="cpu", weights_only=True)
    mapping = efficientnet_lite.key_mapping(classifier)
    target_keys = set(classifier.state_dict())
    assert set(source) == set(mapping)  # every source key has a place, and nothing is mapped from thin air
    assert set(mapping.values()) == target_keys  # every timm key is filled (the source has num_batches_tracked)
    assert len(set(mapping.values())) == len(mapping)  # one-to-one
    for source_key, target_key in mapping.items():
        assert source[source_key].shape == classifier.state_dict()[target_key].shape, source_key


def test_loaded_weights_equal_the_file(variant):
    name, classifier, _ = variant
    source = torch.load(efficientnet_lite.weights_path(name), map_location="cpu", weights_only=True)
    state = classifier.state_dict()
    last_block = max(int(key.split(".")[1]) for key in source if key.startswith("_blocks."))
    torch.testing.assert_close(state["blocks.6.0.conv_pwl.weight"], source[f"_blocks.{last_block}._project_conv.weight"])
    torch.testing.assert_close(state["classifier.bias"], source["_fc.bias"])


@pytest.mark.parametrize("photo", sorted(EXPECTED_CLASSES))
def test_imagenet_predictions_on_real_photos(variant, photo):
    skimage_data = pytest.importorskip("skimage.data")
    from timm.data import ImageNetInfo

    name, classifier, encoder = variant
    image = Image.fromarray(getattr(skimage_data, photo)()).convert("RGB")
    pixel_values = encoder.preprocess([image])  # (1, 3, S, S)
    with torch.no_grad():
        logits = classifier(pixel_values)  # (1, 1000)
    top = logits[0].topk(TOP_K).indices.tolist()
    info = ImageNetInfo()
    print(name, photo, "top-5:", [(index, info.index_to_description(index)) for index in top])
    expected = sorted(EXPECTED_CLASSES[photo])
    assert set(top[:TOP_RIGHT]) & set(expected), f"{name} {photo}: top-5 {top}, expected one of {expected} first"


def test_encoder_with_package_weights_gives_the_final_grid(variant):
    name, classifier, encoder = variant
    size, grid = native_size(name), GRIDS[name]
    assert encoder.out_dim == 1280 and encoder.grid_size == grid
    pixel_values = torch.randn(1, 3, size, size)
    output = encoder(pixel_values)
    assert output.features.shape == (1, grid[0] * grid[1], 1280) and output.grid == grid
    with torch.no_grad():  # same weights as the classifier's trunk
        expected = classifier.forward_features(pixel_values).flatten(2).transpose(1, 2)  # (1, H*W, 1280)
    torch.testing.assert_close(output.features, expected)


def test_package_weights_only_for_the_lite_variants():
    with pytest.raises(ValueError, match="only for"):
        efficientnet_lite.weights_path("tf_efficientnet_b0")
    with pytest.raises(ValueError, match="ships weights only for"):
        VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_b0", pretrained="package"))


def test_tags_name_what_the_photo_shows():
    skimage_data = pytest.importorskip("skimage.data")
    encoder = VisionEncoder(VisionEncoderConfig(name="tf_efficientnet_lite0", pretrained="package", tags=3)).eval()
    images = [Image.fromarray(getattr(skimage_data, photo)()).convert("RGB") for photo in ("chelsea", "coffee")]
    cat, coffee = encoder.tag_names(encoder.preprocess(images))
    assert cat[0] in {"tiger cat", "Egyptian cat", "tabby"} and coffee[0] == "espresso", (cat, coffee)
