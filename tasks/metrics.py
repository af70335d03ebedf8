"""Evaluation metrics: plain functions over lists of strings or labels, each returning one float.

Every metric is a thin wrapper over the library that defines it, so numbers match what others report:
  wer, cer      jiwer >= 4     corpus-level (S + D + I) / N, pooled over all pairs. A reference that is empty
                               (after normalisation) adds 0 to N and its hypothesis tokens as insertions; if all
                               are empty, N is taken as 1, so the score is the number of inserted tokens and 0.0
                               for silence predicted as silence (jiwer 4's documented convention; jiwer 3 raised)
  bleu4         sacrebleu      corpus BLEU-4 with sacreBLEU's defaults (13a tokens, cased, exp smoothing), / 100
  cider_d       pycocoevalcap  the coco-caption CIDEr-D scorer (pure Python; only its tokenizer needs Java)
  accuracy      scikit-learn
  macro_f1      scikit-learn   unweighted mean of per-class F1 over classes seen in labels or predictions
  entity_f1     seqeval        micro F1 over BIO entities (exact span and type), conlleval-compatible mode

The libraries are imported inside the functions, so importing this module stays cheap.
"""

from collections.abc import Callable, Sequence

CIDER_N = 4  # n-gram orders 1..4 (Vedantam et al. 2015)
CIDER_SIGMA = 6.0  # std of CIDEr-D's Gaussian length penalty, in words


def _check_pair(name: str, references: Sequence, hypotheses: Sequence) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(f"{name}: {len(references)} references but {len(hypotheses)} hypotheses; they must pair up")
    if len(references) == 0:
        raise ValueError(f"{name}: no references; the metric is undefined on an empty corpus")


def _normalize(texts: Sequence[str]) -> list[str]:
    """Lowercase, hyphens and dashes to spaces ("well-known" -> "well known", as a transcript writes it), drop
    other Unicode punctuation, collapse and strip whitespace ("Don't!" -> "dont")."""
    import jiwer

    return jiwer.Compose([jiwer.ToLowerCase(), jiwer.SubstituteRegexes({r"[-\u2010-\u2015]": " "}),
                          jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()])(
        list(texts)
    )


def _error_rate(name: str, references: list[str], hypotheses: list[str], normalize: bool, unit: str) -> float:
    _check_pair(name, references, hypotheses)
    import jiwer

    if normalize:
        references, hypotheses = _normalize(references), _normalize(hypotheses)
    measure = jiwer.wer if unit == "word" else jiwer.cer
    return float(measure(list(references), list(hypotheses)))


def wer(references: list[str], hypotheses: list[str], normalize: bool = True) -> float:
    """Corpus word error rate (S + D + I) / N, errors and reference words pooled over all pairs."""
    return _error_rate("wer", references, hypotheses, normalize, unit="word")


def cer(references: list[str], hypotheses: list[str], normalize: bool = True) -> float:
    """Corpus character error rate, like `wer` over characters (inner spaces count as characters)."""
    return _error_rate("cer", references, hypotheses, normalize, unit="char")


def _check_multi_references(name: str, references: list[list[str]], hypotheses: list[str]) -> None:
    _check_pair(name, references, hypotheses)
    for i, refs in enumerate(references):
        if isinstance(refs, str) or len(refs) == 0:
            raise ValueError(f"{name}: references[{i}] must be a non-empty list of reference strings")


def bleu4(references: list[list[str]], hypotheses: list[str]) -> float:
    """Corpus BLEU-4 on a 0-1 scale (sacreBLEU defaults); references[i] holds any number of references for hypothesis i."""
    _check_multi_references("bleu4", references, hypotheses)
    import sacrebleu

    # sacrebleu wants reference *streams*; pad ragged lists with None, which it skips per segment.
    n_streams = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(n_streams)]
    return sacrebleu.corpus_bleu(list(hypotheses), streams).score / 100.0


def cider_d(references: list[list[str]], hypotheses: list[str], normalize: bool = True) -> float:
    """Corpus CIDEr-D (coco-caption scorer: tf-idf n=1..4, clipping, Gaussian length penalty sigma=6, x10).

    coco-caption first runs the Java PTB tokenizer (lowercase, punctuation removed); `normalize` stands in for it.
    Document frequencies come from this corpus's references, so at least two items are needed (with one, every
    idf is log(1/1) = 0 and the score is 0 whatever the captions).
    """
    _check_multi_references("cider_d", references, hypotheses)
    if len(references) < 2:
        raise ValueError("cider_d: needs at least 2 items; idf over a one-item corpus is 0 for every n-gram")
    from pycocoevalcap.cider.cider import Cider

    if normalize:
        references = [_normalize(refs) for refs in references]
        hypotheses = _normalize(hypotheses)
    if not any(ref.split() for refs in references for ref in refs):
        raise ValueError("cider_d: every reference is empty")
    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [hyp] for i, hyp in enumerate(hypotheses)}
    score, _ = Cider(n=CIDER_N, sigma=CIDER_SIGMA).compute_score(gts, res)
    return float(score)


def accuracy(labels: list, predictions: list) -> float:
    """Fraction of predictions equal to their label."""
    _check_pair("accuracy", labels, predictions)
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(labels, predictions))


def macro_f1(labels: list, predictions: list) -> float:
    """Unweighted mean F1 over every class seen in labels or predictions (a class never predicted scores 0)."""
    _check_pair("macro_f1", labels, predictions)
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predictions, average="macro", zero_division=0.0))


def entity_f1(gold_tags: list[list[str]], pred_tags: list[list[str]]) -> float:
    """Micro F1 over BIO entities, a hit needing the exact span and type (seqeval's conlleval-compatible mode)."""
    _check_pair("entity_f1", gold_tags, pred_tags)
    for i, (gold, pred) in enumerate(zip(gold_tags, pred_tags)):
        if len(gold) != len(pred):
            raise ValueError(f"entity_f1: sentence {i} has {len(gold)} gold tags but {len(pred)} predicted tags")
    from seqeval.metrics import f1_score

    return float(f1_score([list(g) for g in gold_tags], [list(p) for p in pred_tags]))


METRICS: dict[str, Callable[..., float]] = {
    "wer": wer,
    "cer": cer,
    "bleu4": bleu4,
    "cider_d": cider_d,
    "accuracy": accuracy,
    "macro_f1": macro_f1,
    "entity_f1": entity_f1,
}
HIGHER_IS_BETTER: dict[str, bool] = {
    "wer": False,
    "cer": False,
    "bleu4": True,
    "cider_d": True,
    "accuracy": True,
    "macro_f1": True,
    "entity_f1": True,
}


BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


def bootstrap_interval(name: str, references: Sequence, hypotheses: Sequence, n_resamples: int = BOOTSTRAP_RESAMPLES,
                       confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """(low, high): the percentile bootstrap interval of metric `name` over examples (scipy.stats.bootstrap),
    resampling (reference, hypothesis) pairs, so a corpus-level metric (WER, CIDEr-D) is recomputed on each
    resample as a whole. On a few hundred examples it is several points wide: report it with the figure."""
    import numpy as np
    from scipy.stats import bootstrap

    _check_pair(name, references, hypotheses)
    metric = METRICS[name]
    pick = lambda seq, index: seq[index] if isinstance(seq, np.ndarray) else [seq[i] for i in index]  # noqa: E731

    def statistic(index):
        index = index.astype(int)
        return metric(pick(references, index), pick(hypotheses, index))

    result = bootstrap((np.arange(len(references)),), statistic, vectorized=False, n_resamples=n_resamples,
                       confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def interval_metrics(name: str, references: Sequence, hypotheses: Sequence) -> dict[str, float]:
    """{NAME_low, NAME_high}: the 95 % bootstrap interval of metric `name`, as evaluation reports it."""
    low, high = bootstrap_interval(name, references, hypotheses)
    return {f"{name}_low": low, f"{name}_high": high}


def unit_score(name: str, value: float) -> float:
    """A metric on one 0-1 higher-is-better scale, so tasks can be averaged (multi-task `score`): error rates
    as 1 - min(rate, 1); CIDEr-D / 10 (the coco scorer's x10 undone: the mean tf-idf cosine); the rest as is."""
    if name not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric '{name}'; valid: {', '.join(HIGHER_IS_BETTER)}")
    if not HIGHER_IS_BETTER[name]:
        return 1.0 - min(max(value, 0.0), 1.0)
    if name == "cider_d":
        return min(max(value / 10.0, 0.0), 1.0)
    return value
