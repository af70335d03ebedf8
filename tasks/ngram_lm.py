"""A word n-gram language model for the CTC beam search, estimated from transcripts and written as ARPA.

The lexicon search (tasks/ctc_lexicon.py) makes the CTC head write real words, but it weighs "the hall of the"
and "the half the" alike. The field's answer (wav2vec2 + KenLM) is a word n-gram LM in the beam: flashlight's
decoder, which we already use, reads KenLM models, so the LM is a standard ARPA file, and a user may bring one
built by KenLM's `lmplz` from a larger text. KenLM's estimator is a C++ program that the package registries do
not ship, so `write_arpa` estimates the model here: interpolated Kneser-Ney with one discount per order,
D = n1 / (n1 + 2 n2) from the counts of counts (Chen & Goodman 1998), in KenLM's conventions:

- a sentence is `<s> w1 ... wn </s>`;
- the highest order counts n-grams; a lower order counts the distinct words seen before an n-gram (its
  continuation count), except for n-grams that start with `<s>`, which nothing precedes;
- the unigram distribution is interpolated with the uniform one over the vocabulary and `<unk>`, or, given a
  `prior` (word -> weight, e.g. wordfreq's frequencies of common English words), with the prior's distribution over
  the transcripts' words and the prior's together: the mass the unigram discount leaves then goes to words in
  proportion to how common they are, and words the transcripts never held get a probability at all (without it,
  a lexicon search with this LM could only write them as `<unk>`). Words the prior lacks, and `<unk>`, weigh as
  its rarest word;
- each listed n-gram stores its interpolated log10 probability and, as its back-off weight, the mass its
  discounts left to the lower order, so p(w | h) = bow(h) * p(w | h[1:]) for an unseen w exactly.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Iterable

from tasks.ctc import normalize

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
DEFAULT_ORDER = 3
NO_PROB = -99.0  # ARPA's log10 probability for <s>, which is never predicted


def count_ngrams(sentences: Iterable[list[str]], order: int) -> list[Counter]:
    """counts[k][ngram] for k = 1..order over `<s> words </s>` (counts[0] is unused)."""
    counts = [Counter() for _ in range(order + 1)]
    for words in sentences:
        tokens = [BOS, *words, EOS]
        for k in range(1, order + 1):
            for i in range(len(tokens) - k + 1):
                counts[k][tuple(tokens[i : i + k])] += 1
    return counts


def adjusted_counts(counts: list[Counter]) -> list[Counter]:
    """Kneser-Ney counts: raw at the highest order and for n-grams that start with <s>; else continuation counts."""
    order = len(counts) - 1
    adjusted = [Counter() for _ in range(order + 1)]
    adjusted[order] = Counter(counts[order])
    for k in range(1, order):
        for ngram, c in counts[k].items():
            if ngram[0] == BOS:
                adjusted[k][ngram] = c
        for longer in counts[k + 1]:
            if longer[1] != BOS:  # (x, g): one more distinct left neighbour of g
                adjusted[k][longer[1:]] += 1
    return adjusted


def discount(counts: Counter) -> float:
    """One absolute discount for an order, D = n1 / (n1 + 2 n2); 0.5 when the counts of counts are too thin."""
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    return n1 / (n1 + 2 * n2) if n1 and n2 else 0.5


def kneser_ney(sentences: Iterable[list[str]], order: int = DEFAULT_ORDER,
               prior: dict[str, float] | None = None) -> tuple[list[dict], list[dict]]:
    """(log10 probabilities, log10 back-off weights) per order, as the ARPA file lists them (index 0 unused).
    `prior`: word -> positive weight, the unigram's base distribution instead of the uniform one (see above)."""
    if order < 1:
        raise ValueError(f"n-gram order must be at least 1, got {order}")
    adjusted = adjusted_counts(count_ngrams(sentences, order))
    probs: list[dict] = [{} for _ in range(order + 1)]
    backoffs: list[dict] = [{} for _ in range(order + 1)]
    for k in range(1, order + 1):
        d = discount(adjusted[k])
        totals, types = Counter(), Counter()  # per context (the n-gram's first k-1 words)
        for ngram, c in adjusted[k].items():
            if ngram[-1] != BOS:
                totals[ngram[:-1]] += c
                types[ngram[:-1]] += 1
        left = {h: d * types[h] / totals[h] for h in totals}  # mass each context leaves to the lower order
        if k == 1:
            vocabulary = [g for g in adjusted[1] if g[0] != BOS] + [(UNK,)]
            base = _base_distribution(vocabulary, prior)
            for g, b in base.items():
                probs[1][g] = max(adjusted[1].get(g, 0) - d, 0) / totals[()] + left[()] * b
            probs[1][(BOS,)] = 0.0  # listed with NO_PROB below
        else:
            for ngram, c in adjusted[k].items():
                if ngram[-1] != BOS:
                    h = ngram[:-1]
                    probs[k][ngram] = max(c - d, 0) / totals[h] + left[h] * probs[k - 1][ngram[1:]]
            for h, mass in left.items():
                backoffs[k - 1][h] = mass
    logs = [{g: (NO_PROB if g == (BOS,) else math.log10(p)) for g, p in level.items()} for level in probs]
    log_backoffs = [{g: math.log10(b) for g, b in level.items()} for level in backoffs]
    return logs, log_backoffs


def _base_distribution(vocabulary: list[tuple[str, ...]], prior: dict[str, float] | None) -> dict[tuple[str, ...], float]:
    """The unigram's base distribution: uniform over `vocabulary`, or `prior`'s weights over it and the prior's
    own words (absent words and <unk> weigh as the prior's smallest weight), normalized."""
    if not prior:
        return {g: 1 / len(vocabulary) for g in vocabulary}
    if any(not w > 0 for w in prior.values()):
        raise ValueError("n-gram prior weights must be positive")
    floor = min(prior.values())
    weights = {g: prior.get(g[0], floor) for g in vocabulary}
    weights.update({(w,): p for w, p in prior.items() if w not in (BOS, EOS)})
    total = sum(weights.values())
    return {g: w / total for g, w in weights.items()}


def write_arpa(texts: Iterable[str], path: str | os.PathLike, order: int = DEFAULT_ORDER,
               prior: dict[str, float] | None = None) -> dict[int, int]:
    """Estimate an `order`-gram LM from `texts` (normalized like CTC transcripts) and write it to `path` as ARPA.
    `prior`: word -> weight for the unigram's base distribution (see the module's notes; e.g. `common_words`).

    Returns the number of n-grams per order. The file is written next to `path` and renamed into place.
    """
    sentences = [words for words in (normalize(str(t)).split() for t in texts) if words]
    if not sentences:
        raise ValueError(f"no words to estimate an n-gram LM from (for {os.fspath(path)!r})")
    logs, log_backoffs = kneser_ney(sentences, order, prior)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write("\\data\\\n" + "".join(f"ngram {k}={len(logs[k])}\n" for k in range(1, order + 1)))
        for k in range(1, order + 1):
            f.write(f"\n\\{k}-grams:\n")
            for ngram in sorted(logs[k]):
                backoff = log_backoffs[k].get(ngram)
                f.write(f"{logs[k][ngram]:.6f}\t{' '.join(ngram)}"
                        + (f"\t{backoff:.6f}\n" if backoff is not None else "\n"))
        f.write("\n\\end\\\n")
    os.replace(tmp, path)
    return {k: len(logs[k]) for k in range(1, order + 1)}


def common_words(n: int, language: str = "en") -> dict[str, float]:
    """The `n` most frequent words of `language` by the `wordfreq` package (its word lists ship inside it, so this
    works offline), normalized like CTC transcripts, -> frequency: a prior for `write_arpa` and, as a word list,
    a lexicon for words the transcripts never held."""
    if n < 1:
        raise ValueError(f"the number of common words must be at least 1, got {n}")
    try:
        from wordfreq import top_n_list, word_frequency
    except ImportError as e:
        raise ImportError("common words come from the wordfreq package: pip install wordfreq") from e
    words: dict[str, float] = {}
    for w in top_n_list(language, n):
        if normalize(w) == w and w not in words:  # drops words the CTC alphabet cannot spell (digits, accents)
            words[w] = word_frequency(w, language)
    return words
