"""N-best rescoring: the search's hypotheses re-ranked by an LM's log-probability, the scorer a causal LM gives, and
the lexicon decoder asking it."""

import pytest
import torch

import multimodal as mm
from tasks.ctc_lexicon import LexiconDecoder
from tasks.lm_rescore import _batches, as_sentence, causal_lm_scorer, rescore, start_token_id

from .test_ctc_lexicon import logits_for, spelled


def fake_lm(preferred: dict[str, float]):
    asked = []

    def score(texts):
        asked.append(list(texts))
        return [preferred.get(t, -10.0 * len(t.split())) for t in texts]
    return score, asked


def test_rescore_weighs_the_lm_against_the_search_and_pays_words_back():
    clips = [[("the cap sat", -1.0), ("the cat sat", -1.5)], [], [("a", -2.0), ("a cat", -2.2)]]
    score, asked = fake_lm({"the cat sat": -5.0, "the cap sat": -9.0, "a": -3.0, "a cat": -6.0})
    assert rescore(clips, score, weight=0.0, word_bonus=0.0) == ["the cap sat", "", "a"]  # the search's own order
    assert asked == []  # weight 0: the LM is not run
    assert rescore(clips, score, weight=1.0, word_bonus=0.0) == ["the cat sat", "", "a"]
    assert asked == [["a", "a cat", "the cap sat", "the cat sat"]]  # every distinct text once, all clips together
    assert rescore(clips, score, weight=1.0, word_bonus=4.0) == ["the cat sat", "", "a cat"]


def test_an_empty_hypothesis_pays_the_lm_too():
    clips = [[("cat", -1.0), ("", -1.1)], [("", -1.0), ("cat", -1.2)]]
    score, asked = fake_lm({"cat": -4.0, "": -9.0})  # the LM finds an empty text less likely than "cat"
    assert rescore(clips, score, weight=1.0, word_bonus=0.0) == ["cat", "cat"]
    assert asked == [["", "cat"]]
    score, _ = fake_lm({"cat": -9.0, "": -2.0})  # ... or more likely
    assert rescore(clips, score, weight=1.0, word_bonus=0.0) == ["", ""]


def test_causal_lm_scorer_sums_token_log_probs_alike_alone_and_padded():
    model = mm.build("configs/tiny.yaml", ["encoders.image=null", "encoders.audio=null"]).eval()
    lm, tok = model.backbone, model.tokenizer
    score = causal_lm_scorer(lm, tok, batch_tokens=24, bf16=False)
    texts = ["the cat sat on the mat", "a dog", "hello", "what a long and winding road this is"]
    together = score(texts)
    alone = [score([t])[0] for t in texts]
    assert together == pytest.approx(alone, abs=1e-4)
    ids = [tok.convert_tokens_to_ids("<|endoftext|>"), *tok("A dog.", add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        logp = lm(input_ids=torch.tensor([ids])).logits[0, :-1].float().log_softmax(-1)
    assert together[1] == pytest.approx(sum(logp[i, t].item() for i, t in enumerate(ids[1:])), abs=1e-4)
    assert all(s < 0 for s in together)
    end = ids[0]  # an empty text: log p(<|endoftext|> | <|endoftext|>), the text ending at once
    with torch.no_grad():
        ends_at_once = lm(input_ids=torch.tensor([[end]])).logits[0, -1].float().log_softmax(-1)[end].item()
    assert score([""]) == pytest.approx([ends_at_once], abs=1e-4) and ends_at_once < 0
    in_bf16 = causal_lm_scorer(lm, tok, batch_tokens=24, bf16=True)(texts)  # rounded, not another computation
    assert in_bf16 == pytest.approx(together, rel=0.05) and in_bf16 != pytest.approx(together, abs=1e-6)
    with pytest.raises(ValueError, match="batch_tokens must be at least 1, got 0"):
        causal_lm_scorer(lm, tok, batch_tokens=0)


def test_batches_hold_at_most_the_token_budget_and_every_text_once():
    lengths = [3, 9, 2, 5, 30, 5, 4]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = _batches(order, lengths, batch_tokens=12)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches == [[2, 0, 6], [3, 5], [1], [4]]  # 3 x 4, 2 x 5, then one each: 9 and 30 (over the budget)


def test_texts_are_scored_as_sentences():
    assert as_sentence("i'm sure it's here") == "I'm sure it's here."
    assert as_sentence("if i can i will") == "If I can I will."
    assert as_sentence("ice is thin") == "Ice is thin."  # a word that begins with i is not the pronoun
    assert as_sentence("") == ""


class FakeTokenizer:
    def __init__(self, vocab, bos=None, eos=None):
        self.vocab, self.bos_token_id, self.eos_token_id = vocab, bos, eos

    def get_vocab(self):
        return self.vocab


def test_a_text_starts_after_the_document_separator_else_bos_else_eos():
    tok = mm.build("configs/tiny.yaml", ["encoders.image=null", "encoders.audio=null"]).tokenizer
    assert tok.bos_token == "<|im_start|>"  # SmolLM2-Instruct's BOS opens a chat turn: not where plain text starts
    assert start_token_id(tok) == tok.convert_tokens_to_ids("<|endoftext|>")
    assert start_token_id(FakeTokenizer({"<s>": 1, "</s>": 2}, bos=1, eos=2)) == 1
    assert start_token_id(FakeTokenizer({"</s>": 2}, eos=2)) == 2
    with pytest.raises(ValueError, match="start a text"):
        start_token_id(FakeTokenizer({"a": 0}))


@pytest.mark.pretrained
def test_smollm2_tells_homophones_apart():
    model = mm.build("configs/tiny.yaml", ["encoders.image=null", "encoders.audio=null", "backbone.pretrained=true",
                                           "backbone.overrides={}"]).eval()
    score = causal_lm_scorer(model.backbone, model.tokenizer)
    right, wrong = score(["i will meet you over there at noon", "i will meat you over their at noon"])
    assert right > wrong + 3


def test_the_lexicon_search_asks_the_rescorer_among_its_best():
    # "ca?" is heard as p (0.55) over t (0.45): the search alone writes "cap"; a rescorer that finds "the cat sat"
    # far likelier turns it, because "the cat sat" is among the search's n best.
    frames = spelled("the cap sat", {6: {"p": 0.55, "t": 0.45}})
    logits, mask = logits_for(frames), torch.ones(1, len(frames), dtype=torch.bool)
    words = ["the", "cat", "cap", "sat", "a"]
    score, asked = fake_lm({"the cat sat": -5.0, "the cap sat": -12.0})
    assert LexiconDecoder(words)(logits, mask) == ["the cap sat"]
    assert LexiconDecoder(words, rescorer=score, rescore_word_bonus=0.0)(logits, mask) == ["the cat sat"]
    assert "the cap sat" in asked[0] and "the cat sat" in asked[0]
    with pytest.raises(ValueError, match="nbest"):
        LexiconDecoder(words, rescorer=score, nbest=1)
    with pytest.raises(ValueError, match="beam_size must be at least 1, got 0"):
        LexiconDecoder(words, beam_size=0)
