"""Everyday names for ImageNet-1k classes: "malamute" and "German shepherd" are both a dog to a person writing a
caption, and "kite" (the class) is a bird.

ImageNet's leaves are fine-grained (118 dog breeds, 59 bird species); a captioner that copies them writes "a
malamute and a German shepherd in a park" for a photo of a dog. `basic_name` maps a class index to the word a
person would use, where one word covers the class: its WordNet parent at the basic level (dog, bird, snake,
monkey, car, ...). Classes that are already everyday words (zebra, lion, pizza, ...) keep their own name.
The ranges below follow ImageNet-1k's class order (timm's `ImageNetInfo`); the test checks each range against
the class names.
"""

from __future__ import annotations

# (first index, last index inclusive, basic name)
RANGES: tuple[tuple[int, int, str], ...] = (
    (0, 6, "fish"),  # tench .. stingray
    (10, 21, "bird"),  # brambling .. kite (the bird)
    (22, 22, "eagle"),  # bald eagle
    (24, 24, "owl"),  # great grey owl
    (25, 29, "salamander"),  # European fire salamander .. axolotl
    (30, 32, "frog"),  # bullfrog, tree frog, tailed frog
    (33, 37, "turtle"),  # loggerhead .. box turtle
    (38, 48, "lizard"),  # banded gecko .. Komodo dragon
    (49, 50, "crocodile"),  # African crocodile, American alligator
    (52, 68, "snake"),  # thunder snake .. sidewinder
    (72, 77, "spider"),  # black and gold garden spider .. wolf spider
    (80, 96, "bird"),  # black grouse .. toucan
    (97, 98, "duck"),  # drake, red-breasted merganser
    (101, 101, "elephant"),  # tusker
    (118, 121, "crab"),  # Dungeness crab .. king crab
    (122, 123, "lobster"),  # American lobster, spiny lobster
    (125, 125, "crab"),  # hermit crab
    (127, 144, "bird"),  # white stork .. pelican
    (145, 145, "penguin"),  # king penguin
    (146, 146, "bird"),  # albatross
    (147, 148, "whale"),  # grey whale, killer whale
    (151, 268, "dog"),  # Chihuahua .. Mexican hairless
    (269, 271, "wolf"),  # timber wolf, white wolf, red wolf
    (273, 275, "dog"),  # dingo, dhole, African hunting dog
    (277, 280, "fox"),  # red fox .. grey fox
    (281, 285, "cat"),  # tabby .. Egyptian cat
    (294, 297, "bear"),  # brown bear .. sloth bear
    (300, 307, "beetle"),  # tiger beetle .. weevil
    (321, 326, "butterfly"),  # admiral .. lycaenid
    (330, 332, "rabbit"),  # wood rabbit, hare, Angora
    (335, 335, "squirrel"),  # fox squirrel
    (339, 339, "horse"),  # sorrel
    (341, 343, "pig"),  # hog, wild boar, warthog
    (345, 345, "cow"),  # ox
    (348, 349, "sheep"),  # ram, bighorn
    (350, 353, "antelope"),  # ibex .. gazelle
    (354, 354, "camel"),  # Arabian camel
    (365, 368, "ape"),  # orangutan .. gibbon
    (369, 384, "monkey"),  # siamang .. indri
    (385, 386, "elephant"),  # Indian elephant, African elephant
    (387, 388, "panda"),  # lesser panda, giant panda
    (389, 397, "fish"),  # barracouta .. puffer
)
SINGLES: dict[int, str] = {
    404: "airplane", 895: "airplane",  # airliner, warplane
    436: "car", 468: "car", 511: "car", 609: "car", 627: "car", 656: "car", 661: "car", 751: "car", 817: "car",
    569: "truck", 675: "truck", 717: "truck", 864: "truck", 867: "truck",  # garbage truck .. trailer truck
    555: "fire truck",  # fire engine
    444: "bicycle", 671: "bicycle",  # bicycle-built-for-two, mountain bike
    670: "scooter",  # motor scooter
    654: "bus", 779: "bus", 874: "bus",  # minibus, school bus, trolleybus
    472: "boat", 484: "boat", 554: "boat", 625: "boat", 814: "boat", 871: "boat", 914: "boat",
    510: "ship",  # container ship
    547: "train", 820: "train", 466: "train",  # electric locomotive, steam locomotive, bullet train
    829: "tram",  # streetcar
    981: "man", 982: "man", 983: "diver",  # ballplayer, groom, scuba diver
}


def basic_name(index: int, name: str) -> str:
    """The everyday name of ImageNet-1k class `index` (its own `name` when that is already one)."""
    if index in SINGLES:
        return SINGLES[index]
    for first, last, basic in RANGES:
        if first <= index <= last:
            return basic
    return name
