"""Named-entity recognition as BIO tags per word: the data format, sub-word alignment and span decoding.

Data: rows with `tokens` (words) and `tags` (one BIO tag per word: `O`, `B-PER`, `I-PER`, ...), the CoNLL
convention; or rows with `text` and `entities` (`[{"start", "end", "label"}]`, character offsets, end
exclusive), which are split into words by `split_words` and tagged. A row that has `text` next to `tokens`
keeps its own spacing: each word is found in the text in order.

Sub-words: a fast tokenizer gives each token its character span; a token belongs to the word its span
overlaps (spans that cover only a space belong to no word). The first sub-token of a word carries the word's
tag; the others are not trained (`all_subtokens=False`, the default) or carry the tag with B- turned into I-
(`all_subtokens=True`). Prediction reads each word's first sub-token. A word that gets no token of its own (cut
off by the token limit) is tagged O.

Decoding follows conlleval: an entity starts at B-X, or at I-X after O or after another type, and continues
over I-X; the entity's character span runs from its first word's start to its last word's end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tasks.base import Task
from tasks.head_config import IGNORE_INDEX

# Words: a link, an @mention or #hashtag, an HTML entity (&amp;), a clitic split off by the writer ('s), a run of
# word characters with inner ' - . (O'Brien, e-mail, U.S), or a run of one punctuation mark (..., !!).
# Tweets are tokenized this way (WNUT-16), and a tagger reads the words it was trained on.
WORD = re.compile(r"https?://\S+|[@#]\w+|&\w+;|(?<!\w)['’]\w+|\w+(?:['’.-]\w+)*|([^\w\s])\1*")
OUTSIDE = "O"


@dataclass(frozen=True)
class Entity:
    text: str
    label: str  # entity type: PER, LOC, ORG, DATE, ...
    start: int  # character offset of the first character
    end: int  # one past the last character


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the words of `text`: runs of word characters, or one punctuation mark."""
    return [m.span() for m in WORD.finditer(text)]


def word_spans(tokens: list[str], text: str | None = None) -> tuple[str, list[tuple[int, int]]]:
    """(text, span of each token): tokens found in order in `text`, or joined by single spaces without one."""
    if text is not None:
        spans, cursor = [], 0
        for token in tokens:
            start = text.find(token, cursor)
            if start < 0:
                break
            spans.append((start, start + len(token)))
            cursor = start + len(token)
        else:
            return text, spans
    spans, cursor = [], 0
    for token in tokens:
        spans.append((cursor, cursor + len(token)))
        cursor += len(token) + 1
    return " ".join(tokens), spans


def entity_type(tag: str) -> str:
    return tag[2:]


def check_tags(tokens: Any, tags: Any) -> str:
    """A problem with one row's tokens and tags, or ""."""
    if not isinstance(tokens, list) or not tokens:
        return "'tokens' must be a non-empty list of words"
    if not isinstance(tags, list) or len(tags) != len(tokens):
        return f"'tags' must be a list with one tag per word: {len(tokens)} words, {len(tags) if isinstance(tags, list) else tags!r} tags"
    for i, (token, tag) in enumerate(zip(tokens, tags)):
        if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token):
            return f"word {i} {token!r} is empty or holds a space"
        if not isinstance(tag, str) or not (tag == OUTSIDE or (tag[:2] in ("B-", "I-") and len(tag) > 2)):
            return f"word {i} {token!r} has tag {tag!r}; tags are O, B-TYPE or I-TYPE"
    return ""


def tags_from_entities(text: str, entities: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(words, BIO tags) of `text` whose entities are character spans; a span that cuts a word is an error."""
    spans = split_words(text)
    tags = [OUTSIDE] * len(spans)
    for entity in sorted(entities, key=lambda e: e["start"]):
        start, end, label = int(entity["start"]), int(entity["end"]), str(entity["label"])
        if not 0 <= start < end <= len(text):
            raise ValueError(f"entity {entity} is outside the text (length {len(text)})")
        inside = [i for i, (s, e) in enumerate(spans) if s < end and e > start]
        if not inside:
            raise ValueError(f"entity {entity} ({text[start:end]!r}) covers no word")
        first, last = spans[inside[0]], spans[inside[-1]]
        if first[0] < start or last[1] > end:
            raise ValueError(f"entity {entity} ({text[start:end]!r}) cuts a word: "
                             f"{text[first[0]:first[1]]!r} / {text[last[0]:last[1]]!r}")
        if any(tags[i] != OUTSIDE for i in inside):
            raise ValueError(f"entity {entity} ({text[start:end]!r}) overlaps another entity")
        tags[inside[0]] = f"B-{label}"
        for i in inside[1:]:
            tags[i] = f"I-{label}"
    return [text[s:e] for s, e in spans], tags


def decode_bio(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entities of a tag sequence as (type, first word, last word), conlleval's rules."""
    entities: list[tuple[str, int, int]] = []
    current: list[Any] | None = None
    for i, tag in enumerate(tags):
        if tag[:2] not in ("B-", "I-"):
            current = None
            continue
        kind = entity_type(tag)
        if tag.startswith("B-") or current is None or current[0] != kind:
            current = [kind, i, i]
            entities.append(current)  # type: ignore[arg-type]
        else:
            current[2] = i
    return [tuple(e) for e in entities]  # type: ignore[misc]


def entities_of(text: str, spans: list[tuple[int, int]], tags: list[str]) -> list[Entity]:
    """Entity spans with character offsets from per-word tags."""
    out = []
    for kind, first, last in decode_bio(tags):
        start, end = spans[first][0], spans[last][1]
        out.append(Entity(text[start:end], kind, start, end))
    return out


def align_tokens(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int | None]:
    """Each token's word index (None: special token, or only spaces) from token and word character spans."""
    out: list[int | None] = []
    w = 0
    for start, end in offsets:
        while w < len(spans) and spans[w][1] <= start:  # words that end before this token starts
            w += 1
        overlaps = end > start and w < len(spans) and spans[w][0] < end
        out.append(w if overlaps else None)
    return out


def first_tokens(token_words: list[int | None], n_words: int) -> list[int]:
    """Index of each word's first sub-token, -1 for a word without a token."""
    first = [-1] * n_words
    for t, w in enumerate(token_words):
        if w is not None and first[w] < 0:
            first[w] = t
    return first


def token_labels(token_words: list[int | None], word_tags: list[str], tag_ids: dict[str, int],
                 all_subtokens: bool) -> list[int]:
    """Training label id per token: the word's tag on its first sub-token; later ones IGNORE_INDEX or I-."""
    labels, previous = [], None
    for w in token_words:
        if w is None:
            labels.append(IGNORE_INDEX)
        elif w != previous:
            labels.append(tag_ids[word_tags[w]])
        elif all_subtokens:
            tag = word_tags[w]
            labels.append(tag_ids["I-" + entity_type(tag)] if tag.startswith("B-") else tag_ids[tag])
        else:
            labels.append(IGNORE_INDEX)
        previous = w
    return labels


def tag_set(tag_lists: list[list[str]]) -> list[str]:
    """O first, then every B-X and I-X of the types seen (both, so all sub-tokens can be trained), sorted."""
    kinds = sorted({entity_type(t) for tags in tag_lists for t in tags if t != OUTSIDE})
    return [OUTSIDE, *[f"{p}-{k}" for k in kinds for p in ("B", "I")]]


def check_known_tags(tag_lists: list[list[str]], known: list[str], what: str) -> None:
    """Raise a ValueError naming the first rows with a tag outside `known`."""
    known_set = set(known)
    bad = []
    for i, tags in enumerate(tag_lists):
        unknown = [t for t in tags if t not in known_set]
        if unknown:
            bad.append(f"row {i}: unknown tag {unknown[0]!r}")
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ValueError(f"{what}: {'; '.join(bad[:5])}{more}; known tags: {', '.join(known)}")


class NerTask(Task):
    """Rows `tokens,tags` (or `text,entities`) -> {text, spans, tags} for the tagging head."""

    def prepare_rows(self, rows: Any, source: str) -> Any:
        if "tokens" in rows.column_names or not {"text", "entities"} <= set(rows.column_names):
            return rows  # tokens/tags as they are; a missing column is reported by the caller
        words, tags, bad = [], [], []
        for i, row in enumerate(rows.select_columns(["text", "entities"])):
            try:
                if not row["text"] or not str(row["text"]).strip():
                    raise ValueError("empty 'text'")
                w, t = tags_from_entities(str(row["text"]), list(row["entities"] or []))
                if not w:
                    raise ValueError("no words in 'text'")
            except (ValueError, KeyError, TypeError) as e:
                bad.append(f"row {i}: {e}")
                w, t = [], []
            words.append(w)
            tags.append(t)
        if bad:
            raise ValueError(f"{source}: {len(bad)} bad row(s): " + "; ".join(bad[:10]))
        return rows.add_column("tokens", words).add_column("tags", tags)

    def check(self, row: dict[str, Any]) -> str:
        return check_tags(row.get("tokens"), row.get("tags"))

    def example(self, row: dict[str, Any], with_target: bool = True) -> dict[str, Any]:
        text = row.get("text") if isinstance(row.get("text"), str) else None  # a number in `text`: the words joined
        text, spans = word_spans(list(row["tokens"]), text)
        return {"text": text, "spans": spans, "tags": list(row["tags"]) if with_target else None}
