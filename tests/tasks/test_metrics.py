"""Metrics against hand-computed values, the libraries' own documented examples, and a second implementation."""

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tasks import metrics
from tasks.metrics import accuracy, bleu4, cer, cider_d, entity_f1, macro_f1, wer

NAMES = ("wer", "cer", "bleu4", "cider_d", "accuracy", "macro_f1", "entity_f1")


# --- WER / CER -------------------------------------------------------------------------------------------------


def test_wer_hand_computed():
    assert wer(["the cat sat"], ["the cat sit on"]) == pytest.approx(2 / 3)  # 1 substitution + 1 insertion, N = 3
    assert wer(["a b c d"], ["a c d"]) == pytest.approx(1 / 4)  # 1 deletion
    # pooled over the corpus, not averaged per sentence: (1 + 0) / (2 + 4), not (1/2 + 0) / 2
    assert wer(["a b", "c d e f"], ["a x", "c d e f"]) == pytest.approx(1 / 6)


def test_wer_jiwer_documented_examples():
    assert wer(["hello world"], ["hello duck"]) == pytest.approx(0.5)
    # jiwer 4 README, "A note on empty references": silence for silence is 0, each inserted word counts 1
    assert wer([""], [""]) == 0.0
    assert wer([""], ["silence"]) == 1.0
    assert wer([""], ["peaceful silence"]) == 2.0
    assert cer([""], ["a"]) == 1.0
    assert cer([""], ["abcde"]) == 5.0


def test_empty_reference_in_a_corpus_adds_insertions_only():
    # pair 1: 1 substitution over 3 words; pair 2: empty reference, 1 inserted word, 0 reference words
    assert wer(["the cat sat", ""], ["the cat sit", "uh"]) == pytest.approx(2 / 3)
    # a reference that is only punctuation is empty after normalisation
    assert wer(["a b", "?!"], ["a b", "x y"]) == pytest.approx(2 / 2)
    assert wer(["...", "  "], ["hello there", ""]) == 2.0  # all references empty: the number of inserted words


def test_cer_hand_computed():
    assert cer(["abc"], ["abd"]) == pytest.approx(1 / 3)
    assert cer(["the cat"], ["the bat"]) == pytest.approx(1 / 7)  # the space is a character
    assert cer(["abc", "de"], ["abc", "d"]) == pytest.approx(1 / 5)


def test_normalisation_applies_to_both_sides():
    ref, hyp = ["The cat, sat!"], ["the  CAT sat"]
    assert wer(ref, hyp) == 0.0
    assert cer(ref, hyp) == 0.0
    assert wer(ref, hyp, normalize=False) == pytest.approx(3 / 3)  # "The"/"the", "cat,"/"CAT", "sat!"/"sat"
    assert wer(["Don't stop."], ["dont stop"]) == 0.0  # apostrophes are punctuation too
    assert wer(["A well-known fact - or not."], ["a well known fact or not"]) == 0.0  # hyphens part words
    assert metrics._normalize(["  Hello,   World!  "]) == ["hello world"]


# --- BLEU-4 ----------------------------------------------------------------------------------------------------

# sacrebleu's README ("Using sacreBLEU from Python"): two reference streams, transposed to one list per hypothesis.
SACREBLEU_SYS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
SACREBLEU_REFS = [
    ["The dog bit the man.", "The dog had bit the man."],
    ["It was not unexpected.", "No one was surprised."],
    ["The man bit him first.", "The man had bitten the dog."],
]


def test_bleu4_sacrebleu_documented_examples():
    # "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ...)"
    assert bleu4(SACREBLEU_REFS, SACREBLEU_SYS) == pytest.approx(0.4853, abs=5e-5)
    # "Variable Number of References": the first sentence loses its first reference -> "BLEU = 29.44"
    ragged = [SACREBLEU_REFS[0][1:], *SACREBLEU_REFS[1:]]
    assert bleu4(ragged, SACREBLEU_SYS) == pytest.approx(0.2944, abs=5e-5)


def test_bleu4_matches_nltk_corpus_bleu():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    # lowercase words without punctuation, so sacrebleu's 13a tokenizer and str.split() agree;
    # every n-gram order has matches, so sacrebleu's smoothing does not come into play
    references = [
        ["the cat is on the mat", "there is a cat on the mat"],
        ["a man is riding a red horse in the field"],
        ["two dogs play with a ball in the park", "dogs are playing in a park", "two dogs chase a ball"],
    ]
    hypotheses = ["the cat sat on the mat", "a man is riding a horse in a field", "two dogs play in the park"]
    expected = nltk_bleu.corpus_bleu([[r.split() for r in refs] for refs in references], [h.split() for h in hypotheses])
    assert 0.1 < expected < 0.9
    assert bleu4(references, hypotheses) == pytest.approx(expected, rel=1e-9)


def test_bleu4_perfect_match_is_one():
    refs = [["a man rides a horse on the beach"], ["two children play football in the rain", "kids playing"]]
    assert bleu4(refs, [refs[0][0], refs[1][0]]) == pytest.approx(1.0)


# --- CIDEr-D ---------------------------------------------------------------------------------------------------


def _cider_d_from_the_formula(references, hypotheses, n=4, sigma=6.0):
    """CIDEr-D of Vedantam et al. 2015 as coco-caption computes it (raw n-gram counts as tf), written out here."""

    def grams(sentence):
        words = sentence.split()
        return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))

    n_images = len(references)
    doc_freq = Counter(g for refs in references for g in set().union(*(grams(r) for r in refs)))

    def tfidf(sentence):
        return {g: c * (math.log(n_images) - math.log(max(1.0, doc_freq[g]))) for g, c in grams(sentence).items()}

    scores = []
    for refs, hyp in zip(references, hypotheses):
        g_hyp, per_ref = tfidf(hyp), []
        for ref in refs:
            g_ref = tfidf(ref)
            penalty = math.exp(-((len(hyp.split()) - len(ref.split())) ** 2) / (2 * sigma**2))
            per_order = []
            for k in range(1, n + 1):
                h = {g: v for g, v in g_hyp.items() if len(g) == k}
                r = {g: v for g, v in g_ref.items() if len(g) == k}
                norm = math.sqrt(sum(v * v for v in h.values())) * math.sqrt(sum(v * v for v in r.values()))
                clipped_dot = sum(min(v, r.get(g, 0.0)) * r.get(g, 0.0) for g, v in h.items())
                per_order.append(penalty * clipped_dot / norm if norm > 0 else 0.0)
            per_ref.append(sum(per_order) / n)
        scores.append(10.0 * sum(per_ref) / len(refs))
    return sum(scores) / len(scores)


CAPTION_REFS = [
    ["a man is riding a horse on the beach", "a person rides a brown horse along the shore", "man on horseback at the sea"],
    ["two dogs are playing with a ball in the grass", "dogs chase a red ball in a park"],
    ["a plate of food with rice and vegetables", "a white plate topped with rice broccoli and carrots"],
]


def test_cider_d_matches_the_formula():
    hypotheses = ["a man riding a horse on a beach", "a dog plays with a ball in the park", "a plate of rice with a fork"]
    expected = _cider_d_from_the_formula(CAPTION_REFS, hypotheses)
    assert 0.1 < expected < 10.0
    assert cider_d(CAPTION_REFS, hypotheses) == pytest.approx(expected, rel=1e-9)


def test_cider_d_clips_repeated_ngrams():
    # repeating a matched word inflates plain CIDEr; CIDEr-D clips the hypothesis count at the reference count
    refs = [["a red ball on the grass"], ["a cat sleeps on a sofa"]]
    plain, stuffed = ["a red ball on grass", "a cat on a sofa"], ["red red red ball ball", "a cat on a sofa"]
    assert cider_d(refs, stuffed) == pytest.approx(_cider_d_from_the_formula(refs, stuffed), rel=1e-9)
    assert cider_d(refs, stuffed) < cider_d(refs, plain)


def test_cider_d_identical_is_ten_and_unrelated_is_zero():
    refs = [["a man is riding a horse on the beach"], ["two dogs are playing in the grass"]]
    assert cider_d(refs, [refs[0][0], refs[1][0]]) == pytest.approx(10.0)  # every cosine is 1, no length penalty
    assert cider_d(refs, ["purple elephants juggle quietly", "stock prices fell sharply today"]) == pytest.approx(0.0)
    assert cider_d(refs, ["A man is riding a horse, on the beach!", refs[1][0]]) == pytest.approx(10.0)  # normalised


def test_cider_d_needs_two_items():
    with pytest.raises(ValueError, match="at least 2"):
        cider_d([["a cat"]], ["a cat"])


# --- labels ----------------------------------------------------------------------------------------------------


def test_accuracy_and_macro_f1_hand_computed():
    labels, preds = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    assert accuracy(labels, preds) == pytest.approx(4 / 6)
    # per class F1: 0 -> P 1/2 R 1/2 = 1/2; 1 -> P 2/3 R 1 = 4/5; 2 -> P 1 R 1/2 = 2/3
    assert macro_f1(labels, preds) == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert macro_f1(["a", "b"], ["a", "a"]) == pytest.approx((2 / 3 + 0) / 2)  # a class never predicted scores 0
    assert macro_f1(["a", "a"], ["a", "c"]) == pytest.approx((2 / 3 + 0) / 2)  # a class only predicted counts too


def test_entity_f1_seqeval_documented_example():
    # seqeval README: MISC is predicted one token too early (a miss and a false alarm), PER is exact -> 0.50
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert entity_f1(gold, pred) == pytest.approx(0.5)
    assert entity_f1(gold, gold) == 1.0


def test_entity_f1_needs_exact_span_and_type():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    assert entity_f1(gold, [["B-PER", "O", "O", "B-LOC"]]) == pytest.approx(0.5)  # PER span cut short
    assert entity_f1(gold, [["B-ORG", "I-ORG", "O", "B-LOC"]]) == pytest.approx(0.5)  # PER typed ORG
    with pytest.raises(ValueError, match="sentence 0"):
        entity_f1(gold, [["B-PER", "I-PER", "O"]])


def test_entity_f1_is_conlleval_compatible():
    # seqeval README: an entity opened by I- after O still counts, as in conlleval (strict IOB2 mode would score 0)
    assert entity_f1([["B-NP", "I-NP", "O"]], [["I-NP", "I-NP", "O"]]) == 1.0


# --- registry and contract -------------------------------------------------------------------------------------

SAMPLE_INPUTS = {
    "wer": (["a b"], ["a b"]),
    "cer": (["a b"], ["a b"]),
    "bleu4": ([["a b c d"]], ["a b c d"]),
    "cider_d": ([["a b c d"], ["e f g h"]], ["a b c d", "e f g h"]),
    "accuracy": ([1, 0], [1, 0]),
    "macro_f1": ([1, 0], [1, 0]),
    "entity_f1": ([["B-PER", "O"]], [["B-PER", "O"]]),
}


def test_registry_names_every_metric_once():
    assert tuple(metrics.METRICS) == NAMES
    assert set(metrics.HIGHER_IS_BETTER) == set(NAMES)
    assert [n for n in NAMES if not metrics.HIGHER_IS_BETTER[n]] == ["wer", "cer"]


@pytest.mark.parametrize("name", NAMES)
def test_each_metric_returns_a_float_and_rejects_mismatched_lengths(name):
    fn = metrics.METRICS[name]
    refs, hyps = SAMPLE_INPUTS[name]
    score = fn(refs, hyps)
    assert type(score) is float
    assert score == pytest.approx(0.0 if name in ("wer", "cer") else 10.0 if name == "cider_d" else 1.0)
    with pytest.raises(ValueError, match="must pair up"):
        fn(refs, hyps + hyps[:1])
    with pytest.raises(ValueError, match="empty corpus"):
        fn([], [])


def test_import_is_light():
    code = "import sys, tasks.metrics; print(sorted({m.split('.')[0] for m in sys.modules}))"
    root = Path(__file__).resolve().parents[2]
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    for heavy in ("jiwer", "sacrebleu", "pycocoevalcap", "sklearn", "seqeval", "numpy", "torch"):
        assert f"'{heavy}'" not in loaded


def test_unit_score_puts_every_metric_on_one_scale():
    from tasks.metrics import unit_score

    assert unit_score("wer", 0.25) == 0.75 and unit_score("wer", 1.7) == 0.0 and unit_score("cer", 0.0) == 1.0
    assert unit_score("cider_d", 4.0) == pytest.approx(0.4) and unit_score("accuracy", 0.9) == 0.9
    with pytest.raises(ValueError, match="unknown metric 'rouge'"):
        unit_score("rouge", 0.5)


def test_bootstrap_interval_brackets_the_figure_and_narrows_with_more_examples():
    from tasks.metrics import bootstrap_interval

    small_gold, small_pred = ["a"] * 80 + ["b"] * 20, ["a"] * 80 + ["a"] * 20  # accuracy 0.8 on 100
    low, high = bootstrap_interval("accuracy", small_gold, small_pred)
    assert low < 0.8 < high and 0.1 < high - low < 0.2  # binomial: 0.8 +- 1.96 * 0.04
    low_big, high_big = bootstrap_interval("accuracy", small_gold * 10, small_pred * 10)
    assert high_big - low_big < (high - low) / 2.5  # ten times the examples: about a third as wide
    assert bootstrap_interval("accuracy", small_gold, small_pred) == (low, high)  # fixed seed
    wer_low, wer_high = bootstrap_interval("wer", ["a b c d"] * 30 + ["e f"] * 30, ["a b c x"] * 30 + ["e f"] * 30)
    assert wer_low < 1 / 6 < wer_high  # corpus WER: 30 errors in 180 words, recomputed per resample
