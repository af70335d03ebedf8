"""Lexicon-constrained CTC beam search: the CTC head read as words of a word list.

Greedy CTC spells what it hears letter by letter, so a weak acoustic model writes near-misses ("the montin
ceing"). A beam search that may only emit words of a lexicon turns many of them into words ("the mount in
king"). The search is flashlight-text's (torchaudio's `ctc_decoder`), with no language model: each emitted
word adds `word_score` to a hypothesis's log-probability, and a negative score prefers fewer, longer words to
splits such as "mount in". The lexicon is any word list: a text file, the `text` fields of a metadata.jsonl
(e.g. the training transcripts), or strings in Python.

With `lm=`, a word n-gram LM (an ARPA or KenLM binary file, e.g. from tasks/ngram_lm.py) scores each word in
the beam as well, weighted by `lm_weight`: the search then prefers word sequences the LM has seen.

With `units="phonemes"` the CTC head predicts espeak-ng phones (tasks/phonemes.py) and each word is spelled by
its pronunciations (alone and in running speech, from the word list's sentences) in the head's one accent, or
in every English accent espeak-ng speaks.

Phonemizing a word list takes espeak-ng about a minute for a few thousand words in eight accents, so the phone
lexicon is kept on disk (`$MULTIMODAL_CACHE/lexicons`, default `~/.cache/multimodal`, the cache of the LM
weights), keyed on the sentences, the accents and the espeak-ng and phonemizer versions.

Every spelling, of letters or phones, ends in the boundary token. flashlight emits a word when the search
enters its spelling's last token, and a hypothesis back at the root may not repeat that token; so a word
whose last phone the head holds for several frames ("jail": l l l) lost to a split that starts a new word
there ("j land"). Ending each word in the boundary, which the head emits after it, lets the last phone last.

flashlight's trie holds at most six words per spelling and drops the rest as they come, in no set order. Eight
accents' homophones pass that easily ("are" shares ɑː with "ah", "aah", "r" and 19 more in a 100k-word list),
so before the search each spelling keeps the six words the word list's texts use most: "are" stays, "ahhhh" goes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

import torch

from tasks import phonemes
from tasks.corpora.speech import espeak_voices
from tasks.ctc import BLANK, VOCAB, normalize
from tasks.ctc_units import CtcUnits
from tasks.lm_rescore import Scorer, rescore
from tasks.text_files import read_texts

WORD_BOUNDARY = phonemes.WORD_BOUNDARY  # flashlight's word-boundary ("silence") token; for letters, the space
TOKENS = [WORD_BOUNDARY if c == " " else c for c in VOCAB]  # same indices as VOCAB
# Beam 100 over 50: held-out WER 0.071 -> 0.068 with the phone head's open lexicon and LM, and 0.045 -> 0.037
# rescored (its oracle of the 20 best 0.035 -> 0.028), for 26 instead of 14 ms of search a 3.5 s clip
# (docs/speech.md)
DEFAULT_BEAM_SIZE = 100
DEFAULT_WORD_SCORE = -4.0  # chosen on half of the held-out synthetic speech, reported on the other (docs/speech.md)
DEFAULT_LM_WEIGHT = 2.0  # with an n-gram LM (log10 scores); chosen the same way, with its own word score
DEFAULT_LM_WORD_SCORE = 0.0
# A phone head (several spellings a word, eight accents' homophones) chose other scores, the same way
# (docs/speech.md):
# LM weight 2 and word score 2 in three of four model / lexicon pairs (16 k and 99 k words), and within 0.001 of the
# choice on the fourth's tuning half (weight 3); a beam threshold of 20 (flashlight's default: 50) halved its search
# time at the same WER.
PHONE_DEFAULTS = {"word_score": -4.0, "lm_weight": 2.0, "lm_word_score": 2.0, "beam_threshold": 20.0}
MAX_WORDS_PER_SPELLING = 6  # flashlight's Trie (kTrieMaxLabel): more words on one spelling are dropped at random
# N-best rescoring (tasks/lm_rescore.py) with SmolLM2: weight and word bonus chosen on half of the held-out
# synthetic speech from {0.3, 0.5, 1, 1.5} x {0, 1, 2, 4} (docs/speech.md).
DEFAULT_NBEST, DEFAULT_RESCORE_WEIGHT, DEFAULT_RESCORE_WORD_BONUS = 20, 1.0, 2.0
LEXICON_FORMAT = 1  # bump when the spellings a word list gives change (phonemes.pronunciations, the boundary)


def read_lexicon_texts(source: str | os.PathLike | Iterable[str]) -> list[str]:
    """The texts of a file (tasks/text_files.py: plain text, or the `text` field of JSONL / JSON / CSV rows,
    e.g. a metadata.jsonl) or of strings; an error naming the source when they hold no word."""
    texts = read_texts(source) if isinstance(source, (str, os.PathLike)) else [str(text) for text in source]
    if not any(normalize(text) for text in texts):
        raise ValueError(f"lexicon {os.fspath(source) if isinstance(source, os.PathLike) else source!r} holds no words")
    return texts


def read_words(source: str | os.PathLike | Iterable[str]) -> list[str]:
    """Sorted distinct words (CTC alphabet) of a file's texts or of strings (see `read_lexicon_texts`)."""
    return sorted({w for text in read_lexicon_texts(source) for w in normalize(text).split()})


class LexiconDecoder:
    """Beam search over CTC log-probabilities that emits only words of `words` (see `read_words`).

    `lm`: an ARPA or KenLM binary word n-gram file whose log10 scores, times `lm_weight`, join each word's score;
    `word_score` defaults to DEFAULT_WORD_SCORE without an LM and DEFAULT_LM_WORD_SCORE with one, `lm_weight` to
    DEFAULT_LM_WEIGHT (a phone head: PHONE_DEFAULTS).
    `units`: what the CTC head predicts, "chars" or "phonemes" (the model's heads.ctc_units); `accent`: the one
    accent of a phone head's targets (heads.ctc_phone_accent), or "" for pronunciations in every English accent.
    `rescorer`: texts -> log-probabilities (tasks/lm_rescore.py, e.g. the model's backbone): the search keeps its
    `nbest` (default DEFAULT_NBEST; without a rescorer, 1) best transcripts and the rescorer re-ranks them,
    weighted by `rescore_weight`, each word earning `rescore_word_bonus`.
    """

    def __init__(self, words: str | os.PathLike | Iterable[str], beam_size: int = DEFAULT_BEAM_SIZE,
                 word_score: float | None = None, lm: str | os.PathLike | None = None,
                 lm_weight: float | None = None, units: str = "chars", accent: str = "",
                 rescorer: Scorer | None = None, nbest: int | None = None,
                 rescore_weight: float = DEFAULT_RESCORE_WEIGHT, rescore_word_bonus: float = DEFAULT_RESCORE_WORD_BONUS):
        try:
            from torchaudio.models.decoder import ctc_decoder
            import flashlight.lib.text  # noqa: F401  (torchaudio's decoder needs it; its own error is vaguer)
        except ImportError as e:
            raise ImportError("the lexicon decoder needs the flashlight-text package: pip install flashlight-text") from e
        if lm is not None and not Path(lm).is_file():
            raise FileNotFoundError(f"n-gram LM file not found: {os.fspath(lm)!r}")
        CtcUnits(units, accent)  # refuses units other than chars and phonemes
        phone = PHONE_DEFAULTS if units == "phonemes" else {}
        if word_score is None:
            word_score = (phone.get("word_score", DEFAULT_WORD_SCORE) if lm is None
                          else phone.get("lm_word_score", DEFAULT_LM_WORD_SCORE))
        if lm_weight is None:
            lm_weight = phone.get("lm_weight", DEFAULT_LM_WEIGHT)
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        least = 2 if rescorer is not None else 1  # rescoring needs something to choose between
        nbest = (DEFAULT_NBEST if rescorer is not None else 1) if nbest is None else nbest
        if nbest < least:
            raise ValueError(f"nbest must be at least {least}{' to rescore' if least > 1 else ''}, got {nbest}")
        self.units, self.accent = units, accent if units == "phonemes" else ""
        self.rescorer, self.rescore_weight, self.rescore_word_bonus = rescorer, rescore_weight, rescore_word_bonus
        self.tokens = phonemes.VOCAB if units == "phonemes" else TOKENS  # both have WORD_BOUNDARY at index 1
        self.words, lines = _lexicon(tuple(read_lexicon_texts(words)), units, self.accent)
        with tempfile.TemporaryDirectory() as tmp:  # flashlight reads the lexicon from a file, once
            lexicon = Path(tmp) / "lexicon.txt"
            lexicon.write_text(lines, encoding="utf-8")
            try:
                self._search = ctc_decoder(lexicon=str(lexicon), tokens=self.tokens, lm=None if lm is None else os.fspath(lm),
                                           lm_weight=lm_weight, beam_size=beam_size, word_score=word_score,
                                           beam_threshold=phone.get("beam_threshold", 50.0),
                                           sil_token=WORD_BOUNDARY, blank_token=self.tokens[BLANK], unk_word="<unk>",
                                           nbest=nbest)
            except RuntimeError as e:  # KenLM's own message for a file it cannot parse
                raise ValueError(f"n-gram LM {os.fspath(lm)!r} could not be read: {e}") from e

    def __call__(self, logits: torch.Tensor, frame_mask: torch.Tensor) -> list[str]:
        """One transcript per clip. logits (N, T, V) from the CTC head; frame_mask (N, T) marks real frames."""
        found = self.hypotheses(logits, frame_mask)
        if self.rescorer is not None:
            return rescore(found, self.rescorer, self.rescore_weight, self.rescore_word_bonus)
        return [hypotheses[0][0] if hypotheses else "" for hypotheses in found]

    def hypotheses(self, logits: torch.Tensor, frame_mask: torch.Tensor) -> list[list[tuple[str, float]]]:
        """Per clip, the search's `nbest` (text, score) hypotheses, best first (none for a clip without frames).
        Arguments as for calling the decoder."""
        if logits.shape[-1] != len(self.tokens):
            raise ValueError(f"CTC logits have {logits.shape[-1]} classes, the lexicon decoder ({self.units}) expects "
                             f"{len(self.tokens)}")
        n_clips, n_frames, _ = logits.shape
        lengths = frame_mask.sum(1).cpu()  # (N,)
        # Each spelling ends in a word boundary, which the CTC head emits between words but not always after the
        # last one: one certain boundary frame after each clip's last real frame lets its last word finish.
        log_probs = torch.full((n_clips, n_frames + 1, len(self.tokens)), -1e4)  # (N, T + 1, V)
        log_probs[:, :n_frames] = logits.detach().float().log_softmax(-1).cpu()
        log_probs[torch.arange(n_clips), lengths, :] = -1e4
        log_probs[torch.arange(n_clips), lengths, self.tokens.index(WORD_BOUNDARY)] = 0.0
        return [[(" ".join(w for w in h.words if w), float(h.score)) for h in hypotheses] if n else []
                for hypotheses, n in zip(self._search(log_probs, (lengths + 1).to(torch.int32)), lengths.tolist())]


@functools.lru_cache(maxsize=2)  # a grid of decoders over one word list (benchmarks) reads it once
def _lexicon(texts: tuple[str, ...], units: str, accent: str) -> tuple[list[str], str]:
    """(sorted words, flashlight lexicon file text): each word's spellings, one line each, ending in a boundary."""
    if units == "phonemes":
        lines = _phone_lexicon(texts, [accent] if accent else espeak_voices()[0])
    else:
        lines = _lines({w: {tuple(w)} for w in read_words(texts)})
    lines = _most_used_per_spelling(lines, Counter(w for text in texts for w in normalize(text).split()))
    return sorted({line.split(" ", 1)[0] for line in lines.splitlines()}), lines


def _most_used_per_spelling(lines: str, uses: Counter) -> str:
    """The lexicon's lines less, on each spelling held by more than MAX_WORDS_PER_SPELLING words, the words that
    `uses` counts least (ties: the later word alphabetically), so the trie never drops one of its own choosing."""
    words_of: defaultdict[str, list[str]] = defaultdict(list)
    for line in lines.splitlines():
        word, spelling = line.split(" ", 1)
        words_of[spelling].append(word)
    dropped = set()
    for spelling, words in words_of.items():
        if len(words) > MAX_WORDS_PER_SPELLING:
            ranked = sorted(words, key=lambda w: (-uses[w], w))
            dropped.update((w, spelling) for w in ranked[MAX_WORDS_PER_SPELLING:])
    if not dropped:
        return lines
    return "".join(f"{line}\n" for line in lines.splitlines() if tuple(line.split(" ", 1)) not in dropped)


def _lines(spellings: dict[str, set[tuple[str, ...]]]) -> str:
    return "".join(f"{w} {' '.join(s)} {WORD_BOUNDARY}\n" for w in sorted(spellings) for s in sorted(spellings[w]))


def lexicon_cache_dir() -> Path:
    """Where phone lexicons are kept: `$MULTIMODAL_CACHE/lexicons` (default `~/.cache/multimodal/lexicons`)."""
    from encoders.cache import cache_dir

    return cache_dir() / "lexicons"


def _phone_lexicon(texts: tuple[str, ...], accents: list[str]) -> str:
    """The phone lexicon's file text, from the disk cache when these sentences were phonemized before."""
    sentences = sorted({normalize(t) for t in texts} - {""})
    key = json.dumps([LEXICON_FORMAT, phonemes.versions(), phonemes.PHONES, accents, sentences])
    path = lexicon_cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.txt"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    lines = _lines(phonemes.pronunciations(sentences, accents))
    tmp = None
    try:  # a temp file, then a rename: a crash or a second process never leaves half a lexicon
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp = f.name
            f.write(lines)
        os.replace(tmp, path)
    except OSError:  # a read-only home or a full disk: decode without the cache, and leave no temp file behind
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return lines


def as_lexicon_decoder(lexicon: "LexiconDecoder | str | os.PathLike | Iterable[str] | None",
                       decoder: str = "ctc", lm: str | os.PathLike | None = None,
                       units: str = "chars", accent: str = "", rescorer: Scorer | None = None) -> "LexiconDecoder | None":
    """None stays None (greedy decoding); a decoder is used as is; anything else is a word list to build one from.

    `decoder` is the caller's decoder choice: a lexicon constrains the CTC decoder only. `lm` (an n-gram file)
    joins the search, and needs a lexicon. `units`, `accent`: the CTC head's (heads.ctc_units, ctc_phone_accent).
    `rescorer` (tasks/lm_rescore.py) re-ranks the search's n best, and needs a lexicon too.
    """
    if lexicon is not None and decoder != "ctc":
        raise ValueError(f"a lexicon constrains the CTC decoder only; decoder is {decoder!r}")
    if lm is not None and lexicon is None:
        raise ValueError("an n-gram LM needs a lexicon (a word list) to search with; give both")
    if rescorer is not None and lexicon is None:
        raise ValueError("rescoring re-ranks the lexicon search's best transcripts: give a lexicon (a word list)")
    if isinstance(lexicon, LexiconDecoder) and (lm is not None or rescorer is not None):
        raise ValueError("the lexicon is an already built LexiconDecoder: give it the LM or rescorer as "
                         "LexiconDecoder(..., lm=, rescorer=)")
    if isinstance(lexicon, LexiconDecoder) and lexicon.units != units:
        raise ValueError(f"the lexicon decoder reads {lexicon.units}, the model's CTC head predicts {units}")
    if isinstance(lexicon, LexiconDecoder) and units == "phonemes" and lexicon.accent != accent:
        raise ValueError(f"the lexicon decoder spells words in accent {lexicon.accent or 'all'!r}, the model's phones "
                         f"are in {accent or 'each voice'!r}")
    if lexicon is None or isinstance(lexicon, LexiconDecoder):
        return lexicon
    if rescorer is None and isinstance(lexicon, (str, os.PathLike)):  # files: built once while they stay the same
        return _built(os.fspath(lexicon), _stamp(lexicon), None if lm is None else os.fspath(lm), _stamp(lm), units, accent)
    return LexiconDecoder(lexicon, lm=lm, units=units, accent=accent, rescorer=rescorer)


def _stamp(path: str | os.PathLike | None) -> tuple[int, int] | None:
    """(mtime in ns, size) of a file, None for none: a file changed in place gets a new decoder."""
    try:
        stat = os.stat(path) if path is not None else None
    except OSError:
        return None
    return None if stat is None else (stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)  # reading an n-gram LM takes seconds (speech-en's: 2.9 s), once per transcribe call
def _built(lexicon: str, lexicon_stamp, lm: str | None, lm_stamp, units: str, accent: str) -> "LexiconDecoder":
    """A decoder built from files, kept: the search holds no state between calls."""
    return LexiconDecoder(lexicon, lm=lm, units=units, accent=accent)
