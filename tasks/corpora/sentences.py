"""Natural English sentences for synthetic speech, cut from Debian's `fortunes` quote files.

Fortunes are thousands of quotes, jokes and aphorisms by many authors: varied vocabulary and syntax, unlike a
handful of templates. Each sentence becomes a transcript that espeak-ng speaks verbatim, so the text is
normalised to what a listener could write down from the audio:

- case and the punctuation `. , ? ! ; : ' -` are kept (an LM-based recogniser can produce them, and espeak's
  prosody marks most of them: pauses at commas, a rise at `?`); quotes, brackets and dashes between words,
  which espeak does not pronounce, are removed or turned into commas;
- a sentence is dropped when espeak would read something other than its letters: digits ("1984" becomes
  "nineteen eighty four"), symbols (`&`, `%`, `$`, `/`...), all-capital words (read letter by letter or not),
  abbreviations with inner periods ("e.g.", "U.S."), non-ASCII or control characters (overstruck text);
- 3-25 words, deduplicated, sorted, so the list is the same on every machine with the same package version.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

FORTUNE_DIR = Path("/usr/share/games/fortunes")
FORTUNE_PACKAGE = "fortunes"  # Debian package (the Makefile's APT_PACKAGES installs it)
SKIPPED_FILES = frozenset({"ascii-art"})  # pictures, not prose
MIN_WORDS, MAX_WORDS = 3, 25

ENTRY_SEPARATOR = re.compile(r"^%\s*$", re.MULTILINE)
ATTRIBUTION = re.compile(r"^\s*(--|~~)")  # "\t\t-- Mark Twain": the entry ends there
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
SPOKEN_DASH = re.compile(r"\s+-+\s+|--+")  # a dash between words is a pause: spoken as a comma
UNSPOKEN = re.compile(r"[\"()\[\]{}`]|(?<![A-Za-z])'|'(?![A-Za-z])")  # quotes, brackets, quote-like apostrophes
ALLOWED = re.compile(r"^[A-Za-z][A-Za-z ,.?!;:'-]*[.?!]$")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof rev gen col capt sgt lt vs etc no vol ed inc ltd co mt ft".split()
)


class MissingSentenceSource(RuntimeError):
    """The fortune files are not installed."""


def _entries(text: str) -> list[str]:
    """A fortune file's quotes, each cut at its attribution line."""
    entries = []
    for raw in ENTRY_SEPARATOR.split(text):
        lines = []
        for line in raw.splitlines():
            if ATTRIBUTION.match(line):
                break
            lines.append(line)
        entries.append(" ".join(lines))
    return entries


def normalize_sentence(sentence: str) -> str | None:
    """The transcript for one candidate sentence, or None when espeak would not read it as written."""
    if not sentence.isascii() or any(ord(c) < 32 for c in sentence.replace("\t", " ")):
        return None
    text = SPOKEN_DASH.sub(", ", sentence)
    text = UNSPOKEN.sub("", text)
    text = re.sub(r"\s+([,.?!;:])", r"\1", text)  # no space before punctuation
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)  # ", ," left by removed dashes
    text = re.sub(r"\s+", " ", text).strip().lstrip(",;: ")
    text = re.sub(r"[.!?]{2,}$", lambda m: m.group(0)[-1], text)  # "...", "?!" -> one mark
    if not ALLOWED.match(text) or "." in text[:-1]:
        return None  # digits, symbols, inner periods (abbreviations, ellipses), no final mark
    words = WORD.findall(text)
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    if any(len(w) > 1 and w.isupper() for w in words) or any(w.strip("'-") != w for w in words):
        return None  # acronyms; dangling apostrophes/hyphens
    if len(words[-1]) == 1 and words[-1] not in ("I", "a") or words[-1].lower() in ABBREVIATIONS:
        return None  # cut after an initial or an abbreviation ("J.", "Mr.")
    return text


def split_sentences(entry: str) -> list[str]:
    """An entry's sentences, split after `.`, `!` or `?` followed by a capital."""
    return [s.strip() for s in SENTENCE_END.split(re.sub(r"\s+", " ", entry)) if s.strip()]


@functools.lru_cache(maxsize=None)
def _sentences(fortune_dir: Path) -> tuple[str, ...]:
    files = sorted(p for p in fortune_dir.iterdir() if p.is_file() and not p.suffix and p.name not in SKIPPED_FILES)
    if not files:
        raise MissingSentenceSource(
            f"no fortune files in {fortune_dir}: install the Debian package `{FORTUNE_PACKAGE}` "
            f"(apt-get install -y {FORTUNE_PACKAGE}, or `make setup`)"
        )
    found = set()
    for path in files:
        for entry in _entries(path.read_text(encoding="latin-1")):
            found.update(s for s in map(normalize_sentence, split_sentences(entry)) if s)
    return tuple(sorted(found))


def sentences(fortune_dir: Path = FORTUNE_DIR) -> list[str]:
    """Every usable sentence (normalised transcript), deduplicated and sorted; cached per folder.

    Raises MissingSentenceSource, naming the Debian package, when the fortune files are missing.
    """
    if not Path(fortune_dir).is_dir():
        raise MissingSentenceSource(
            f"{fortune_dir} does not exist: install the Debian package `{FORTUNE_PACKAGE}` "
            f"(apt-get install -y {FORTUNE_PACKAGE}, or `make setup`)"
        )
    return list(_sentences(Path(fortune_dir)))
