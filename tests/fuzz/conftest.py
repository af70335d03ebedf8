"""Hypothesis profiles for the fuzz tests, and a scratch folder for the files they write.

- `fuzz` (the default): ~30 examples a test, derandomized so every run tries the same inputs; seconds a target.
- `long` (`HYPOTHESIS_PROFILE=long`, run by benchmarks/fuzz.py): thousands of examples a test, random.
Nothing lands in the repository: no example database, and Hypothesis's own folder is in the temp dir.
"""

import logging
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

DEFAULT_EXAMPLES = 30
LONG_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))  # per test, in the long profile

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "multimodal-hypothesis")
_common = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("fuzz", max_examples=DEFAULT_EXAMPLES, derandomize=True, **_common)
settings.register_profile("long", max_examples=LONG_EXAMPLES, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz"))


@pytest.fixture(scope="session")
def scratch(tmp_path_factory) -> Path:
    """A folder for the files examples write (a session fixture: Hypothesis runs many examples per test)."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="session", autouse=True)
def _quiet_datasets(tmp_path_factory):
    """`datasets` caches every file it reads: keep thousands of fuzzed files out of the user's cache, and quiet."""
    import datasets

    datasets.disable_progress_bars()
    logging.getLogger("datasets").setLevel(logging.ERROR)
    cache, datasets.config.HF_DATASETS_CACHE = datasets.config.HF_DATASETS_CACHE, tmp_path_factory.mktemp("hf-datasets")
    yield
    datasets.config.HF_DATASETS_CACHE = cache
