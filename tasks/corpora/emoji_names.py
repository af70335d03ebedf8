"""Every emoji with its English name, group and subgroup, read from Unicode's `emoji-test.txt`.

Debian's `unicode-data` package installs the file (the Makefile's APT_PACKAGES lists it). Each data line reads

    1F34E ; fully-qualified # 🍎 E0.6 red apple

under `# group:` and `# subgroup:` headers. Only fully-qualified emoji are kept (the forms a font draws with
colour); skin-tone and hair-style variants are kept too but marked (`is_variant`), since their names only add
"medium skin tone" to a base emoji. The table is the same on every machine with the same package version.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

EMOJI_TEST_FILE = Path("/usr/share/unicode/emoji/emoji-test.txt")
UNICODE_DATA_PACKAGE = "unicode-data"  # Debian package that installs it
EMOJI_FONT_FILE = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_FONT_PACKAGE = "fonts-noto-color-emoji"
VARIANT_MARKERS = (" skin tone", ": red hair", ": curly hair", ": white hair", ": bald", ": beard")

_LINE = re.compile(r"^(?P<codes>[0-9A-F ]+?)\s*;\s*(?P<status>[a-z-]+)\s*#\s*(?P<char>\S+)\s+E\d+\.\d+\s+(?P<name>.+)$")


class MissingEmojiData(RuntimeError):
    """emoji-test.txt or the colour emoji font is not installed."""


@dataclass(frozen=True)
class Emoji:
    char: str  # the emoji as a string (one or more code points)
    name: str  # CLDR short name, e.g. "red apple", "flag: Japan"
    group: str  # e.g. "Food & Drink" (9 groups; "Component" is dropped)
    subgroup: str  # e.g. "food-fruit"
    is_variant: bool  # a skin-tone / hair-style form of another emoji


def parse_emoji_test(text: str) -> list[Emoji]:
    """The fully-qualified emoji of an emoji-test.txt text, in file order."""
    group = subgroup = ""
    table: list[Emoji] = []
    for line in text.splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            match = _LINE.match(line)
            if match is None or match["status"] != "fully-qualified" or group == "Component":
                continue
            name = match["name"].strip()
            char = "".join(chr(int(code, 16)) for code in match["codes"].split())
            table.append(Emoji(char, name, group, subgroup, any(m in name for m in VARIANT_MARKERS)))
    return table


@functools.cache
def emoji_table(path: str | Path = EMOJI_TEST_FILE) -> tuple[Emoji, ...]:
    """Every fully-qualified emoji of the installed Unicode data (3,600+ in Unicode 15)."""
    path = Path(path)
    if not path.is_file():
        raise MissingEmojiData(f"{path} not found: install the Debian package '{UNICODE_DATA_PACKAGE}' "
                               "(`make setup` does)")
    return tuple(parse_emoji_test(path.read_text(encoding="utf-8")))


def emoji_font_path() -> Path:
    if not EMOJI_FONT_FILE.is_file():
        raise MissingEmojiData(f"{EMOJI_FONT_FILE} not found: install the Debian package '{EMOJI_FONT_PACKAGE}' "
                               "(`make setup` does)")
    return EMOJI_FONT_FILE
