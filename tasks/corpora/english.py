"""English the corpora's captions need everywhere: "a" or "an" before a phrase."""

from __future__ import annotations

# Spelling that misleads: a vowel letter sounding like a consonant ("a unicorn") and the reverse ("an hourglass").
A_BEFORE_VOWEL = ("one", "uni", "use", "usa", "u.s.", "us ", "uk ", "utensil", "utility", "usb", "eu", "ewe", "ufo")
AN_BEFORE_CONSONANT = ("hour", "honest", "heir", "lcd", "rca", "xbox", "x-ray", "mri", "sos", "hdmi", "ng ", "mx ")


def indefinite_article(phrase: str) -> str:
    """ "a" or "an" for the phrase's first sound, by spelling ("an owl", "a unicorn", "an hourglass", "an SOS")."""
    lower = phrase.lower() + " "
    if lower.startswith(AN_BEFORE_CONSONANT):
        return "an"
    if lower.startswith(A_BEFORE_VOWEL):
        return "a"
    return "an" if lower[0] in "aeiou" else "a"
