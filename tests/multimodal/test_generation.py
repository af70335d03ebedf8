from multimodal.generation import loop_start


def test_loop_start_finds_tail_loops():
    assert loop_start([1, 2, 3, 4], max_repeats=3) is None
    assert loop_start([5, 7, 7, 7], max_repeats=3) == 2  # keep one 7
    assert loop_start([9, 1, 2, 1, 2, 1, 2, 1, 2], max_repeats=3) == 3  # keep one "1 2" of the four
    assert loop_start([1, 2, 1, 2], max_repeats=3) is None  # two copies are not a loop yet
    assert loop_start([4, 4, 4], max_repeats=0) is None  # guard off


def test_loop_start_longest_ngram():
    phrase = [10, 11, 12, 13, 14, 15, 16, 17]  # 8 tokens: the longest n-gram the guard looks for
    assert loop_start([1] + phrase * 4, max_repeats=4) == 9
