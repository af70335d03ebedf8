"""Everyday names for ImageNet classes (encoders/imagenet_basic.py): each range starts and ends on the classes its
comment names, and an encoder with tag_words=everyday words its tags that way."""

import pytest
import torch

from encoders.imagenet_basic import RANGES, SINGLES, basic_name
from encoders.vision import VisionEncoder, VisionEncoderConfig, imagenet_names

# first and last class of each range, as ImageNet-1k (timm) names them
BOUNDS = {0: "tench", 6: "stingray", 10: "brambling", 21: "kite", 22: "bald eagle", 24: "great grey owl",
          25: "European fire salamander", 29: "axolotl", 30: "bullfrog", 32: "tailed frog", 33: "loggerhead",
          37: "box turtle", 38: "banded gecko", 48: "Komodo dragon", 49: "African crocodile", 50: "American alligator",
          52: "thunder snake", 68: "sidewinder", 72: "black and gold garden spider", 77: "wolf spider",
          80: "black grouse", 96: "toucan", 97: "drake", 98: "red-breasted merganser", 101: "tusker",
          118: "Dungeness crab", 121: "king crab", 122: "American lobster", 123: "spiny lobster", 125: "hermit crab",
          127: "white stork", 144: "pelican", 145: "king penguin", 146: "albatross", 147: "grey whale",
          148: "killer whale", 151: "Chihuahua", 268: "Mexican hairless", 269: "timber wolf", 271: "red wolf",
          273: "dingo", 275: "African hunting dog", 277: "red fox", 280: "grey fox", 281: "tabby", 285: "Egyptian cat",
          294: "brown bear", 297: "sloth bear", 300: "tiger beetle", 307: "weevil", 321: "admiral", 326: "lycaenid",
          330: "wood rabbit", 332: "Angora", 335: "fox squirrel", 339: "sorrel", 341: "hog", 343: "warthog", 345: "ox",
          348: "ram", 349: "bighorn", 350: "ibex", 353: "gazelle", 354: "Arabian camel", 365: "orangutan",
          368: "gibbon", 369: "siamang", 384: "indri", 385: "Indian elephant", 386: "African elephant",
          387: "lesser panda", 388: "giant panda", 389: "barracouta", 397: "puffer"}


def test_each_range_starts_and_ends_on_the_classes_it_names():
    names = imagenet_names()
    assert {i for first, last, _ in RANGES for i in (first, last)} == set(BOUNDS)
    assert all(names[i] == name for i, name in BOUNDS.items())
    covered = [i for first, last, _ in RANGES for i in range(first, last + 1)]
    assert len(covered) == len(set(covered)) and not set(covered) & set(SINGLES)  # no class named twice
    assert names[404] == "airliner" and basic_name(404, names[404]) == "airplane"
    assert names[982] == "groom" and basic_name(982, names[982]) == "man"


@pytest.mark.parametrize("index, word", [(151, "dog"), (235, "dog"), (150, "sea lion"), (269, "wolf"),
                                         (21, "bird"), (340, "zebra"), (963, "pizza")])
def test_basic_names(index, word):
    assert basic_name(index, imagenet_names()[index]) == word


def test_everyday_tags_are_the_same_classes_worded_plainly_without_repeats():
    torch.manual_seed(0)
    config = VisionEncoderConfig(name="tf_efficientnet_lite0", image_size=64, tags=5)
    encoder = VisionEncoder(config).eval()
    pixel_values = torch.randn(3, 3, 64, 64)
    encoder.config.tag_words = "everyday"
    everyday = encoder.tag_names(pixel_values)
    with torch.no_grad():  # independently: the ImageNet head's top classes on the pooled final map
        top = encoder.tag_head(encoder.model.forward_features(pixel_values).mean(dim=(2, 3))).topk(5).indices.tolist()
    names = imagenet_names()
    for row, words in zip(top, everyday):
        assert words == list(dict.fromkeys(basic_name(i, names[i]) for i in row))
