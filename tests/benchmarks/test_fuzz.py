"""benchmarks/fuzz.py: Hypothesis's statistics are read into examples tried and failures found per test."""

from . import load_benchmark

STATISTICS = """
============================ Hypothesis Statistics =============================
tests/fuzz/test_fuzz_audio.py::test_random_bytes:

  - during generate phase (3.21 seconds):
    - Typical runtimes: ~ 1-6 ms, of which < 1ms in data generation
    - 1000 passing, 0 failing, and 0 invalid test cases

  - Stopped because settings.max_examples=1000


tests/fuzz/test_fuzz_audio.py::test_wav_header_fields:

  - during generate phase (0.41 seconds):
    - Typical runtimes: ~ 1-6 ms, of which ~ 0-1 ms in data generation
    - 93 passing, 6 failing, and 5 invalid test cases
    - Found 1 distinct error in this phase

  - during shrink phase (0.19 seconds):
    - Typical runtimes: ~ 1-6 ms, of which < 1ms in data generation
    - 20 passing, 5 failing, and 29 invalid test cases
    - Tried 54 shrinks of which 6 were successful

  - Stopped because nothing left to do
"""


def test_statistics_become_counts_per_test():
    tests = load_benchmark("fuzz").parse_statistics(STATISTICS)
    clean, broken = tests["tests/fuzz/test_fuzz_audio.py::test_random_bytes"], tests[
        "tests/fuzz/test_fuzz_audio.py::test_wav_header_fields"]
    assert (clean.tried, clean.failing["generate"], clean.distinct_errors) == (1000, 0, 0)
    assert (broken.tried, broken.failing["generate"], broken.distinct_errors) == (99, 6, 1)  # shrinking not counted
    assert broken.failing["shrink"] == 5 and broken.invalid["generate"] == 5
