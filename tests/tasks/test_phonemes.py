"""Phone CTC targets from espeak-ng, in the speaker's accent, and the lexicon search that reads phones as words."""

import pytest
import torch

from tasks import phonemes
from tasks.ctc_lexicon import LexiconDecoder, as_lexicon_decoder


def test_targets_are_known_phones_in_the_voice_accent():
    us, scottish = phonemes.phones("The cat sat.", "en-us"), phonemes.phones("The cat sat.", "en-gb-scotland")
    assert us == ("ð", "ə", "k", "æ", "t", "s", "æ", "t")  # no stress marks
    assert scottish[:4] == ("ð", "ə", "k", "a")  # the same words as a Scottish voice says them

    def ids(phones: str) -> list[int]:
        return [phonemes.VOCAB.index(p) for p in phones.split()]

    # Targets: the phones with a boundary between espeak's words; with no voice, DEFAULT_ACCENT.
    assert phonemes.encode("The cat sat.", "en-gb-scotland+m3") == ids("ð ə | k a t | s a t")
    assert phonemes.encode("The cat sat.") == ids("ð ə | k æ t | s æ t")
    assert phonemes.encode("You are in the hall.", "en-us") == ids("j uː | ɑː ɹ | ɪ n ð ə | h ɔː l")  # "in the": one
    text = "Frankly, the easiest way to eliminate your guilt is to establish theirs."
    assert [i for i in phonemes.encode(text, "en-029") if i != ids("|")[0]] == ids(" ".join(phonemes.phones(text, "en-029")))
    assert phonemes.BLANK not in phonemes.encode(text, "en-029")


def test_accents_of_voices_and_unknown_accent():
    assert phonemes.accent_of("en-gb-x-rp+Andrea") == "en-gb-x-rp"
    assert phonemes.accent_of(None) == phonemes.DEFAULT_ACCENT
    with pytest.raises(ValueError, match="xx-nowhere"):
        phonemes.phones("hello", "xx-nowhere")


def test_phones_outside_the_inventory_are_split_or_dropped():
    assert phonemes.split_phone("aɪ") == ["aɪ"]
    assert phonemes.split_phone("sɑː") == ["s", "ɑː"]  # espeak glued two phones
    assert phonemes.split_phone("s§t") == ["s", "t"]  # a character of no phone is dropped


def test_pronunciations_hold_weak_forms_and_accents():
    table = phonemes.pronunciations(["The cat went to the market.", "Go to bed"], ["en-us", "en-gb-scotland"])
    assert set(table) == {"the", "cat", "went", "to", "market", "go", "bed"}
    assert {("k", "æ", "t"), ("k", "a", "t")} <= table["cat"]
    assert ("t", "ə") in table["to"] and len(table["to"]) > 1  # running speech adds the weak form


def phone_logits(phone_seq: list[str]) -> torch.Tensor:
    """(1, T, V) logits: one confident frame per phone (or boundary) with a blank frame after each."""
    probs = torch.full((2 * len(phone_seq), len(phonemes.VOCAB)), 1e-4)
    for i, p in enumerate(phone_seq):
        probs[2 * i, phonemes.VOCAB.index(p)] = 0.9
        probs[2 * i + 1, phonemes.BLANK] = 0.9
    return probs.log().unsqueeze(0)


def test_lexicon_search_reads_phones_as_words():
    texts = ["the cat sat on the mat", "a hat"]
    heard = [phonemes.VOCAB[i] for i in phonemes.encode("the cat sat on the mat", "en-gb-x-rp")]  # as trained
    logits = phone_logits(heard)
    decoder = LexiconDecoder(texts, units="phonemes")
    assert decoder(logits, torch.ones(1, logits.shape[1], dtype=torch.bool)) == ["the cat sat on the mat"]
    # A boundary the head emits splits the words there: "jail and", not "j land" (the same phones).
    texts = ["jail and", "j land"]
    heard = phone_logits("dʒ eɪ l | a n d".split())
    assert LexiconDecoder(texts, units="phonemes")(heard, torch.ones(1, heard.shape[1], dtype=torch.bool)) == ["jail and"]
    heard = phone_logits("dʒ eɪ | l a n d".split())
    assert LexiconDecoder(texts, units="phonemes")(heard, torch.ones(1, heard.shape[1], dtype=torch.bool)) == ["j land"]
    # A last phone held over several frames (no blank between) still ends its word: the boundary after it does.
    held = torch.full((9, len(phonemes.VOCAB)), 1e-4)
    held[torch.arange(9), [phonemes.VOCAB.index(p) for p in "dʒ eɪ l l l | a n d".split()]] = 0.9
    mask = torch.ones(1, 9, dtype=torch.bool)
    assert LexiconDecoder(texts, units="phonemes")(held.log().unsqueeze(0), mask) == ["jail and"]
    with pytest.raises(ValueError, match="expects 29"):
        LexiconDecoder(texts)(logits, torch.ones(1, logits.shape[1], dtype=torch.bool))  # a character decoder
    with pytest.raises(ValueError, match="reads phonemes, the model's CTC head predicts chars"):
        as_lexicon_decoder(decoder, "ctc", units="chars")
    with pytest.raises(ValueError, match="units must be"):
        LexiconDecoder(texts, units="letters")


def test_a_fixed_accent_labels_every_voice_alike():
    assert phonemes.encode("a cat", "en-gb-scotland+m3", "en-us") == phonemes.encode("a cat", None, "en-us")
    assert phonemes.accent_of("en-gb-scotland+m3", "en-us") == "en-us"
    decoder = LexiconDecoder(["the cat"], units="phonemes", accent="en-us")
    assert decoder.accent == "en-us"
    with pytest.raises(ValueError, match="accent 'en-us'"):
        as_lexicon_decoder(decoder, "ctc", units="phonemes", accent="")


def test_phone_lexicon_is_kept_on_disk_and_keyed_on_its_sentences(tmp_path, monkeypatch):
    from tasks import ctc_lexicon
    monkeypatch.setattr(ctc_lexicon, "lexicon_cache_dir", lambda: tmp_path)
    ctc_lexicon._lexicon.cache_clear()
    first = LexiconDecoder(["The cat sat.", "Go to bed"], units="phonemes", accent="en-us")
    assert len(list(tmp_path.glob("*.txt"))) == 1 and not list(tmp_path.glob("*.tmp"))

    def no_espeak(*args, **kwargs):
        raise AssertionError("phonemized again")
    monkeypatch.setattr(phonemes, "pronunciations", no_espeak)
    ctc_lexicon._lexicon.cache_clear()  # a new process: only the disk remembers
    again = LexiconDecoder(["the cat sat", "Go to bed!"], units="phonemes", accent="en-us")  # same words normalized
    assert again.words == first.words == ["bed", "cat", "go", "sat", "the", "to"]
    heard = phone_logits("k æ t |".split())
    mask = torch.ones(1, heard.shape[1], dtype=torch.bool)
    assert again(heard, mask) == first(heard, mask) == ["cat"]
    with pytest.raises(AssertionError, match="phonemized again"):  # other sentences or another accent: a new entry
        LexiconDecoder(["The dog sat."], units="phonemes", accent="en-us")
    with pytest.raises(AssertionError, match="phonemized again"):
        LexiconDecoder(["The cat sat.", "Go to bed"], units="phonemes", accent="en-gb")
    monkeypatch.undo()
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("")
    monkeypatch.setattr(ctc_lexicon, "lexicon_cache_dir", lambda: blocked / "lexicons")
    ctc_lexicon._lexicon.cache_clear()  # a cache it cannot write: decodes all the same
    assert LexiconDecoder(["The cat sat."], units="phonemes", accent="en-us").words == ["cat", "sat", "the"]
    ctc_lexicon._lexicon.cache_clear()


def test_a_spelling_keeps_the_six_words_the_texts_use_most(tmp_path, monkeypatch, capfd):
    # flashlight's trie holds six words a spelling and drops the rest in no set order (printing "Trie label number
    # reached limit"). Eight words share aɪ here: the lexicon keeps the six the texts use most ("i", then the
    # alphabetical first of the rest), and the trie never has to choose.
    from tasks import ctc_lexicon
    homophones = ["ai", "aigh", "ay", "aye", "eigh", "eye", "i", "igh"]
    table = {w: {("aɪ",)} for w in homophones} | {"am": {("æ", "m")}}
    monkeypatch.setattr(phonemes, "pronunciations", lambda sentences, accents: table)
    monkeypatch.setattr(ctc_lexicon, "lexicon_cache_dir", lambda: tmp_path)
    ctc_lexicon._lexicon.cache_clear()
    decoder = LexiconDecoder(["i am", "I", *homophones], units="phonemes", accent="en-us")
    captured = capfd.readouterr()
    assert "limit" not in captured.out + captured.err
    assert decoder.words == ["ai", "aigh", "am", "ay", "aye", "eigh", "i"]
    heard = phone_logits("aɪ | æ m |".split())
    assert decoder(heard, torch.ones(1, heard.shape[1], dtype=torch.bool))[0].endswith(" am")
    ctc_lexicon._lexicon.cache_clear()
