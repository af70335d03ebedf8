"""Hostile data: file names that climb out of their folder, symlinks that point out of it, and pickles.

Every loader that joins a user's `file_name` to a folder goes through `multimodal.data.check_row`: `load_rows`
(train, evaluate, mixtures, `ship --test`) and the streaming reader. The CLI's transcribe / caption take the
files they are given and join nothing.
"""

import ast
import json
import re
from pathlib import Path

import pytest

from multimodal.cli import parser
from multimodal.config import TaskData, load_config
from multimodal.data import DataError, load_rows
from multimodal.mixture import Mixture
from multimodal.streaming import StreamingTaskDataset
from tasks import get_task

from .corpora import image_folder, write_jsonl

CAPTION = get_task("caption")
ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("multimodal", "tasks", "encoders", "benchmarks")


def rows_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside every data folder, a PNG so that only the folder check can refuse it."""
    outside = image_folder(tmp_path / "private", n=1) / "img_000.png"
    return outside.rename(outside.with_name("secret.png"))


# ---------------------------------------------------------------------------------------------------------
# Names that climb out


@pytest.mark.parametrize("name", ["../private/secret.png", "../../private/secret.png",
                                  "img_000.png/../../private/secret.png", "ABSOLUTE"])
@pytest.mark.parametrize("metadata", ["metadata.jsonl", "metadata.csv"])
def test_a_file_name_that_climbs_out_is_refused_by_name(tmp_path, secret, name, metadata):
    folder = image_folder(tmp_path / "data", n=2)
    name = str(secret) if name == "ABSOLUTE" else name
    rows = rows_of(folder) + [{"file_name": name, "text": "a secret"}]
    (folder / "metadata.jsonl").unlink()
    if metadata == "metadata.csv":
        (folder / metadata).write_text("file_name,text\n" + "".join(f"{r['file_name']},{r['text']}\n" for r in rows))
    else:
        write_jsonl(folder / metadata, rows)
    with pytest.raises(DataError, match=re.escape(f"row 2: file_name '{name}' escapes the folder '{folder}'")):
        load_rows(folder, CAPTION)
    assert len(load_rows(folder, CAPTION, on_bad_rows="skip")) == 2  # the other rows are fine


def test_a_jsonl_file_is_a_folder_too(tmp_path, secret):
    """A JSONL file's names are relative to its folder, and may not leave it either."""
    folder = image_folder(tmp_path / "data", n=1)
    write_jsonl(folder / "train.jsonl", [{"file_name": "img_000.png", "text": "a"},
                                         {"file_name": "../private/secret.png", "text": "b"}])
    with pytest.raises(DataError, match=re.escape("row 1: file_name '../private/secret.png' escapes the folder")):
        load_rows(folder / "train.jsonl", CAPTION)


# ---------------------------------------------------------------------------------------------------------
# Symlinks


def linked_folder(tmp_path: Path, secret: Path) -> Path:
    """Two real images, a link to one of them (inside), a link to a file outside, and a linked folder outside."""
    folder = image_folder(tmp_path / "data", n=2)
    (folder / "alias.png").symlink_to("img_000.png")  # stays inside
    (folder / "inner").symlink_to(folder, target_is_directory=True)  # a folder link that stays inside
    (folder / "leak.png").symlink_to(secret)
    (folder / "private").symlink_to(secret.parent, target_is_directory=True)
    write_jsonl(folder / "metadata.jsonl", rows_of(folder) + [
        {"file_name": "alias.png", "text": "inside"}, {"file_name": "inner/img_001.png", "text": "inside"},
        {"file_name": "leak.png", "text": "out"}, {"file_name": "private/secret.png", "text": "out"}])
    return folder


def test_a_symlink_out_of_the_folder_is_refused_by_default_naming_link_and_target(tmp_path, secret):
    folder = linked_folder(tmp_path, secret)
    with pytest.raises(DataError) as info:
        load_rows(folder, CAPTION)
    message = str(info.value)
    assert "2 bad row(s) of 6" in message  # the links that stay inside are fine
    assert (f"row 4: file_name 'leak.png' is a symlink to '{secret}', outside the folder '{folder}' "
            "(set data.follow_symlinks=true") in message
    assert f"row 5: file_name 'private/secret.png' is a symlink to '{secret}'" in message
    assert len(load_rows(folder, CAPTION, on_bad_rows="skip")) == 4


def test_following_symlinks_out_is_an_opt_in(tmp_path, secret):
    folder = linked_folder(tmp_path, secret)
    rows = load_rows(folder, CAPTION, follow_symlinks=True)
    assert len(rows) == 6 and rows["image"][4] == str(secret)  # resolved to where the link points
    assert load_config(None).data.follow_symlinks is False
    assert load_config(None, ["data.follow_symlinks=true"]).data.follow_symlinks is True


def test_a_mixture_passes_the_config_flag(tmp_path, secret):
    folder = linked_folder(tmp_path, secret)
    config = load_config(None, ["training.seed=0"])
    config.data.mixture = [TaskData(task="caption", train=str(folder))]
    with pytest.raises(DataError, match="is a symlink to"):
        Mixture(config)
    config.data.follow_symlinks = True
    assert len(Mixture(config).tasks[0].train_rows) == 6


def test_streaming_refuses_the_same_rows(tmp_path, secret):
    folder = image_folder(tmp_path / "data", n=1)
    (folder / "leak.png").symlink_to(secret)
    write_jsonl(folder / "metadata.jsonl", [{"file_name": "leak.png", "text": "out"}])
    with pytest.raises(DataError, match=re.escape(f"file_name 'leak.png' is a symlink to '{secret}'")):
        list(StreamingTaskDataset(folder, CAPTION, seed=0, on_bad_rows="error"))
    examples = list(StreamingTaskDataset(folder, CAPTION, seed=0, on_bad_rows="error", follow_symlinks=True))
    assert [e["reference"] for e in examples] == ["out"]
    write_jsonl(folder / "metadata.jsonl", [{"file_name": "../private/secret.png", "text": "out"}])
    with pytest.raises(DataError, match="escapes the folder"):
        list(StreamingTaskDataset(folder, CAPTION, seed=0, on_bad_rows="error", follow_symlinks=True))


def test_evaluate_has_the_opt_in_too():
    args = parser().parse_args(["evaluate", "--model", "m", "--data", "d"])
    assert args.follow_symlinks is False
    assert parser().parse_args(["evaluate", "--model", "m", "--data", "d", "--follow-symlinks"]).follow_symlinks


# ---------------------------------------------------------------------------------------------------------
# No pickle is ever loaded


UNPICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
UNSAFE_YAML_LOADERS = {"Loader", "UnsafeLoader", "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader"}


def unsafe_loads(source: str, filename: str = "<string>") -> list[str]:
    """Lines of Python source that could unpickle or run foreign code: an import of a pickling module, torch.load
    without weights_only=True, numpy.load without allow_pickle=False, an unsafe YAML loader, read_pickle, or
    trust_remote_code other than False. Names are followed through imports (`import numpy as np`,
    `from torch import load`)."""
    tree = ast.parse(source, filename)
    origin: dict[str, str] = {}  # local name -> what it was imported as
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                origin[alias.asname or top] = alias.name if alias.asname else top
                if top in UNPICKLING_MODULES:
                    found.append(f"{filename}:{node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                origin[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            if node.module.split(".")[0] in UNPICKLING_MODULES:
                found.append(f"{filename}:{node.lineno}: imports from {node.module}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, origin)
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        where = f"{filename}:{node.lineno}: {name or 'a call'}"
        if name == "torch.load" and not _is_constant(keywords.get("weights_only"), True):
            found.append(f"{where} without weights_only=True")
        if name == "numpy.load" and not _is_constant(keywords.get("allow_pickle"), False):
            found.append(f"{where} without allow_pickle=False")
        if name in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all",
                    "pandas.read_pickle"):
            found.append(where)
        if name in ("yaml.load", "yaml.load_all"):
            loader = keywords.get("Loader", node.args[1] if len(node.args) > 1 else None)
            if loader is None or (_dotted(loader, origin) or "").split(".")[-1] in UNSAFE_YAML_LOADERS:
                found.append(f"{where} with an unsafe Loader")
        if "trust_remote_code" in keywords and not _is_constant(keywords["trust_remote_code"], False):
            found.append(f"{where} with trust_remote_code")
    return found


def _dotted(node: ast.AST, origin: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([origin.get(node.id, node.id), *reversed(parts)])


def _is_constant(node: ast.AST | None, value: bool) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def test_no_source_file_can_unpickle():
    files = [p for top in SCANNED for p in sorted((ROOT / top).rglob("*.py"))]
    assert len(files) > 50
    found = [line for p in files for line in unsafe_loads(p.read_text(), str(p.relative_to(ROOT)))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source", [
    "import torch\nstate = torch.load(path)",
    "import torch\nstate = torch.load(path, weights_only=False)",
    "import torch\nstate = torch.load(path, **options)",
    "from torch import load as restore\nstate = restore(path, map_location='cpu')",
    "import numpy as np\nx = np.load(path)",
    "import numpy\nx = numpy.load(path, allow_pickle=True)",
    "import pickle",
    "from joblib import load",
    "import yaml\nyaml.load(text)",
    "import yaml\nyaml.load(text, Loader=yaml.Loader)",
    "import yaml\nyaml.unsafe_load(text)",
    "import pandas as pd\nframe = pd.read_pickle(path)",
    "from transformers import AutoModel\nAutoModel.from_pretrained(name, trust_remote_code=True)",
    "import datasets\ndatasets.load_dataset(name, trust_remote_code=allow)",
])
def test_the_scanner_finds_a_planted_line(source):
    assert len(unsafe_loads(source)) == 1, unsafe_loads(source)


def test_the_scanner_passes_the_safe_forms():
    safe = """
import torch, yaml
import numpy as np
state = torch.load(path, map_location="cpu", weights_only=True)
with np.load(path, allow_pickle=False) as arrays: pass
data = yaml.safe_load(text)
data = yaml.load(text, Loader=yaml.SafeLoader)
model = AutoModel.from_pretrained(name, trust_remote_code=False)
"""
    assert unsafe_loads(safe) == []


def test_training_passes_the_config_flag(tmp_path, secret):
    from multimodal.train import train

    folder = linked_folder(tmp_path, secret)
    overrides = ["data.task=caption", "encoders.audio=null", "data.num_workers=0", "training.max_steps=1",
                 "training.eval_every=0"]
    config = load_config(Path(__file__).parents[2] / "configs/tiny.yaml", overrides)
    with pytest.raises(DataError, match="is a symlink to"):
        train(config, tmp_path / "run", train_data=folder, progress=False)
    config = load_config(Path(__file__).parents[2] / "configs/tiny.yaml", [*overrides, "data.follow_symlinks=true"])
    assert train(config, tmp_path / "run2", train_data=folder, progress=False)["steps"] == 1
