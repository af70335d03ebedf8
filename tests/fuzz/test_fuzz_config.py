"""Fuzzing the config readers: `load_config(FILE, ["a.b=value", ...])`, what `multimodal train CONFIG key=value`,
`mm.build` and the benchmarks call.

Property: a `Config` that can be written back out (`to_dict`, YAML), or a `ConfigError` naming the file, the
override or a key it holds; within the time and memory bounds of tests/fuzz/properties.py.
"""

from __future__ import annotations

import dataclasses
import typing

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from multimodal.config import MAX_DEPTH, MAX_VALUES, Config, ConfigError, load_config, to_dict

from .properties import assert_clear_error, run_bounded, write


def _dotted_keys(cls: type, prefix: str = "") -> list[str]:
    """Every key of the config dataclasses, e.g. 'training.backbone.lora_r'."""
    keys = []
    for name, tp in typing.get_type_hints(cls).items():
        key = f"{prefix}{name}"
        keys.append(key)
        inner = [a for a in (typing.get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)]
        if inner:
            keys += _dotted_keys(inner[0], key + ".")
    return keys


KEYS = _dotted_keys(Config)
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20)
           | st.sampled_from(["no", "yes", "on", "1e-3", "lora", "frozen", "stack", ""]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8) | st.sampled_from(KEYS), inner, max_size=4), max_leaves=16)
KEY = st.sampled_from(KEYS) | st.text(min_size=1, max_size=20)


def _nest(flat: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """{'a.b': 1} -> {'a': {'b': 1}}, as overrides nest (a key below a value replaces the value)."""
    data: dict[str, typing.Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = data
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    return data


def check_config(path=None, overrides: list[str] = ()) -> None:
    outcome = run_bounded(load_config, path, overrides)
    if outcome.error is None:
        assert isinstance(outcome.result, Config)
        written = run_bounded(lambda c: yaml.safe_dump(to_dict(c)), outcome.result)  # what a checkpoint saves
        assert written.error is None, f"a loaded config cannot be written: {written.error!r}"
        return
    error = outcome.error
    assert_clear_error(error, ConfigError, "")
    message = str(error)
    if path is not None and str(path) in message:
        return
    if any(item in message for item in overrides):
        return
    names = {str(k).split(".")[0] for k in _top_keys(path)}
    names |= {item.partition("=")[0].split(".")[0] for item in overrides}
    assert any(f"'{name}" in message for name in names), f"the error names neither the input nor a key: {message}"


def _top_keys(path) -> list:
    if path is None:
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return []
    return list(data) if isinstance(data, dict) else []


@given(text=st.text(max_size=400))
@example(text="[" * 10_000)
@example(text="a: {" * 10_000 + "}" * 10_000)
@example(text="training: {batch_size: &a [*a]}")
def test_random_yaml_text(scratch, text):
    check_config(write(scratch, text.encode("utf-8", "surrogatepass"), ".yaml"))


@given(data=st.binary(max_size=400))
@example(data=b"\xff\xfe\x00training: {}")
def test_random_bytes(scratch, data):
    check_config(write(scratch, data, ".yaml"))


@given(flat=st.dictionaries(KEY, VALUES, max_size=8))
@example(flat={"data.augment.noise_colours": []})  # AudioAugmentConfig's own check raised a plain ValueError
def test_configs_with_real_and_random_keys(scratch, flat):
    text = yaml.safe_dump(_nest(flat), allow_unicode=True)
    check_config(write(scratch, text.encode("utf-8", "surrogatepass"), ".yaml"))


@given(items=st.lists(st.tuples(KEY, st.text(max_size=40) | VALUES.map(lambda v: yaml.safe_dump(v).strip())),
                      min_size=1, max_size=4))
@example(items=[("training.batch_size", "[")])
@example(items=[("backbone.overrides.x", "[" * 5000)])
@example(items=[("backbone.overrides.x", "&a [*a]")])
@example(items=[("backbone.overrides" + ".a" * 5000, "1")])
def test_overrides(items):
    check_config(None, [f"{key}={value}" for key, value in items])


# ---------------------------------------------------------------------------------------------------------
# The bombs, and what the fuzzers found, as plain regression tests


def _laughs(levels: int) -> str:
    """`backbone.overrides` holding 10**levels strings through YAML aliases (each level lists the last ten times)."""
    lines = ["backbone:", "  overrides:", "    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_are_refused_not_expanded(tmp_path):
    """Before: nine levels loaded (aliases share one list) and the first `to_dict` or YAML dump of the config tried
    to copy out 10**9 strings (six levels already took 1 s and 12 s); now refused on load, naming the file."""
    path = tmp_path / "laughs.yaml"
    path.write_text(_laughs(9))
    outcome = run_bounded(load_config, path)
    assert_clear_error(outcome.error, ConfigError, path)
    assert f"more than {MAX_VALUES:,} values" in str(outcome.error) and outcome.seconds < 5


def test_deep_nesting_is_a_config_error_not_a_recursion_error(tmp_path):
    """Before: RecursionError tracebacks from PyYAML (a file of 10,000 '[' or 'a: {') or from `to_dict` (an override
    `backbone.overrides.x=&a [*a]` that holds itself); now a ConfigError naming the file or the override."""
    for name, text in (("lists.yaml", "[" * 10_000), ("maps.yaml", "a: {" * 10_000 + "}" * 10_000)):
        path = tmp_path / name
        path.write_text(text)
        error = run_bounded(load_config, path).error
        assert_clear_error(error, ConfigError, path)
        assert f"nests deeper than {MAX_DEPTH} levels" in str(error)
    for override in ("backbone.overrides.x=&a [*a]", "backbone.overrides" + ".a" * 5000 + "=1"):
        error = run_bounded(load_config, None, [override]).error
        assert_clear_error(error, ConfigError, override)


def test_an_override_that_is_not_yaml_names_the_override():
    """Before: `training.batch_size=[` raised PyYAML's ParserError (a traceback from `multimodal train`)."""
    error = run_bounded(load_config, None, ["training.batch_size=["]).error
    assert_clear_error(error, ConfigError, "override 'training.batch_size=['")
    assert "is not valid YAML" in str(error)


def test_a_config_that_is_not_utf8_names_the_file(tmp_path):
    """Before: UnicodeDecodeError without the file's name."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("backbone: {name: caf\u00e9}\n".encode("latin-1"))
    assert_clear_error(run_bounded(load_config, path).error, ConfigError, path)


def test_a_file_too_large_for_a_config_is_refused_unread(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a"}\n' * 100_000)  # 1.4 MB: a data file passed as the config
    error = run_bounded(load_config, path).error
    assert_clear_error(error, ConfigError, path)
    assert "a config is a few kB" in str(error)


def test_what_loads_also_writes_out():
    """A real nested override value round-trips: the bounds do not refuse ordinary configs."""
    config = load_config(None, ["backbone.overrides.rope_scaling={type: linear, factor: 2.0}",
                                "training.backbone.lora_targets=[q_proj, k_proj, v_proj]"])
    assert config.backbone.overrides["rope_scaling"] == {"type": "linear", "factor": 2.0}
    assert yaml.safe_load(yaml.safe_dump(to_dict(config)))["training"]["backbone"]["lora_targets"][1] == "k_proj"


def test_a_value_a_dataclass_refuses_names_its_section(tmp_path):
    """Before: `data.augment.noise_colours: []` raised AudioAugmentConfig's plain ValueError ("audio augment:
    noise_colours must be ..."), naming no config key; now a ConfigError naming 'data.augment'."""
    path = tmp_path / "augment.yaml"
    path.write_text("data:\n  augment:\n    noise_colours: []\n")
    error = run_bounded(load_config, path).error
    assert_clear_error(error, ConfigError, "'data.augment': audio augment: noise_colours must be")
