import pytest
import torch

from tasks import ctc


def test_normalize_and_encode():
    assert ctc.normalize("Hello, World -- it's  ME!") == "hello world it's me"
    assert ctc.encode("ab c") == [ctc.CHAR_TO_ID["a"], ctc.CHAR_TO_ID["b"], ctc.CHAR_TO_ID[" "], ctc.CHAR_TO_ID["c"]]


def one_hot_path(path: list[int], vocab: int = len(ctc.VOCAB)) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(path), vocab).float() * 10  # (T, V) logits


def test_greedy_decode_collapses_repeats_and_blanks():
    a, b, space = ctc.CHAR_TO_ID["a"], ctc.CHAR_TO_ID["b"], ctc.CHAR_TO_ID[" "]
    path = [0, a, a, 0, a, b, b, 0, space, 0, b, 0, 0]
    logits = one_hot_path(path).unsqueeze(0)
    mask = torch.ones(1, len(path), dtype=torch.bool)
    chars = ctc.greedy_decode(logits, mask)[0]
    assert ctc.to_text(chars) == "aab b"
    times = ctc.word_times(chars, 0.04)
    assert [w for w, _, _ in times] == ["aab", "b"]
    assert [t for _, s, e in times for t in (s, e)] == pytest.approx([0.04, 0.24, 0.40, 0.44])
    mask[0, 5:] = False  # frames past the clip's end are ignored
    assert ctc.to_text(ctc.greedy_decode(logits, mask)[0]) == "aa"


def test_ctc_loss_prefers_the_right_path():
    target = ctc.encode("ab")
    good = one_hot_path([0, target[0], 0, target[1], 0]).unsqueeze(0)
    bad = one_hot_path([0, target[1], 0, target[0], 0]).unsqueeze(0)
    mask = torch.ones(1, 5, dtype=torch.bool)
    assert ctc.ctc_loss(good, mask, [target]) < 0.01 < ctc.ctc_loss(bad, mask, [target])
    reference = torch.nn.CTCLoss(reduction="sum")(good.log_softmax(-1).transpose(0, 1), torch.tensor([target]),
                                                  torch.tensor([5]), torch.tensor([2])) / 2
    assert torch.allclose(ctc.ctc_loss(good, mask, [target]), reference)


def test_align_words_finds_each_words_frames_whatever_the_decoder_wrote():
    c = ctc.CHAR_TO_ID
    #       0  1  2       3       4       5  6       7  8  9       10      11      12 13      14      15
    path = [0, 0, c["h"], c["h"], c["i"], 0, c[" "], 0, 0, c["y"], c["o"], c["o"], 0, c["o"], c["u"], 0]
    log_probs = one_hot_path(path).log_softmax(-1)
    spans = ctc.align_words(log_probs, ["Hi,", "—", "yoou"], 0.02)  # case, punctuation and a lone dash
    assert spans[1] is None
    assert spans[0] == pytest.approx((0.04, 0.10)) and spans[2] == pytest.approx((0.18, 0.30))
    assert ctc.align_words(log_probs, ["x" * 40], 0.02) == [None]  # more characters than frames
    assert ctc.align_words(log_probs, ["...", "!"], 0.02) == [None, None]
