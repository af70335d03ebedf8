"""CTC on phonemes: espeak-ng's IPA phones as the speech encoder's targets.

A character CTC head must learn English spelling from the audio alone ("the mountin cing"); a phone head
only has to hear the sounds, and a pronunciation lexicon (tasks/ctc_lexicon.py) turns phones back into
words. Targets come from espeak-ng through the `phonemizer` package, in the accent of the row's `voice`
column when it has one ("en-gb-scotland+m3" -> en-gb-scotland), so a Scottish clip is labelled with the
phones it was spoken with; rows without a voice (a user's recordings) get `DEFAULT_ACCENT`. With a fixed
accent (heads.ctc_phone_accent) every clip is labelled in that one accent instead: the head then learns to
write, say, American phones for a Scottish voice, and the lexicon needs only that accent's pronunciations.

Targets are the phones with a boundary token ("|") between espeak's words, and the lexicon search ends every
word in one: it tells "jail and" from "j land" (the same phones). espeak joins some words ("of the" is one
phone word); between those the head writes no boundary, and the search pays one frame's cost to read one.
"""

from __future__ import annotations

import functools
import logging

from tasks.ctc import normalize

BLANK = 0
WORD_BOUNDARY = "|"
DEFAULT_ACCENT = "en-us"
# Every phone espeak-ng (1.51) writes for the fortune corpus in its eight English accents at least 30 times,
# without stress marks. A rarer one (espeak sometimes glues two phones, "sɑː") is split into these
# (`split_phone`); a character of none of them is dropped.
PHONES = (
    "ɪ n t ə s d l z k m ɹ ɛ ð w a p b v f ɒ ʌ aɪ iː ɐ j uː h ɡ ɔː ŋ eɪ ʊ æ i ʃ eː əl r ɑː oʊ ɜː dʒ tʃ θ oː əʊ "
    "aʊ ɔɪ iə eə ᵻ əu ei ɚ ɾ e ʌʊ ʉ ɛə ɔ ɜ æʊ ʉː aɪə əɪ ʊə ɔə ʌʉ t̪ aː ɑə ɑːɹ oə ʍ ɔːɹ ʒ a: eʲ ʌɹ o oːɹ ʉɹ ɛɹ "
    "aa ʊɹ ɪɹ oɪ əɹ n̩ ʔ aɪɚ x"
).split()
VOCAB = ["<blank>", WORD_BOUNDARY, *PHONES]  # index -> phone
PHONE_TO_ID = {p: i for i, p in enumerate(VOCAB) if i > 1}


def accent_of(voice: str | None, fixed: str = "") -> str:
    """The accent of a clip's phones: `fixed` when given, else its `voice`'s ("en-gb+f3" -> "en-gb"), else
    DEFAULT_ACCENT."""
    return fixed or (str(voice).split("+")[0] if voice else DEFAULT_ACCENT)


@functools.lru_cache(maxsize=None)
def _backend(accent: str):
    try:
        from phonemizer.backend import EspeakBackend
    except ImportError as e:
        raise ImportError("phoneme CTC needs the phonemizer package: pip install phonemizer") from e
    if not EspeakBackend.is_espeak_ng():
        raise RuntimeError("phoneme CTC needs espeak-ng's library (Debian package espeak-ng)")
    quiet = logging.getLogger(f"{__name__}.espeak")  # phonemizer warns on every joined word group ("in the")
    quiet.setLevel(logging.ERROR)
    try:
        return EspeakBackend(accent, with_stress=False, words_mismatch="ignore", logger=quiet)
    except RuntimeError as e:
        raise ValueError(f"accent {accent!r} is not an espeak-ng voice ({e})") from e


@functools.lru_cache(maxsize=None)
def versions() -> str:
    """espeak-ng's and phonemizer's versions, which decide the phones a text gets ("1.51 / 3.4.0")."""
    from importlib.metadata import version
    _backend(DEFAULT_ACCENT)  # a clear error when either is missing
    from phonemizer.backend import EspeakBackend
    return f"{'.'.join(map(str, EspeakBackend.version()))} / {version('phonemizer')}"


def split_phone(phone: str) -> list[str]:
    """A phone of PHONES as is; any other, greedily into the longest PHONES it starts with (unknown chars dropped)."""
    if phone in PHONE_TO_ID:
        return [phone]
    out, i = [], 0
    while i < len(phone):
        match = next((phone[i:j] for j in range(len(phone), i, -1) if phone[i:j] in PHONE_TO_ID), None)
        if match:
            out.append(match)
        i += len(match) if match else 1
    return out


def phonemize_words(texts: list[str], accent: str = DEFAULT_ACCENT) -> list[list[list[str]]]:
    """Per text, its espeak words, each a list of PHONES (a joined group like "in the" counts as one word)."""
    from phonemizer.separator import Separator

    separator = Separator(phone=" ", word=f" {WORD_BOUNDARY} ", syllable=None)
    outputs = _backend(accent).phonemize([" ".join(t.split()) for t in texts], separator=separator, strip=True, njobs=1)
    words = []
    for out in outputs:
        groups = [[p for phone in group.split() for p in split_phone(phone)] for group in out.split(WORD_BOUNDARY)]
        words.append([g for g in groups if g])
    return words


@functools.lru_cache(maxsize=65536)
def _words(text: str, accent: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(word) for word in phonemize_words([text], accent)[0])


def phones(text: str, accent: str = DEFAULT_ACCENT) -> tuple[str, ...]:
    """The phones of one text in one accent, words run together (what phone error rates compare)."""
    return tuple(p for word in _words(text, accent) for p in word)


def encode(text: str, voice: str | None = None, fixed_accent: str = "") -> list[int]:
    """Target ids of one transcript, in `fixed_accent` or the accent of `voice` (see `accent_of`): its phones,
    with the boundary between espeak's words."""
    boundary = VOCAB.index(WORD_BOUNDARY)
    ids: list[int] = []
    for word in _words(text, accent_of(voice, fixed_accent)):
        ids += ([boundary] if ids else []) + [PHONE_TO_ID[p] for p in word]
    return ids


def to_text(path: list[tuple[str, int]]) -> str:
    """Greedy output, (phone, frame) pairs, as one line of phones separated by spaces (so WER on it is the
    phone error rate)."""
    return " ".join(p for p, _ in path if p != WORD_BOUNDARY)


def pronunciations(texts: list[str], accents: list[str]) -> dict[str, set[tuple[str, ...]]]:
    """Each word of `texts` (CTC alphabet, tasks.ctc.normalize) -> its phone spellings in `accents`.

    A word is phonemized alone, and also in its sentence wherever espeak keeps the sentence's words apart (its
    word count matches), which adds the weak forms of running speech ("the" as ð ə and ð ɪ, "to" as t ə).
    """
    sentences = sorted({normalize(t) for t in texts} - {""})
    words = sorted({w for s in sentences for w in s.split()})
    table: dict[str, set[tuple[str, ...]]] = {w: set() for w in words}
    for accent in accents:
        for word, spoken in zip(words, phonemize_words(words, accent)):
            if spoken:
                table[word].add(tuple(p for group in spoken for p in group))
        for sentence, spoken in zip(sentences, phonemize_words(sentences, accent)):
            written = sentence.split()
            if len(written) == len(spoken):
                for word, group in zip(written, spoken):
                    table[word].add(tuple(group))
    return {w: s for w, s in table.items() if s}
