"""Fuzzing checkpoint folders: `multimodal.checkpoint.load` on a saved tiny checkpoint whose checkpoint.json,
config.yaml or model.safetensors was mutated: random bytes, cut short, values of the wrong type, keys missing, a
safetensors header that declares a huge tensor or a huge header.

Property: a model, or a `CheckpointError` naming the folder or the file in it; never another exception, and never
an allocation beyond the largest model a config can name (the process's peak RSS, which sees torch's tensors,
grows by less than MAX_RSS_GROWTH_MB).
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import struct
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

import multimodal as mm
from multimodal.checkpoint import HASHES, WEIGHTS, CheckpointError, load

from .properties import assert_clear_error

ROOT = Path(__file__).resolve().parents[2]
# The tiny model is ~15 MB, but a config.yaml cut short asks for the default parts (SmolLM2-135M, ~550 MB): the
# bound is that, and nothing like the GBs a declared tensor could ask for.
MAX_RSS_GROWTH_MB = 1000
VALUES = {type(None): st.none(), bool: st.booleans(), int: st.integers(-3, 2**70), str: st.text(max_size=8),
          list: st.lists(st.integers(), max_size=2),
          dict: st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, Path]:
    """A tiny checkpoint in each format: "adapter" (what training saves) and "full"."""
    root = tmp_path_factory.mktemp("checkpoints")
    model = mm.build(ROOT / "configs/tiny.yaml")
    return {"adapter": model.save(root / "adapter", adapter_only=True), "full": model.save(root / "full")}


def copy_of(seed: Path, scratch: Path) -> Path:
    return Path(shutil.copytree(seed, scratch / f"ckpt-{uuid.uuid4().hex[:8]}"))


def unhashed(folder: Path) -> None:
    """Make `folder` a checkpoint saved before hashes were recorded: its files are read unchecked."""
    meta = json.loads((folder / "checkpoint.json").read_text())
    meta.pop(HASHES, None)
    (folder / "checkpoint.json").write_text(json.dumps(meta))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check(folder: Path) -> None:
    before = peak_rss_mb()
    try:
        load(folder)
        event("loaded")  # --hypothesis-show-statistics counts the outcomes
    except Exception as error:  # noqa: BLE001 - which kind it is, is what is checked
        said = re.sub(r"[0-9a-f]{64}", "HASH", str(error).replace(str(folder), "FOLDER"))
        event(said[:60] if isinstance(error, CheckpointError) else f"raw {type(error).__name__}")
        assert_clear_error(error, CheckpointError, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert peak_rss_mb() - before < MAX_RSS_GROWTH_MB


@st.composite
def edited(draw, data: object) -> object:
    """`data` (parsed JSON or YAML) with one value somewhere replaced by one of another type, or removed."""
    if not isinstance(data, dict) or not data or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(*(values for kind, values in VALUES.items() if kind is not type(data))))
    key = draw(st.sampled_from(sorted(data)))
    if draw(st.booleans()):
        return {k: v for k, v in data.items() if k != key}
    return {**data, key: draw(edited(data[key]))}


@st.composite
def damaged(draw, text: bytes) -> bytes:
    """Random bytes, or `text` cut short, or with a few bytes overwritten."""
    kind = draw(st.sampled_from(["random", "cut", "overwritten"]))
    if kind == "random":
        return draw(st.binary(max_size=256))
    if kind == "cut":
        return text[: draw(st.integers(0, len(text) - 1))]
    data = bytearray(text)
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@given(data=st.data())
def test_mutated_checkpoint_json(seeds, scratch, data):
    folder = copy_of(seeds["adapter"], scratch)
    meta_path = folder / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    if data.draw(st.booleans()):
        meta_path.write_text(json.dumps(data.draw(edited(meta))))
    else:
        meta_path.write_bytes(data.draw(damaged(meta_path.read_bytes())))
    check(folder)


@pytest.mark.parametrize("meta", [[1, 2], {"format_version": 1}, {"format": "weird"},
                                  {"format": "adapter", "format_version": "1"}, {"format": "adapter", "sha256": []},
                                  {"format": "adapter", "sha256": {WEIGHTS: 7}},
                                  {"format": "adapter", "attaches_to": 3}])
def test_checkpoint_json_of_the_wrong_shape_is_named(seeds, scratch, meta):
    """Regressions: the first four raised a raw AttributeError, KeyError or TypeError, or loaded "weird" as an
    adapter checkpoint; the last three hold what this version reads (hashes, attaches_to) in the wrong type."""
    folder = copy_of(seeds["adapter"], scratch)
    (folder / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=re.escape(str(folder))):
        load(folder)


@given(data=st.data())
def test_mutated_config_yaml(seeds, scratch, data):
    folder = copy_of(seeds["adapter"], scratch)
    path = folder / "config.yaml"
    config = yaml.safe_load(path.read_text())
    if data.draw(st.booleans()):
        path.write_text(yaml.safe_dump(data.draw(edited(config)), sort_keys=False))
    else:
        path.write_bytes(data.draw(damaged(path.read_bytes())))
    check(folder)


@pytest.mark.parametrize("edit", [("encoders", "audio", "conv_kernel", [10]),
                                  ("encoders", "image", "model_kwargs", "num_heads", 3)])
def test_a_config_its_parts_refuse_is_named(seeds, scratch, edit):
    """Regressions (config.yaml cut short finds these): transformers' ValueError (conv_kernel's length differs from
    conv_dim's) and timm's AssertionError (32 dims over 3 heads) came out raw."""
    folder = copy_of(seeds["adapter"], scratch)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    *path, key, value = edit
    leaf = config
    for name in path:
        leaf = leaf[name]
    leaf[key] = value
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(CheckpointError, match=rf"'{re.escape(str(folder))}': its config.yaml builds no model"):
        load(folder)


def header(path: Path) -> tuple[dict, bytes]:
    """(the JSON header of a safetensors file, the tensor data after it)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8: 8 + n]), raw[8 + n:]


def with_header(head: dict, body: bytes) -> bytes:
    encoded = json.dumps(head).encode()
    return struct.pack("<Q", len(encoded)) + encoded + body


@st.composite
def weights_file(draw, path: Path) -> bytes:
    """The file damaged anywhere, a huge header length, or its header declaring a huge or misplaced tensor."""
    kind = draw(st.sampled_from(["damaged", "header length", "huge tensor", "offsets"]))
    raw = path.read_bytes()
    if kind == "damaged":
        return draw(damaged(raw))
    if kind == "header length":
        return struct.pack("<Q", draw(st.integers(len(raw), 2**64 - 1))) + raw[8:]
    head, body = header(path)
    name = draw(st.sampled_from(sorted(k for k in head if k != "__metadata__")))
    if kind == "huge tensor":
        head[name]["shape"] = [draw(st.integers(2**16, 2**40)), draw(st.integers(2**16, 2**40))]
    else:
        head[name]["data_offsets"] = [draw(st.integers(0, 2**63)), draw(st.integers(0, 2**63))]
    return with_header(head, body)


@given(data=st.data(), format=st.sampled_from(["adapter", "full"]), hashed=st.booleans())
def test_mutated_weights(seeds, scratch, data, format, hashed):
    """With its hash recorded every change is caught by it; without (a checkpoint saved before hashes were
    recorded) the safetensors reader must refuse it in our words."""
    folder = copy_of(seeds[format], scratch)
    (folder / WEIGHTS).write_bytes(data.draw(weights_file(folder / WEIGHTS)))
    if not hashed:
        unhashed(folder)
    check(folder)


def test_a_renamed_weight_in_a_full_checkpoint_is_named(seeds, scratch):
    """Regression (found by the long profile): a full checkpoint whose file names a weight the model lacks made
    the error message itself fail (TypeError: the missing names came back as a set)."""
    folder = copy_of(seeds["full"], scratch)
    head, body = header(folder / WEIGHTS)
    name = next(k for k in head if k != "__metadata__")
    head[" " + name[1:]] = head.pop(name)
    (folder / WEIGHTS).write_bytes(with_header(head, body))
    unhashed(folder)
    said = rf"missing \['{re.escape(name)}'\], unexpected \[' {re.escape(name[1:])}'\]"
    with pytest.raises(CheckpointError, match=said):
        load(folder)


def test_a_header_declaring_a_huge_tensor_is_refused_without_allocating(seeds, scratch):
    folder = copy_of(seeds["full"], scratch)
    head, body = header(folder / WEIGHTS)
    name = next(k for k in head if k != "__metadata__")
    head[name]["shape"] = [2**20, 2**20]  # 4 TB of float32
    (folder / WEIGHTS).write_bytes(with_header(head, body))
    unhashed(folder)  # the reader itself must refuse it
    with pytest.raises(CheckpointError, match=rf"'{re.escape(str(folder / WEIGHTS))}' is not a readable safetensors"):
        load(folder)
