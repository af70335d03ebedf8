"""The demo's data sets: how each is made under the demo's data dir, shown at work and scored on held-out data.

A `data.mixture` entry of the demo's config picks its set by name (the entry's `name`, else its task):
- `objects`, `voices`, `reviews`, `tweets` (configs/demo.yaml, issue 30): the real data of the shipped models:
  photographed objects composited on scenes (held-out composites of seen objects, and the 7 darknet photos),
  natural voices (held-out speakers and sentences, and a one-minute recording by one of them), Rotten Tomatoes
  snippets (films no training saw) and WNUT-16 tweets. Each is scored for the demo's model and, on the same rows
  with the same decoding, for the shipped single-task model it started from (`single`).
- `caption`, `transcribe`, `classify_head` (configs/multitask_synthetic.yaml, issue 7): drawn scenes, espeak-ng
  speech and emoji names, made in seconds; the tests' tiny demo.

Each set's metrics come as rows {task, set, metric, value, single, single_value, goal, met}: `value` is the
demo model's, `single_value` the shipped model's (None for the synthetic sets).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class DemoData:
    """Sizes of the demo corpora."""

    scenes_train: int
    scenes_eval: int  # new images of training colour/shape combinations
    scenes_heldout: int  # images with colour/shape combinations never seen in training
    image_size: int
    speech_hours: float  # all speech, of which `speech_eval_fraction` is held out (unseen sentences and voices)
    speech_eval_fraction: float
    long_minutes: float  # the long recording transcribed with timestamps
    texts_per_label: int  # emoji names per Unicode group before the train/eval split
    heldout_examples: int  # examples per caption/speech held-out set (0 = all); classification scores all texts
    objects_train: int = 480  # composites of seen objects to fine-tune on
    objects_test: int = 96  # held-out composites of seen objects (the first of objects/test: the same images)
    voices_train_hours: float = 0.08  # natural voices of the training speakers
    voices_test_hours: float = 0.04  # natural voices of the test-only speakers, test-only sentences
    reviews_test: int = 400  # Rotten Tomatoes test snippets scored (0 = all 2,131)


DATA_SIZES = {  # presets: `full` for `make demo`, `small` for tests and notebooks (seconds end to end)
    "full": DemoData(1200, 64, 64, 224, 1.0, 0.05, 1.0, 300, 64),
    "small": DemoData(24, 6, 6, 64, 0.006, 0.3, 0.2, 8, 0, objects_train=16, objects_test=4,
                      voices_train_hours=0.004, voices_test_hours=0.004, reviews_test=16),
}
LONG_SPEAKER = "flite-rms"  # a test-only speaker (tasks.corpora.voices.TEST_ONLY_SPEAKERS) for the long recording
WITHIN = 0.10  # the multi-task model ships when every metric is within 10 % of the single-task model's


@dataclass(frozen=True)
class DemoSet:
    task: str  # the registry task it trains
    train: str  # paths under the data dir
    eval: str
    make: Callable[[Path, DemoData], None]  # writes the set under the data dir
    key: Callable[[DemoData], tuple]  # the sizes it was made with (a stamp: remade when they change)
    show: Callable[..., None]  # (model, data_dir, sizes)
    metrics: Callable[..., list[dict[str, Any]]]  # (model, data_dir, sizes, singles)
    single: str = ""  # the shipped single-task model it is compared with


SYNTHETIC = ("caption", "transcribe", "classify_head")  # a mixture's sets when its config has none (issue 7)


def make_data(data_dir: Path, sizes: DemoData, names: list[str] | tuple[str, ...] = SYNTHETIC) -> None:
    """Write each named set that is not already there with these sizes (a stamp file marks each one done)."""
    for name in names:
        demo_set = SETS[name]
        stamp = data_dir / f".done-{name}"
        key = json.loads(json.dumps(list(demo_set.key(sizes))))
        if stamp.is_file() and json.loads(stamp.read_text()) == key:
            continue
        start = time.perf_counter()
        demo_set.make(data_dir, sizes)
        stamp.write_text(json.dumps(key))
        print(f"  {name}: written in {time.perf_counter() - start:.1f} s")


def row(task: str, split: str, metric: str, value: float, goal: str = "", met: bool | None = None,
        single: str = "", single_value: float | None = None) -> dict[str, Any]:
    return {"task": task, "set": split, "metric": metric, "value": value, "single": single,
            "single_value": single_value, "goal": goal, "met": met}


def within(value: float, single: float | None, lower_is_better: bool) -> bool | None:
    """Whether the demo model's `value` is within WITHIN (relative) of the single-task model's."""
    if single is None:
        return None
    return value <= single * (1 + WITHIN) if lower_is_better else value >= single * (1 - WITHIN)


def _jsonl(path: Path, n: int = 0) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:n] if n else rows


def _rows(folder: Path, n: int = 0) -> list[dict[str, Any]]:
    """A media folder's metadata rows (the first `n`; 0 = all)."""
    return _jsonl(folder / "metadata.jsonl", n)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _speech_decoding() -> dict[str, Any]:
    """speech-en's decoding (CTC beam search in its word list, scored by its 3-gram LM): the demo model keeps the
    CTC head it started from, so both are decoded the same way."""
    from multimodal.shipped import decoding_of

    return decoding_of("speech-en")


# ---------------------------------------------------------------------------------------------------------
# Real data (configs/demo.yaml)


def _make_objects(data_dir: Path, sizes: DemoData) -> None:
    from tasks.corpora.object_sources import ensure_sources
    from tasks.corpora.objects import generate_objects_corpus

    ensure_sources()
    generate_objects_corpus(data_dir / "objects", {"train": sizes.objects_train, "test": sizes.objects_test})


def _show_objects(model, data_dir: Path, sizes: DemoData) -> None:
    from tasks.corpora.object_names import object_named
    from tasks.corpora.object_sources import dev_photos

    photos = dev_photos()
    print("\ncaptions of the darknet photographs (never trained on; ok = names the main object):")
    for photo, result in zip(photos, model.caption([str(p.path) for p in photos])):
        mark = "ok" if any(object_named(result.text, name) for name in photo.main) else "--"
        print(f"  {mark} {photo.path.name}: {result.text!r}")
    folder = data_dir / "objects/test"
    rows = _rows(folder, 3)
    print("captions of held-out composites of seen objects:")
    for r, result in zip(rows, model.caption([str(folder / r["file_name"]) for r in rows])):
        named = all(object_named(result.text, o["name"]) for o in r["objects"])
        print(f"  {'ok' if named else '--'} {r['file_name']}: {result.text!r}\n     reference: {r['text']!r}")


def _object_scores(model, data_dir: Path, sizes: DemoData) -> dict[str, float]:
    from tasks.corpora.object_names import object_named
    from tasks.corpora.object_sources import dev_photos
    from tasks.metrics import cider_d

    folder = data_dir / "objects/test"
    rows = _rows(folder, sizes.objects_test)
    hyps = [c.text for c in model.caption([str(folder / r["file_name"]) for r in rows])]
    flags = [object_named(h, o["name"]) for h, r in zip(hyps, rows) for o in r["objects"]]
    photos = dev_photos()
    photo_hyps = [c.text for c in model.caption([str(p.path) for p in photos])]
    main = sum(any(object_named(h, name) for name in p.main) for p, h in zip(photos, photo_hyps))
    return {"named": sum(flags) / len(flags), "cider": cider_d([r["captions"] for r in rows], hyps), "photos": main}


def _objects_metrics(model, data_dir: Path, sizes: DemoData, singles: dict) -> list[dict[str, Any]]:
    ours, theirs = _object_scores(model, data_dir, sizes), singles["caption-en"](_object_scores)
    what = f"seen objects, {sizes.objects_test} held-out composites"
    return [row("caption", what, "objects named", ours["named"], ">= 90% (issue 28)", ours["named"] >= 0.9,
                "caption-en", theirs["named"]),
            row("caption", what, "CIDEr-D", ours["cider"], single="caption-en", single_value=theirs["cider"]),
            row("caption", "the 7 darknet photographs", "main object named", ours["photos"], ">= 5 of 7 (issue 28)",
                ours["photos"] >= 5, "caption-en", theirs["photos"])]


def _make_voices(data_dir: Path, sizes: DemoData) -> None:
    from tasks.corpora.natural_speech import generate_voice_corpus, long_recording

    hours = sizes.voices_train_hours + sizes.voices_test_hours
    generate_voice_corpus(data_dir / "voices", hours, eval_fraction=0.0, test_fraction=sizes.voices_test_hours / hours)
    long_recording(data_dir / "voices/long.wav", LONG_SPEAKER, sizes.long_minutes)


def _show_voices(model, data_dir: Path, sizes: DemoData) -> None:
    decoding = _speech_decoding()
    folder = data_dir / "voices/test"
    r = _rows(folder, 1)[0]
    result = model.transcribe(str(folder / r["file_name"]), **decoding)
    print(f"\na held-out speaker ({r['voice']}), a sentence no training saw:\n  heard:     {result.text!r}\n"
          f"  reference: {r['text']!r}")
    long = data_dir / "voices/long.wav"
    reference = " ".join(long.with_suffix(".txt").read_text().split("\n"))
    start = time.perf_counter()
    result = model.transcribe(str(long), **decoding)
    seconds = time.perf_counter() - start
    from tasks.metrics import wer

    print(f"\nthe {sizes.long_minutes:g}-minute recording ({LONG_SPEAKER}, a held-out speaker), transcribed in "
          f"{seconds:.1f} s, WER {wer([reference], [result.text]):.2f}:")
    for segment in result.segments:
        print(f"  [{_clock(segment.start_s)} - {_clock(segment.end_s)}] {_short(segment.text, 90)}")


def _voice_scores(model, data_dir: Path, sizes: DemoData) -> dict[str, float]:
    from tasks.metrics import cer, wer

    folder = data_dir / "voices/test"
    rows = _rows(folder)
    hyps = [t.text for t in model.transcribe([str(folder / r["file_name"]) for r in rows], **_speech_decoding())]
    refs = [r["text"] for r in rows]
    return {"wer": wer(refs, hyps), "cer": cer(refs, hyps), "n": len(rows)}


def _voices_metrics(model, data_dir: Path, sizes: DemoData, singles: dict) -> list[dict[str, Any]]:
    ours, theirs = _voice_scores(model, data_dir, sizes), singles["speech-en"](_voice_scores)
    what = f"held-out speakers, {ours['n']} clips"
    return [row("transcribe", what, "WER", ours["wer"], "<= 3% (issue 27)", ours["wer"] <= 0.03, "speech-en",
                theirs["wer"]),
            row("transcribe", what, "CER", ours["cer"], single="speech-en", single_value=theirs["cer"])]


def _make_reviews(data_dir: Path, sizes: DemoData) -> None:
    from tasks.corpora.reviews import write_sentiment_corpus

    write_sentiment_corpus(data_dir / "reviews")


def _show_reviews(model, data_dir: Path, sizes: DemoData) -> None:
    rows = _jsonl(data_dir / "reviews/test.jsonl", 4)
    print("\nsentiment of critics' snippets on films no training saw:")
    for r, p in zip(rows, model.classify([r["text"] for r in rows])):
        mark = "ok" if p.label == r["label"] else "--"
        print(f"  {mark} {p.label} ({p.probabilities[p.label]:.2f}) {_short(r['text'], 80)!r}; true: {r['label']}")
    start = time.perf_counter()
    explanation = model.explain(rows[0]["text"], task="classify")
    print(f"  what the first prediction relied on (integrated gradients, {time.perf_counter() - start:.1f} s; "
          f"green for, red against):\n  {explanation.to_terminal()}")


def _review_scores(model, data_dir: Path, sizes: DemoData) -> dict[str, float]:
    from tasks.metrics import accuracy

    rows = _jsonl(data_dir / "reviews/test.jsonl", sizes.reviews_test)
    labels = [p.label for p in model.classify([r["text"] for r in rows])]
    return {"accuracy": accuracy([r["label"] for r in rows], labels), "n": len(rows)}


def _reviews_metrics(model, data_dir: Path, sizes: DemoData, singles: dict) -> list[dict[str, Any]]:
    ours, theirs = _review_scores(model, data_dir, sizes), singles["sentiment-en"](_review_scores)
    return [row("sentiment", f"Rotten Tomatoes, {ours['n']} test snippets", "accuracy", ours["accuracy"],
                ">= 85% (issue 29)", ours["accuracy"] >= 0.85, "sentiment-en", theirs["accuracy"])]


def _make_tweets(data_dir: Path, sizes: DemoData) -> None:
    from tasks.corpora.wnut import write_wnut_corpus

    write_wnut_corpus(data_dir / "tweets")


def _show_tweets(model, data_dir: Path, sizes: DemoData) -> None:
    rows = [r for r in _jsonl(data_dir / "tweets/test.jsonl") if r["entities"]][:3]
    print("\nentities in held-out tweets:")
    for r, found in zip(rows, model.tag([r["text"] for r in rows])):
        said = ", ".join(f"{e.text!r} {e.label}" for e in found) or "none"
        true = ", ".join(f"{r['text'][e['start']:e['end']]!r} {e['label']}" for e in r["entities"])
        print(f"  {_short(r['text'], 80)!r}\n     found: {said}\n     true:  {true}")


def _tweet_scores(model, data_dir: Path, sizes: DemoData) -> dict[str, float]:
    from multimodal.evaluate import evaluate
    from multimodal.data import load_rows
    from tasks import get_task

    task = get_task("ner")
    rows = load_rows(str(data_dir / "tweets/test.jsonl"), task, split="test")
    return {"f1": evaluate(model, rows, task)["entity_f1"], "n": len(rows)}


def _tweets_metrics(model, data_dir: Path, sizes: DemoData, singles: dict) -> list[dict[str, Any]]:
    ours, theirs = _tweet_scores(model, data_dir, sizes), singles["entities-en"](_tweet_scores)
    return [row("entities", f"WNUT-16, {ours['n']} test tweets", "entity F1", ours["f1"], ">= 50% (issue 29)",
                ours["f1"] >= 0.5, "entities-en", theirs["f1"])]


# ---------------------------------------------------------------------------------------------------------
# Synthetic data (configs/multitask_synthetic.yaml)


def _make_scenes(data_dir: Path, sizes: DemoData) -> None:
    from tasks.corpora.scenes import generate_scenes_corpus

    generate_scenes_corpus(data_dir / "scenes", sizes.scenes_train, sizes.scenes_eval, sizes.scenes_heldout,
                           size=sizes.image_size)


def _make_speech(data_dir: Path, sizes: DemoData) -> None:
    from tasks.corpora.speech import generate_speech_corpus, long_recording

    generate_speech_corpus(data_dir / "speech", sizes.speech_hours, sizes.speech_eval_fraction)
    long_recording(data_dir / "long/recording.wav", sizes.long_minutes)


def _make_emoji(data_dir: Path, sizes: DemoData) -> None:
    from tasks.corpora.text_classes import generate_text_corpus

    generate_text_corpus("emoji", data_dir / "text", max_per_label=sizes.texts_per_label)


def _decoder(model) -> str:
    return model.config.training.eval_decoder


def _show_scenes(model, data_dir: Path, sizes: DemoData) -> None:
    from tasks.corpora.scenes import caption_is_correct

    folder = data_dir / "scenes/heldout"
    rows = _rows(folder, 4)
    print("\ncaptions of held-out images (colour/shape combinations never seen in training):")
    for r, result in zip(rows, model.caption([str(folder / r["file_name"]) for r in rows])):
        mark = "ok" if caption_is_correct(result.text, r["objects"]) else "--"
        print(f"  {mark} {r['file_name']}: {result.text!r}\n     reference: {r['text']!r}")


def _show_speech(model, data_dir: Path, sizes: DemoData) -> None:
    from tasks.metrics import wer

    decoder = _decoder(model)
    folder = data_dir / "speech/eval"
    r = _rows(folder, 1)[0]
    result = model.transcribe(str(folder / r["file_name"]), decoder=decoder)
    print(f"\na held-out recording ({decoder} decoder; unseen sentence and voice):\n  heard:     {result.text!r}\n"
          f"  reference: {r['text']!r}")
    long = data_dir / "long/recording.wav"
    reference = json.loads(long.with_suffix(".json").read_text())
    start = time.perf_counter()
    result = model.transcribe(str(long), decoder=decoder)
    seconds = time.perf_counter() - start
    print(f"\nthe {reference['duration_s']:.0f} s recording ({reference['voice']}), transcribed in {seconds:.1f} s, "
          f"WER {wer([reference['text']], [result.text]):.2f}:")
    for segment in result.segments:
        print(f"  [{_clock(segment.start_s)} - {_clock(segment.end_s)}] {_short(segment.text, 90)}")


def _show_emoji(model, data_dir: Path, sizes: DemoData) -> None:
    rows = _jsonl(data_dir / "text/eval.jsonl", 5)
    print("\ntexts classified (emoji names -> Unicode group):")
    for r, prediction in zip(rows, model.classify([r["text"] for r in rows])):
        mark = "ok" if prediction.label == r["label"] else "--"
        print(f"  {mark} {r['text']!r} -> {prediction.label} ({prediction.probabilities[prediction.label]:.2f}); "
              f"true: {r['label']}")


def caption_metrics(model, data_dir: Path, sizes: DemoData, singles: dict | None = None) -> list[dict[str, Any]]:
    from tasks.corpora.scenes import caption_is_correct
    from tasks.metrics import bleu4, cider_d

    table = []
    for split, what, goal in (("eval", "scenes, new images", 0.95), ("heldout", "scenes, unseen combinations", 0.80)):
        folder = data_dir / "scenes" / split
        rows = _rows(folder, sizes.heldout_examples)
        hyps = [c.text for c in model.caption([str(folder / r["file_name"]) for r in rows])]
        correct = sum(caption_is_correct(h, r["objects"]) for h, r in zip(hyps, rows)) / len(rows)
        table += [row("caption", what, "captions fully correct", correct, f">= {goal:.0%} (issue 5)", correct >= goal),
                  row("caption", what, "CIDEr-D", cider_d([r["captions"] for r in rows], hyps)),
                  row("caption", what, "BLEU-4", bleu4([r["captions"] for r in rows], hyps))]
    return table


def transcribe_metrics(model, data_dir: Path, sizes: DemoData, singles: dict | None = None) -> list[dict[str, Any]]:
    from tasks.metrics import cer, wer

    decoder = _decoder(model)
    folder = data_dir / "speech/eval"
    rows = _rows(folder, sizes.heldout_examples)
    hyps = [t.text for t in model.transcribe([str(folder / r["file_name"]) for r in rows], decoder=decoder)]
    refs = [r["text"] for r in rows]
    what, word_errors = f"unseen sentences and voices ({decoder})", wer(refs, hyps)
    return [row("transcribe", what, "WER", word_errors, "<= 5% (issue 4)", word_errors <= 0.05),
            row("transcribe", what, "CER", cer(refs, hyps))]


def classify_metrics(model, data_dir: Path, sizes: DemoData, singles: dict | None = None) -> list[dict[str, Any]]:
    """Every eval text, whatever the held-out size: classifying is cheap, and on 64 texts one label is 1.6 points."""
    from tasks.metrics import accuracy, macro_f1

    rows = _jsonl(data_dir / "text/eval.jsonl")
    labels, gold = [p.label for p in model.classify([r["text"] for r in rows])], [r["label"] for r in rows]
    return [row("classify", "emoji names, eval split", "accuracy", accuracy(gold, labels), "none set (issue 6)"),
            row("classify", "emoji names, eval split", "macro-F1", macro_f1(gold, labels))]


SETS: dict[str, DemoSet] = {
    "objects": DemoSet("caption", "objects/train", "", _make_objects,
                       lambda s: (s.objects_train, s.objects_test), _show_objects, _objects_metrics, "caption-en"),
    "voices": DemoSet("transcribe", "voices/train", "", _make_voices,
                      lambda s: (s.voices_train_hours, s.voices_test_hours, s.long_minutes), _show_voices,
                      _voices_metrics, "speech-en"),
    "reviews": DemoSet("classify_head", "reviews/train.jsonl", "", _make_reviews, lambda s: (), _show_reviews,
                       _reviews_metrics, "sentiment-en"),
    "tweets": DemoSet("ner", "tweets/train.jsonl", "", _make_tweets, lambda s: (), _show_tweets, _tweets_metrics,
                      "entities-en"),
    "caption": DemoSet("caption", "scenes/train", "scenes/eval", _make_scenes,
                       lambda s: (s.scenes_train, s.scenes_eval, s.scenes_heldout, s.image_size), _show_scenes,
                       caption_metrics),
    "transcribe": DemoSet("transcribe", "speech/train", "speech/eval", _make_speech,
                          lambda s: (s.speech_hours, s.speech_eval_fraction, s.long_minutes), _show_speech,
                          transcribe_metrics),
    "classify_head": DemoSet("classify_head", "text/train.jsonl", "text/eval.jsonl", _make_emoji,
                             lambda s: (s.texts_per_label,), _show_emoji, classify_metrics),
}
