"""The data layer: accepted formats, and a clear error for every kind of bad row."""

import json
import logging

import datasets
import pytest
from PIL import Image

from multimodal.cli import main
from multimodal.data import DataError, LengthGroupedBatches, TaskDataset, load_rows
from tasks import get_task

from .corpora import audio_folder, image_folder, text_file, write_jsonl

CAPTION, TRANSCRIBE, CLASSIFY = get_task("caption"), get_task("transcribe"), get_task("classify")


def test_image_folder_jsonl_and_csv(tmp_path):
    folder = image_folder(tmp_path / "img", n=6)
    rows = load_rows(folder, CAPTION)
    assert len(rows) == 6 and set(rows.column_names) >= {"image", "text", "length"}
    example = TaskDataset(rows, CAPTION)[0]
    assert isinstance(example["images"][0], Image.Image) and example["target"] == "a red square"
    lines = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    (folder / "metadata.jsonl").unlink()
    (folder / "metadata.csv").write_text("file_name,text\n" + "".join(f"{r['file_name']},{r['text']}\n" for r in lines))
    assert len(load_rows(folder, CAPTION)) == 6


def test_audio_folder_lengths_are_durations(tmp_path):
    rows = load_rows(audio_folder(tmp_path / "aud", n=5), TRANSCRIBE)
    assert [round(x, 2) for x in rows["length"]] == [0.3, 0.4, 0.5, 0.6, 0.7]
    example = TaskDataset(rows, TRANSCRIBE)[2]  # a 22,050 Hz file
    assert example["audios"][0].dtype.name == "float32" and abs(len(example["audios"][0]) - 8000) <= 1


def test_text_file_and_datasets_objects(tmp_path):
    assert len(load_rows(text_file(tmp_path / "t.jsonl", n=10), CLASSIFY)) == 10
    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]})
    assert len(load_rows(ds, CLASSIFY)) == 2
    assert len(load_rows(datasets.DatasetDict({"train": ds, "validation": ds.select([0])}), CLASSIFY, split="validation")) == 1
    ds.save_to_disk(tmp_path / "saved")
    assert len(load_rows(tmp_path / "saved", CLASSIFY)) == 2


def test_datasets_image_feature(tmp_path):
    images = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    ds = datasets.Dataset.from_dict({"image": images, "text": ["red", "blue"]}).cast_column("image", datasets.Image())
    rows = load_rows(ds, CAPTION)
    assert TaskDataset(rows, CAPTION)[1]["images"][0].getpixel((0, 0)) == (0, 0, 255)


def test_a_list_of_sources_is_a_mixture(tmp_path):
    first = image_folder(tmp_path / "a", n=5)
    second = image_folder(tmp_path / "b", n=2, seed=1)
    rows = [json.loads(line) for line in (first / "metadata.jsonl").read_text().splitlines()]
    write_jsonl(first / "metadata.jsonl", [{**r, "voice": "a", "n": 1} for r in rows])
    rows = [json.loads(line) for line in (second / "metadata.jsonl").read_text().splitlines()]
    write_jsonl(second / "metadata.jsonl", [{**r, "text": "b " + r["text"], "extra": [1, 2], "voice": "b", "n": "x"}
                                            for r in rows])
    mixed = load_rows([first, second], CAPTION)
    # Extra columns stay where every source has them with one type (voice); the others are dropped.
    assert len(mixed) == 7 and set(mixed.column_names) == {"image", "text", "voice", "length"}
    assert mixed["voice"][:2] == ["a", "b"]
    assert [t.startswith("b ") for t in mixed["text"][:4]] == [False, True, False, True]  # sources alternate
    assert all(p.startswith(str(tmp_path.resolve())) for p in mixed["image"])  # each resolved in its own folder
    assert TaskDataset(mixed, CAPTION)[1]["target"] == "b a red square"
    with pytest.raises(DataError, match="missing.png"):  # every source is checked as on its own
        load_rows([first, bad_folder(tmp_path / "bad")], CAPTION)
    with pytest.raises(DataError, match="empty"):
        load_rows([], CAPTION)
    images = datasets.Dataset.from_dict({"image": [Image.new("RGB", (8, 8))], "text": ["x"]}).cast_column(
        "image", datasets.Image())
    with pytest.raises(DataError, match="cannot mix"):
        load_rows([first, images], CAPTION)
    from multimodal.streaming import open_stream

    with pytest.raises(DataError, match="one source"):
        open_stream([first, second], CAPTION)


def test_mixture_from_config_and_cli_options(tmp_path):
    from multimodal.config import ConfigError, load_config

    assert load_config(None, ["data.train=[a, b]"]).data.train == ["a", "b"]
    assert load_config(None, ["data.train=a"]).data.train == "a"
    with pytest.raises(ConfigError, match="'data.train' must be str or list"):
        load_config(None, ["data.train=3"])
    from multimodal.cli import _sources, parser

    args = parser().parse_args(["train", "c.yaml", "--train", "x", "--train", "y", "--eval", "z"])
    assert _sources(args.train) == ["x", "y"] and _sources(args.eval) == "z" and _sources(None) is None


def bad_folder(tmp_path):
    folder = image_folder(tmp_path / "img", n=4)
    (folder / "broken.png").write_bytes(b"not a png at all")
    (tmp_path / "outside.png").write_bytes((folder / "img_000.png").read_bytes())
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    rows += [
        {"file_name": "missing.png", "text": "a cat"},
        {"file_name": "broken.png", "text": "a dog"},
        {"file_name": "img_001.png", "text": "  "},
        {"file_name": "../outside.png", "text": "a bird"},
    ]
    write_jsonl(folder / "metadata.jsonl", rows)
    return folder


def test_bad_rows_are_listed_in_one_error(tmp_path):
    with pytest.raises(DataError) as info:
        load_rows(bad_folder(tmp_path), CAPTION)
    message = str(info.value)
    assert "4 bad row(s) of 8" in message
    assert "row 4: file 'missing.png' does not exist" in message
    assert "row 5: file 'broken.png' is unreadable" in message
    assert "row 6: empty 'text'" in message
    assert "row 7: file_name '../outside.png' escapes the folder" in message
    assert "data.on_bad_rows=skip" in message


def test_symlinked_files_out_of_the_folder_are_followed_when_asked(tmp_path):
    corpus = image_folder(tmp_path / "corpus", n=3)
    subset = tmp_path / "subset"  # a subset that links to the corpus's files, as users build one
    subset.mkdir()
    rows = [json.loads(line) for line in (corpus / "metadata.jsonl").read_text().splitlines()][:2]
    for row in rows:
        (subset / row["file_name"]).symlink_to(corpus / row["file_name"])
    write_jsonl(subset / "metadata.jsonl", rows + [{"file_name": "../corpus/img_002.png", "text": "a fish"}])
    with pytest.raises(DataError, match="1 bad row.*row 2: file_name '../corpus/img_002.png' escapes the folder"):
        load_rows(subset, CAPTION, follow_symlinks=True)  # data.follow_symlinks=true (refused by default)
    assert len(load_rows(subset, CAPTION, on_bad_rows="skip", follow_symlinks=True)) == 2


def test_bad_rows_can_be_skipped_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        rows = load_rows(bad_folder(tmp_path), CAPTION, on_bad_rows="skip")
    assert len(rows) == 4 and "skipped" in caplog.text


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "nope", "does not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "has no metadata.jsonl or metadata.csv"),
        (lambda p: (p / "x.txt").write_text("hi") and p / "x.txt", "must be .jsonl, .json or .csv"),
        (lambda p: (p / "t.jsonl").write_text('{"text": "a", "lbl": "b"}\n') and p / "t.jsonl", r"missing column\(s\) \['label'\]"),
        (lambda p: (p / "t.jsonl").write_text('{"text": "a", "label": "b"\n') and p / "t.jsonl", "cannot read data file"),
    ],
)
def test_unusable_sources(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        load_rows(make(tmp_path), CLASSIFY)


def test_cli_reports_bad_data_without_traceback(tmp_path, capsys):
    code = main(["train", "configs/tiny.yaml", "--train", str(bad_folder(tmp_path)), "--output", str(tmp_path / "run"),
                 "data.task=caption"])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "Traceback" not in err and "missing.png" in err
    code = main(["train", "configs/tiny.yaml", "--train", str(tmp_path), "training.bogus=1"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown config key 'training.bogus'" in err and "Traceback" not in err


def test_length_grouped_batches_shard_and_resume():
    lengths = [float(i % 7) for i in range(50)]
    full = LengthGroupedBatches(lengths, 4, seed=3).batches(epoch=0)
    assert sorted(i for b in full for i in b) == list(range(50))  # every example once per epoch
    assert LengthGroupedBatches(lengths, 4, seed=3).batches(epoch=1) != full  # a new order each epoch
    r0, r1 = (LengthGroupedBatches(lengths, 4, seed=3, rank=r, world_size=2).batches(0) for r in (0, 1))
    assert len(r0) == len(r1) and not {i for b in r0 for i in b} & {i for b in r1 for i in b}
    sampler = LengthGroupedBatches(lengths, 4, seed=3)
    sampler.set_epoch(0, start=5)
    assert list(sampler) == full[5:]  # resuming skips exactly the batches already trained
