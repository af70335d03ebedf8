"""BIO tags: words from text, spans from tags and back, sub-word alignment, the NER row format."""

import pytest

from tasks.heads import IGNORE_INDEX
from tasks.ner import (
    Entity, align_tokens, check_tags, decode_bio, entities_of, first_tokens, split_words, tag_set, tags_from_entities,
    token_labels, word_spans,
)


def test_split_words_keeps_inner_marks_and_splits_punctuation():
    text = "Dr. O'Brien met Anna-Lena on 2021-03-04, in St. Louis!"
    words = [text[s:e] for s, e in split_words(text)]
    assert words == ["Dr", ".", "O'Brien", "met", "Anna-Lena", "on", "2021-03-04", ",", "in", "St", ".", "Louis", "!"]


def test_split_words_keeps_tweet_tokens_whole_as_wnut_writes_them():
    text = "@bob It 's #NBA time http://x.co/a?b=1 wow... !! fish &amp; chips"
    words = [text[s:e] for s, e in split_words(text)]
    assert words == ["@bob", "It", "'s", "#NBA", "time", "http://x.co/a?b=1", "wow", "...", "!!", "fish", "&amp;", "chips"]


def test_entities_to_tags_and_back_keep_character_offsets():
    text = "Maria Lopez joined Acme Corp in Berlin on 3 May 2021."
    entities = [{"start": 0, "end": 11, "label": "PER"}, {"start": 19, "end": 28, "label": "ORG"},
                {"start": 32, "end": 38, "label": "LOC"}, {"start": 42, "end": 52, "label": "DATE"}]
    words, tags = tags_from_entities(text, entities)
    assert tags == ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O", "B-DATE", "I-DATE", "I-DATE", "O"]
    found = entities_of(text, split_words(text), tags)
    assert found == [Entity("Maria Lopez", "PER", 0, 11), Entity("Acme Corp", "ORG", 19, 28),
                     Entity("Berlin", "LOC", 32, 38), Entity("3 May 2021", "DATE", 42, 52)]
    assert all(text[e.start:e.end] == e.text for e in found)


@pytest.mark.parametrize("entity, message", [
    ({"start": 2, "end": 11, "label": "PER"}, "cuts a word"),
    ({"start": 0, "end": 99, "label": "PER"}, "outside the text"),
    ({"start": 5, "end": 6, "label": "PER"}, "covers no word"),
])
def test_bad_entity_spans_are_errors(entity, message):
    with pytest.raises(ValueError, match=message):
        tags_from_entities("Maria Lopez smiled.", [entity])


def test_overlapping_entities_are_an_error():
    with pytest.raises(ValueError, match="overlaps"):
        tags_from_entities("Maria Lopez smiled.", [{"start": 0, "end": 11, "label": "PER"}, {"start": 6, "end": 11, "label": "LOC"}])


def test_decode_follows_conlleval():
    tags = ["I-PER", "I-PER", "O", "B-LOC", "I-LOC", "B-LOC", "I-ORG", "I-ORG", "O", "I-DATE"]
    assert decode_bio(tags) == [("PER", 0, 1), ("LOC", 3, 4), ("LOC", 5, 5), ("ORG", 6, 7), ("DATE", 9, 9)]
    assert decode_bio(["O", "O"]) == []


def test_alignment_with_spaces_inside_token_spans():
    """Byte-level BPE spans include the leading space ((5, 11) for " world"); WordPiece spans do not."""
    text = "Hello world, Paris."
    spans = split_words(text)  # Hello | world | , | Paris | .
    bpe = [(0, 5), (5, 11), (11, 12), (12, 15), (15, 18), (18, 19)]  # " Paris" in two pieces
    assert align_tokens(bpe, spans) == [0, 1, 2, 3, 3, 4]
    wordpiece = [(0, 0), (0, 5), (6, 11), (11, 12), (13, 18), (18, 19), (0, 0)]
    assert align_tokens(wordpiece, spans) == [None, 0, 1, 2, 3, 4, None]
    assert align_tokens([(0, 5), (5, 6)], [(0, 5), (7, 9)]) == [0, None]  # a token of only a space


def test_first_and_all_subtoken_labels():
    tag_ids = {t: i for i, t in enumerate(["O", "B-LOC", "I-LOC"])}
    token_words = [None, 0, 1, 1, 1, 2, None]  # [CLS] in Francisco(3 pieces) . [SEP]
    word_tags = ["O", "B-LOC", "O"]
    assert token_labels(token_words, word_tags, tag_ids, all_subtokens=False) == [
        IGNORE_INDEX, 0, 1, IGNORE_INDEX, IGNORE_INDEX, 0, IGNORE_INDEX]
    assert token_labels(token_words, word_tags, tag_ids, all_subtokens=True) == [IGNORE_INDEX, 0, 1, 2, 2, 0, IGNORE_INDEX]
    assert first_tokens(token_words, 4) == [1, 2, 5, -1]  # word 3 was cut off


def test_tag_set_and_row_checks():
    assert tag_set([["O", "B-PER"], ["I-LOC", "O"]]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert check_tags(["Maria", "smiled"], ["B-PER", "O"]) == ""
    assert "one tag per word" in check_tags(["Maria", "smiled"], ["B-PER"])
    assert "'PER'" in check_tags(["Maria"], ["PER"])
    assert "non-empty" in check_tags([], [])
    assert "holds a space" in check_tags(["New York"], ["B-LOC"])


def test_word_spans_follow_the_text_when_there_is_one():
    assert word_spans(["Hi", ",", "Bo", "."], "Hi, Bo.") == ("Hi, Bo.", [(0, 2), (2, 3), (4, 6), (6, 7)])
    assert word_spans(["Hi", ",", "Bo"]) == ("Hi , Bo", [(0, 2), (3, 4), (5, 7)])
    assert word_spans(["Hi", "Zed"], "Hi Bo")[0] == "Hi Zed"  # a token not in the text: joined instead
