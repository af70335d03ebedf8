from pathlib import Path

import pytest

import multimodal as mm
from multimodal.config import Config, ConfigError, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_yaml_loads_and_builds(path):
    config = load_config(path)
    assert isinstance(config, Config)
    model = mm.build(config)
    assert set(model.encoders) == {m for m in ("image", "audio") if getattr(config.encoders, m) is not None}


def test_overrides_reach_nested_fields(tiny_config_path):
    config = load_config(tiny_config_path, ["training.backbone.lr=5e-4", "encoders.audio.num_layers=3", "encoders.image=null"])
    assert config.training.backbone.lr == 5e-4
    assert config.encoders.audio.num_layers == 3
    assert config.encoders.image is None


def test_bare_yaml_no_is_the_word_no(tiny_config_path, tmp_path):
    """YAML reads a bare `no` as false; a choice that has the word "no" takes it as that word."""
    assert load_config(tiny_config_path, ["training.mixed_precision=no"]).training.mixed_precision == "no"
    config = tmp_path / "no.yaml"
    config.write_text("training:\n  mixed_precision: no\n")
    assert load_config(config).training.mixed_precision == "no"
    bool_read = r"'backbone\.kind' is False \(YAML reads a bare yes/no/on/off as a boolean\); valid values: causal"
    with pytest.raises(ConfigError, match=bool_read):
        load_config(tiny_config_path, ["backbone.kind=no"])


def test_unknown_key_lists_valid_keys(tiny_config_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'training\.bach_size'.*batch_size"):
        load_config(tiny_config_path, ["training.bach_size=8"])


@pytest.mark.parametrize("override, unknown, valid", [
    ("no.such.key=1", "no", "encoders, adapters"),  # was reported as "unknown config key 'no'"
    ("training.nope.lr=1", "training.nope", "batch_size"),
    ("heads.classify.nope=1", "heads.classify.nope", "labels"),  # through an Optional[dataclass]
])
def test_an_unknown_nested_override_names_the_whole_key(tiny_config_path, override, unknown, valid):
    key = override.partition("=")[0]
    with pytest.raises(ConfigError) as error:
        load_config(tiny_config_path, [override])
    message = str(error.value)
    assert f"unknown config key '{key}'" in message and f"'{unknown}' is not a key" in message, message
    assert valid in message, message


def test_keys_under_a_mapping_field_are_free(tiny_config_path):
    config = load_config(tiny_config_path, ["backbone.overrides.initializer_range=0.5"])
    assert config.backbone.overrides["initializer_range"] == 0.5


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.batch_size=eight", r"'training\.batch_size' must be an integer"),
        ("backbone.kind=seq2seq", r"'backbone\.kind' is 'seq2seq'; valid values: causal, encoder"),
        ("backbone.pretrained=maybe", r"'backbone\.pretrained' must be true or false"),
        ("training.adapters.lora_targets=q_proj", r"must be a list"),
        ("nonsense", r"must look like section\.key=value"),
    ],
)
def test_wrong_values_are_errors(tiny_config_path, override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(tiny_config_path, [override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
