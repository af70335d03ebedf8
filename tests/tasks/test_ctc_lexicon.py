"""The lexicon beam search: near-miss spellings become lexicon words; word lists from files and strings."""

import json

import pytest
import torch

from tasks import ctc
from tasks.ctc_lexicon import LexiconDecoder, as_lexicon_decoder, read_words


def logits_for(frames: list[dict[str, float]]) -> torch.Tensor:
    """(1, T, V) logits from per-frame character probabilities; unnamed mass goes to the blank."""
    probs = torch.full((len(frames), len(ctc.VOCAB)), 1e-4)
    for t, frame in enumerate(frames):
        for char, p in frame.items():
            probs[t, ctc.BLANK if char == "_" else ctc.CHAR_TO_ID[char]] = p
        probs[t, ctc.BLANK] += max(0.0, 1 - probs[t].sum())
    return probs.log().unsqueeze(0)


def spelled(text: str, confusions: dict[int, dict[str, float]] | None = None) -> list[dict[str, float]]:
    """One frame per character with a blank between; `confusions` replaces the frame of character i."""
    frames = []
    for i, c in enumerate(text):
        frames += [(confusions or {}).get(i, {c: 0.9}), {"_": 0.9}]
    return frames


def test_a_near_miss_becomes_the_lexicon_word():
    # Greedy reads "tha cat" (a: 0.55 over e: 0.45); "tha" is not a word of the lexicon, "the" is.
    frames = spelled("tha cat", {2: {"a": 0.55, "e": 0.45}})
    logits, mask = logits_for(frames), torch.ones(1, len(frames), dtype=torch.bool)
    assert ctc.to_text(ctc.greedy_decode(logits, mask)[0]) == "tha cat"
    assert LexiconDecoder(["the", "cat", "hat"])(logits, mask) == ["the cat"]
    assert LexiconDecoder(["tha", "cat"])(logits, mask) == ["tha cat"]


def test_padding_frames_and_empty_clips_are_ignored():
    full = spelled("the cat")  # 14 frames
    clips = [full, spelled("hat") + spelled("cat") + spelled("c"), full]  # 6 real frames, then padding that spells
    logits = torch.cat([logits_for(frames) for frames in clips])  # (3, 14, V)
    mask = torch.zeros(3, len(full), dtype=torch.bool)
    mask[0], mask[1, :6] = True, True  # the third clip has no real frames
    assert LexiconDecoder(["the", "cat", "hat"])(logits, mask) == ["the cat", "hat", ""]


def test_word_lists_from_text_jsonl_and_strings(tmp_path):
    (tmp_path / "words.txt").write_text("Hello, world!\nit's HELLO\n")
    rows = [{"file_name": "a.wav", "text": "Good-bye, World."}, {"file_name": "b.wav", "text": "good"}]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_words(tmp_path / "words.txt") == ["hello", "it's", "world"]
    assert read_words(tmp_path / "metadata.jsonl") == ["bye", "good", "world"]
    assert read_words(["B a", "a"]) == ["a", "b"]
    decoder = LexiconDecoder(str(tmp_path / "words.txt"))
    assert decoder.words == ["hello", "it's", "world"] and as_lexicon_decoder(decoder) is decoder
    assert as_lexicon_decoder(None) is None


def test_a_decoder_built_from_files_is_built_once_while_the_files_stay_the_same(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("hello world\n")
    first = as_lexicon_decoder(str(words))
    assert as_lexicon_decoder(words) is first  # a path or its string: the same files
    words.write_text("hello world again\n")  # changed in place: read anew
    second = as_lexicon_decoder(str(words))
    assert second is not first and second.words == ["again", "hello", "world"]
    assert as_lexicon_decoder(["hello", "world"]) is not as_lexicon_decoder(["hello", "world"])  # not files: no cache


def test_bad_word_lists_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        read_words(tmp_path / "nowhere.txt")
    (tmp_path / "empty.txt").write_text("!!! 123\n")
    with pytest.raises(ValueError, match="empty.txt.*no words"):
        read_words(tmp_path / "empty.txt")
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"caption": "no text"}\n')
    with pytest.raises(ValueError, match="bad.jsonl. line 2"):
        read_words(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match="classes"):
        LexiconDecoder(["a"])(torch.zeros(1, 3, 5), torch.ones(1, 3, dtype=torch.bool))
