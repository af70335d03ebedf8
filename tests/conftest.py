import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_config_path() -> Path:
    return TINY


@pytest.fixture(autouse=True)
def _lexicon_cache(tmp_path_factory, monkeypatch):
    """Phone lexicons are cached on disk (tasks/ctc_lexicon.py): tests keep theirs in one folder of their own, so a
    cache written by older code never answers for the code under test."""
    from tasks import ctc_lexicon
    folder = tmp_path_factory.getbasetemp() / "lexicons"
    monkeypatch.setattr(ctc_lexicon, "lexicon_cache_dir", lambda: folder)
