"""benchmarks/scene_probe.py: each object's centre token, a probe that reads what features carry, end to end."""

import json
import sys
from types import SimpleNamespace

import torch

from tasks.corpora.scenes import generate_scenes_corpus

from ..conftest import ROOT
from . import load_benchmark


class TokenIdEncoder(torch.nn.Module):
    """A 4x4 grid whose every token is its own index: features say which token was picked."""

    grid_size = (4, 4)

    def preprocess(self, images):
        return torch.zeros(len(images), 3, 8, 8)

    def forward(self, pixels):
        return SimpleNamespace(features=torch.arange(16.0).repeat(len(pixels), 1).unsqueeze(-1))  # (B, 16, 1)


def test_each_object_is_read_at_its_centre_token(tmp_path):
    bench = load_benchmark("scene_probe")
    generate_scenes_corpus(tmp_path, n_train=3, n_eval=0, n_heldout=0, seed=1, size=32)
    rows = bench.read_rows(tmp_path, "train", 0)
    features, colours, shapes = bench.object_features(TokenIdEncoder(), tmp_path, "train", rows)
    objects = [o for row in rows for o in row["objects"]]
    assert features[:, 0].tolist() == [int(o["y"] * 4) * 4 + int(o["x"] * 4) for o in objects]
    assert [bench.COLOUR_NAMES[i] for i in colours] == [o["colour"] for o in objects]
    assert [bench.SHAPE_NAMES[i] for i in shapes] == [o["shape"] for o in objects]


def test_probe_reads_what_the_features_carry_and_no_more():
    bench = load_benchmark("scene_probe")
    gen = torch.Generator().manual_seed(0)
    colours, shapes = torch.randint(0, 8, (400,), generator=gen), torch.randint(0, 5, (400,), generator=gen)
    noise = torch.randn(400, 4, generator=gen)
    colour_only = torch.cat([torch.nn.functional.one_hot(colours, 8).float(), noise], 1)  # shape not in it
    data = {"train": (colour_only[:300], colours[:300], shapes[:300]),
            "eval": (colour_only[300:], colours[300:], shapes[300:])}
    result = bench.probe(data, hidden=0)
    assert result["eval"]["colour"] == 1.0
    assert result["eval"]["shape"] < 0.4  # chance is 0.2


def test_main_probes_reference_and_against_side_by_side(tmp_path, monkeypatch):
    bench = load_benchmark("scene_probe")
    generate_scenes_corpus(tmp_path / "scenes", n_train=6, n_eval=2, n_heldout=2, seed=1, size=32)
    out = tmp_path / "probe.json"
    monkeypatch.setattr(sys, "argv", ["scene_probe.py", "--scenes", str(tmp_path / "scenes"),
                                      "--config", str(ROOT / "configs/tiny.yaml"),
                                      "--against", "encoders.image.image_size=64", "--json", str(out)])
    bench.main()
    result = json.loads(out.read_text())
    reference, against = result["encoders"].values()
    assert reference["grid"] == [4, 4] and against["grid"] == [8, 8]
    for probed in (reference, against):
        for kind in ("linear", "mlp"):
            assert set(probed[kind]) == {"train", "eval", "heldout"}
            assert all(0.0 <= probed[kind][s]["colour"] <= 1.0 for s in probed[kind])
    assert result["objects"]["eval"] >= 2
