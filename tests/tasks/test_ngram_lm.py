"""The Kneser-Ney ARPA writer: proper distributions, KN's continuation counts, KenLM reads what we mean, and the
LM changes what the lexicon search writes."""

import math

import pytest
import torch

from tasks.ctc_lexicon import LexiconDecoder, as_lexicon_decoder
from tasks.ngram_lm import BOS, EOS, UNK, common_words, write_arpa

from .test_ctc_lexicon import logits_for, spelled

TEXTS = ["The cat sat on the mat.", "the cat ran", "A dog sat on the mat", "the dog ran away", "a cat", "San Francisco",
         "in San Francisco", "the fog of San Francisco", "a dog in the fog", "the cat in the hat sat"]


def read_arpa(path) -> tuple[dict, dict]:
    """log10 probabilities and back-off weights by n-gram tuple, read back from the file (the format's semantics)."""
    probs, backoffs, order = {}, {}, 0
    for line in path.read_text().splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1:].split("-")[0])
        elif order and line.strip() and not line.startswith("\\"):
            fields = line.split("\t")
            ngram = tuple(fields[1].split())
            assert len(ngram) == order, line
            probs[ngram] = float(fields[0])
            if len(fields) == 3:
                backoffs[ngram] = float(fields[2])
    return probs, backoffs


def log10_prob(probs: dict, backoffs: dict, context: tuple, word: str) -> float:
    """ARPA back-off: the longest listed n-gram, plus the back-off weights of the contexts cut on the way."""
    context = tuple(w if (w,) in probs else UNK for w in context)
    word = word if (word,) in probs else UNK
    if context + (word,) in probs:
        return probs[context + (word,)]
    return backoffs.get(context, 0.0) + log10_prob(probs, backoffs, context[1:], word) if context else probs[(word,)]


@pytest.fixture
def arpa(tmp_path):
    path = tmp_path / "words.arpa"
    counts = write_arpa(TEXTS, path, order=3)
    assert counts[1] == len({w for t in TEXTS for w in t.lower().strip(".").split()}) + 3  # + <s> </s> <unk>
    return path


def test_every_context_is_a_distribution(arpa):
    probs, backoffs = read_arpa(arpa)
    vocabulary = [g[0] for g in probs if len(g) == 1 and g[0] != BOS]
    for context in [(), (BOS,), ("the",), (BOS, "the"), ("the", "cat"), ("sat", "on"), ("mat", "ran"), ("zebra",)]:
        total = sum(10 ** log10_prob(probs, backoffs, context[-2:], w) for w in vocabulary)
        assert total == pytest.approx(1.0, abs=1e-4), context
    assert probs[(BOS,)] == -99 and (EOS,) in probs and (UNK,) in probs


def test_kneser_ney_counts_contexts_not_occurrences(arpa):
    # "francisco" occurs 3 times but only ever after "san"; "sat" occurs 3 times after 2 distinct words. A unigram
    # estimate by occurrences would rank them equal; KN's continuation counts rank "francisco" below "sat".
    probs, _ = read_arpa(arpa)
    assert probs[("francisco",)] < probs[("sat",)]
    assert probs[("san", "francisco")] > math.log10(0.5)  # and after "san" it is nearly certain


def test_kenlm_reads_the_probabilities_we_wrote(arpa):
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    words = ["the", "cat", "sat", "on", "mat", "zebra", EOS, UNK]
    dictionary = Dictionary()
    for w in words:
        dictionary.add_entry(w)
    lm, ours = KenLM(str(arpa), dictionary), read_arpa(arpa)
    state, context = lm.start(False), (BOS,)
    for w in ["the", "cat", "sat", "on", "the", "zebra"]:
        state, score = lm.score(state, dictionary.get_index(w))
        assert score == pytest.approx(log10_prob(*ours, context[-2:], w), abs=1e-4), w
        context += (w,)
    assert lm.finish(state)[1] == pytest.approx(log10_prob(*ours, context[-2:], EOS), abs=1e-4)


def test_the_lm_picks_the_word_it_has_seen(tmp_path):
    # "ca?" is heard as p (0.55) over t (0.45): the lexicon alone writes "cap"; an LM that has read "the cat sat"
    # (and "cap" only elsewhere) writes "cat".
    write_arpa(["the cat sat"] * 5 + ["a cap"], tmp_path / "lm.arpa")
    frames = spelled("the cap sat", {6: {"p": 0.55, "t": 0.45}})
    logits, mask = logits_for(frames), torch.ones(1, len(frames), dtype=torch.bool)
    words = ["the", "cat", "cap", "sat", "a"]
    assert LexiconDecoder(words)(logits, mask) == ["the cap sat"]
    assert LexiconDecoder(words, lm=tmp_path / "lm.arpa")(logits, mask) == ["the cat sat"]


def test_a_prior_gives_unseen_words_their_share_and_keeps_distributions(tmp_path):
    # The prior knows "zebra" as common and "yak" as rare, neither in the texts: both get a unigram, in that order,
    # every context still sums to one over the larger vocabulary, and seen words keep most of the mass.
    path = tmp_path / "prior.arpa"
    prior = {"the": 0.05, "cat": 1e-4, "zebra": 1e-3, "yak": 1e-6}
    counts = write_arpa(TEXTS, path, order=3, prior=prior)
    probs, backoffs = read_arpa(path)
    assert counts[1] == len({w for t in TEXTS for w in t.lower().strip(".").split()}) + 2 + 3
    assert probs[("yak",)] < probs[("zebra",)] < probs[("cat",)]
    assert probs[(UNK,)] == pytest.approx(probs[("yak",)])  # absent words weigh as the prior's rarest
    vocabulary = [g[0] for g in probs if len(g) == 1 and g[0] != BOS]
    for context in [(), ("the",), (BOS, "the"), ("sat", "on"), ("zebra",)]:
        total = sum(10 ** log10_prob(probs, backoffs, context[-2:], w) for w in vocabulary)
        assert total == pytest.approx(1.0, abs=1e-4), context
    seen = {w for t in TEXTS for w in t.lower().strip(".").split()} | {EOS}
    assert sum(10 ** probs[(w,)] for w in seen) > 0.5
    with pytest.raises(ValueError, match="positive"):
        write_arpa(TEXTS, tmp_path / "bad.arpa", prior={"cat": 0.0})


def test_common_words_are_spellable_and_ranked():
    words = common_words(2000)
    assert 1500 < len(words) <= 2000 and list(words)[:3] == ["the", "to", "and"]
    assert all(w == w.lower() and not any(c.isdigit() for c in w) for w in words)
    assert words["the"] > words["house"] > 0
    with pytest.raises(ValueError, match="at least 1"):
        common_words(0)


def test_ngram_cli_writes_the_lm_and_its_open_lexicon(tmp_path):
    from multimodal.cli import main

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    main(["ngram", str(texts), "--out", str(tmp_path / "lm.arpa"), "--common-words", "500",
          "--words-out", str(tmp_path / "lex" / "words.txt")])  # a folder not there yet
    probs, _ = read_arpa(tmp_path / "lm.arpa")
    assert ("because",) in probs and ("francisco",) in probs  # a common word the texts lack, and a text word
    lines = (tmp_path / "lex" / "words.txt").read_text().splitlines()
    assert lines[: len(TEXTS)] == TEXTS and "because" in lines[len(TEXTS):]
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_lm_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.arpa"):
        LexiconDecoder(["a"], lm=tmp_path / "nowhere.arpa")
    (tmp_path / "bad.arpa").write_text("not an arpa file\n")
    with pytest.raises(ValueError, match="bad.arpa"):
        LexiconDecoder(["a"], lm=tmp_path / "bad.arpa")
    with pytest.raises(ValueError, match="needs a lexicon"):
        as_lexicon_decoder(None, "ctc", lm=tmp_path / "bad.arpa")
    with pytest.raises(ValueError, match="already built"):
        as_lexicon_decoder(LexiconDecoder(["a"]), "ctc", lm=tmp_path / "bad.arpa")
    with pytest.raises(ValueError, match="no words"):
        write_arpa(["!!!", ""], tmp_path / "empty.arpa")
    with pytest.raises(ValueError, match="order"):
        write_arpa(["a b"], tmp_path / "zero.arpa", order=0)
    assert not list(tmp_path.glob("*.tmp"))
