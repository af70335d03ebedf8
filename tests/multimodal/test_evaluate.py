"""`evaluate --rescore`: the backbone re-ranks the lexicon search's n best, and the metric follows its choice."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import multimodal as mm
from multimodal.cli import main
from multimodal.data import load_rows
from multimodal.evaluate import evaluate
from tasks import get_task
from tasks.lm_rescore import as_sentence, start_token_id

from .corpora import write_jsonl
from .tiny_text_backbones import build as build_backbone

ROOT = Path(__file__).resolve().parents[2]
WORDS = "the cat sat on a mat dog ran to red sun big hat"
PREFERRED = "a cat"  # what the backbone is taught to prefer; the search's best is "cat" (`hear_cat`)


def teach(model, text: str, steps: int = 40) -> None:
    """Fit the model's backbone to the one sentence `text`, as the rescorer reads it (after the start token)."""
    tok = model.tokenizer
    ids = torch.tensor([[start_token_id(tok), *tok(as_sentence(text), add_special_tokens=False).input_ids]])
    params = list(model.backbone.parameters())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=1e-2)
    model.backbone.train()
    for _ in range(steps):
        loss = model.backbone(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert loss.item() < 0.1


def hear_cat(model) -> None:
    """Make the CTC head hear the letters of "cat" in every frame, "a" and word boundaries less, blanks and other
    letters hardly: the lexicon search's best is then "cat", with "a cat" among its next (6 lower, where a word
    costs 4), and no empty transcript among its 20 best."""
    from tasks.ctc import BLANK, VOCAB

    head = model.heads["ctc"]  # nn.Linear(D_enc, len(VOCAB))
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-5.0)
        head.bias[BLANK] = -3.0
        for unit, logit in {"c": 2.0, "t": 2.0, "a": 1.0, " ": 1.0}.items():
            head.bias[VOCAB.index(unit)] = logit


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(folder of 3 noise clips transcribed PREFERRED, lexicon file, taught model dir, untaught model dir)."""
    root = tmp_path_factory.mktemp("rescore")
    rng = np.random.default_rng(0)
    (root / "clips").mkdir()
    for i, seconds in enumerate((0.6, 1.0, 1.4)):
        noise = 0.3 * rng.standard_normal(int(16000 * seconds)).astype(np.float32)
        soundfile.write(root / "clips" / f"c{i}.wav", noise, 16000)
    write_jsonl(root / "clips" / "metadata.jsonl", [{"file_name": f"c{i}.wav", "text": PREFERRED} for i in range(3)])
    (root / "lexicon.txt").write_text(WORDS + "\n")
    backbone = build_backbone("gpt2", root / "gpt2")  # a 400-token vocabulary: teaching it takes a second
    model = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "encoders.image=null", f"backbone.name={backbone}",
                                                  "backbone.overrides={}", "training.backbone.lora_targets=[c_attn]"])
    hear_cat(model)
    untaught = model.save(root / "untaught")
    teach(model, PREFERRED)
    return root / "clips", root / "lexicon.txt", model.save(root / "taught"), untaught


def hypotheses(model_dir: Path, clips: Path, lexicon: Path, rescore: bool) -> tuple[float, list[str]]:
    task = get_task("transcribe")
    metrics = evaluate(mm.load(model_dir), load_rows(clips, task), task, decoder="ctc", lexicon=lexicon,
                       rescore=rescore, return_outputs=True)
    return metrics["wer"], [o["hypothesis"] for o in metrics["outputs"]]


def test_rescoring_picks_the_entry_the_backbone_prefers(setup):
    clips, lexicon, taught, untaught = setup
    wer, texts = hypotheses(taught, clips, lexicon, rescore=False)
    assert texts == ["cat"] * 3 and wer == pytest.approx(0.5)  # the search alone: "a" deleted
    wer, texts = hypotheses(taught, clips, lexicon, rescore=True)
    assert texts == [PREFERRED] * 3 and wer == 0.0
    # The same search rescored by the untaught backbone, which has no such preference, keeps the search's choice:
    # the change comes from the backbone.
    assert hypotheses(untaught, clips, lexicon, rescore=True)[1] == ["cat"] * 3


def test_the_cli_flag_rescores(setup, capsys):
    clips, lexicon, taught, _ = setup
    args = ["evaluate", "--model", str(taught), "--task", "transcribe", "--data", str(clips), "--decoder", "ctc",
            "--lexicon", str(lexicon), "--format", "json"]
    wer = {}
    for flag in ([], ["--rescore"]):
        capsys.readouterr()
        assert main(args + flag) == 0
        wer[bool(flag)] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["wer"]
    assert wer == {False: pytest.approx(0.5), True: 0.0}
