"""The notebooks run, top to bottom, with small settings (a tiny model, a few steps, the shipped models as they
are), so they never go stale; and they are committed without outputs."""

import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHIPPED_MODELS_IN = {"01_quickstart", "03_transcribe_long_recording", "05_sentiment_explained"}
RUNS = [pytest.param(p, id=p.stem, marks=pytest.mark.pretrained) if p.stem in SHIPPED_MODELS_IN else
        pytest.param(p, id=p.stem) for p in NOTEBOOKS]
TIMEOUT_S = 120  # per cell


def test_the_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_finetune_captioner", "03_transcribe_long_recording",
                                           "04_few_shot_text_classification", "05_sentiment_explained"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), f"{path.name} holds outputs"


@pytest.mark.parametrize("path", RUNS)
def test_notebook_runs_with_small_settings(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("MULTIMODAL_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MULTIMODAL_NOTEBOOK_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    monkeypatch.delenv("MY_IMAGES", raising=False)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if path.stem == "05_sentiment_explained":  # the HTML and PNG of each explanation, in the notebook's folder
        written = sorted(p.name for p in (tmp_path / "sentiment_explained").iterdir())
        assert written == [f"{n}.{suffix}" for n in range(4) for suffix in ("html", "png")]
