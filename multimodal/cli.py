"""The `multimodal` command: a thin layer that parses arguments and calls the library."""

from __future__ import annotations

import argparse
import logging
import os
import sys

USER_ERRORS = (ValueError, FileNotFoundError, OSError)  # bad input: one clear line, no traceback
LEXICON_HELP = ("with --decoder ctc: a word list (text file, or a metadata.jsonl whose \"text\" fields give the words); "
                "the CTC output is read by a beam search that writes only these words")
RESCORE_HELP = "with --lexicon: the model's backbone LM re-ranks the search's 20 best (slower, fewer word errors)"
MODEL_HELP = "a shipped model's name (`multimodal models`), a checkpoint dir or a run dir (its best/)"
LM_HELP = "with --lexicon: a word n-gram LM (ARPA or KenLM binary, e.g. from `multimodal ngram`) in that search"


def _build(args: argparse.Namespace) -> None:
    import multimodal as mm
    from multimodal.trainable import count_parameters

    model = mm.build(args.config, args.overrides)
    total, trainable = count_parameters(model)
    path = model.save(args.output, adapter_only=args.adapter_only)
    print(f"saved {path} ({total:,} parameters, {trainable:,} trainable)")


def _train(args: argparse.Namespace) -> None:
    from multimodal.config import load_config
    from multimodal.train import train

    overrides = list(args.overrides)
    if args.max_steps is not None:
        overrides += [f"training.max_steps={args.max_steps}", "training.epochs=0"]  # a step count, not passes
    config = load_config(args.config, overrides)
    summary = train(config, args.output, train_data=_sources(args.train), eval_data=_sources(args.eval),
                    resume=args.resume)
    print(f"trained {summary['steps']} steps; checkpoints in {summary['output']}/last (and best/ when evaluated)")
    if summary["eval"]:
        _print_metrics(summary["eval"], "table")


def _sources(paths: list[str] | None) -> str | list[str] | None:
    """A repeated --train/--eval option: one path, or a list of them (a mixture)."""
    return paths[0] if paths and len(paths) == 1 else paths


def _evaluate(args: argparse.Namespace) -> None:
    import multimodal as mm
    from multimodal.data import load_rows
    from multimodal.evaluate import evaluate
    from multimodal.resolve import decoding_settings
    from tasks import get_task

    model = mm.load(args.model)
    task = get_task(args.task or _model_task(model, args.model))
    rows = load_rows(args.data, task, "skip" if args.skip_bad_rows else "error", split=args.split,
                     follow_symlinks=args.follow_symlinks)
    settings = decoding_settings(model, task.name, decoder=args.decoder, lexicon=args.lexicon, lm=args.lm,
                                 rescore=args.rescore)
    metrics = evaluate(model, rows, task, batch_size=args.batch_size, max_examples=args.max_examples, progress=True,
                       intervals=args.intervals, **settings)
    _print_metrics(metrics, args.format)


def _model_task(model, given: str) -> str:
    """The task a model was trained on (its config's data.task), for `evaluate` without --task."""
    task = model.config.data.task
    if not task or model.config.data.mixture:
        raise ValueError(f"--task is needed: model '{given}' was trained on {'a mixture' if task else 'no single task'}")
    return task


def _print_metrics(metrics: dict, fmt: str) -> None:
    import json

    shown = {k: v for k, v in metrics.items() if k != "outputs"}
    if fmt == "json":
        print(json.dumps(shown))
        return
    width = max(len(k) for k in shown)
    print(f"{'metric':<{width}}  value")
    for k, v in shown.items():
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")


def _transcribe(args: argparse.Namespace) -> int:
    import json

    import multimodal as mm
    from multimodal.resolve import decoding_settings
    from multimodal.transcribe import transcribe, write_transcript
    from tasks.subtitles import to_json

    if args.format in ("srt", "vtt") and not args.output_dir:
        args.output_dir = "."
    model = mm.load(args.model, task="transcribe")
    settings = decoding_settings(model, "transcribe", decoder=args.decoder, lexicon=args.lexicon, lm=args.lm,
                                 rescore=args.rescore)
    failed = 0
    for result in transcribe(model, args.files, batch_size=args.batch_size, word_timestamps=args.word_timestamps,
                             **settings):
        if result.error:
            failed += 1
            print(f"multimodal transcribe: skipped {result.error}", file=sys.stderr)
            continue
        if result.warning:  # transcribed, but the file was not what it claimed: say so, and exit non-zero
            failed += 1
            print(f"multimodal transcribe: warning: {result.warning}", file=sys.stderr)
        if args.format == "json":
            print(json.dumps(to_json(result.segments, result.file), ensure_ascii=False))
        elif args.format == "txt":
            print(result.text if len(args.files) == 1 else f"{result.file}\t{result.text}")
        if args.output_dir:
            path = write_transcript(result, args.output_dir, args.format)
            if args.format in ("srt", "vtt"):
                print(path)
    return 1 if failed else 0


def _caption(args: argparse.Namespace) -> int:
    import json

    import multimodal as mm
    from multimodal.caption import caption
    from multimodal.resolve import decoding_settings

    model = mm.load(args.model, task="caption")
    settings = decoding_settings(model, "caption", num_beams=args.beams, max_new_tokens=args.max_new_tokens)
    failed, captioned = 0, []
    for n, result in enumerate(caption(model, args.files, batch_size=args.batch_size, progress=False, **settings)):
        if result.error:
            failed += 1
            print(f"multimodal caption: skipped {result.error}", file=sys.stderr)
            continue
        captioned.append((n, result))
        if args.format == "json":
            print(json.dumps({"file": result.file, "text": result.text}, ensure_ascii=False))
        else:
            print(result.text if len(args.files) == 1 else f"{result.file}\t{result.text}")
    if args.explain and captioned:  # each caption word's heat map over the image, for the captions just printed
        explanations = model.explain([args.files[n] for n, _ in captioned], task="caption",
                                     target=[r.text for _, r in captioned])
        _show_explanations(explanations, args.explain, args.format, [str(n) for n, _ in captioned])
    return 1 if failed else 0


def _input_texts(args: argparse.Namespace) -> list[str]:
    from tasks.text_files import read_texts

    if bool(args.texts) == bool(args.file):
        raise ValueError("give the texts as arguments or --file F, one of the two")
    return list(args.texts) if args.texts else read_texts(args.file)


def _show_explanations(explanations: list, directory: str, fmt: str, stems: list[str] | None = None) -> None:
    """Highlighted text on the terminal (stderr when stdout carries JSON), DIR/<n>.html and DIR/<n>.png per input."""
    from multimodal.explanations import save_all, use_color

    stream = sys.stderr if fmt == "json" else sys.stdout
    for explanation in explanations:
        print(explanation.to_terminal(use_color(stream)), file=stream)
    pages = save_all(explanations, directory, stems)
    print(f"wrote {len(pages)} explanation(s) to {directory}/: <n>.html and <n>.png per input n (0 = the first)",
          file=stream)


def _classify(args: argparse.Namespace) -> None:
    import multimodal as mm
    from multimodal.classify import ZERO_SHOT_DEFAULT, format_predictions
    from tasks.text_files import read_shots

    texts = _input_texts(args)
    labels = [label.strip() for label in args.labels.split(",")] if args.labels else None
    if args.shots and labels is None:
        raise ValueError("--shots needs --labels (the candidates scored by the LM)")
    shots = read_shots(args.shots) if args.shots else None
    if args.explain and labels is not None:
        raise ValueError("--explain explains a trained head's labels; it does not go with --labels (zero-/few-shot)")
    if labels is not None:  # label likelihood: any causal LM, or a checkpoint with one
        model = mm.load(args.model or ZERO_SHOT_DEFAULT, backbone_ok=True)
    else:  # a trained head: the given model, or the default shipped classifier
        model = mm.load(args.model, task="classify")
    print(format_predictions(model.classify(texts, labels=labels, shots=shots, batch_size=args.batch_size), args.format))
    if args.explain:
        _show_explanations(model.explain(texts, task="classify"), args.explain, args.format)


def _tag(args: argparse.Namespace) -> None:
    import multimodal as mm
    from multimodal.tag import format_entities

    texts = _input_texts(args)
    model = mm.load(args.model, task="tag")
    print(format_entities(texts, model.tag(texts, batch_size=args.batch_size), args.format))
    if args.explain:
        _show_explanations(model.explain(texts, task="tag"), args.explain, args.format)


def _data(args: argparse.Namespace) -> None:
    from pathlib import Path

    if args.corpus == "speech" and args.voices == "natural":
        from tasks.corpora.natural_speech import generate_voice_corpus
        from tasks.corpora.voices import ENGINES

        engines = [e.strip() for e in args.engines.split(",") if e.strip()] if args.engines else list(ENGINES)
        summary = generate_voice_corpus(Path(args.out), args.hours, eval_fraction=args.eval_fraction, seed=args.seed,
                                        engines=engines, test_fraction=args.test_fraction)
        for split in ("train", "eval", "test"):
            if split in summary:
                print(f"{split}: {summary[split]['utterances']} utterances, {summary[split]['hours']:.2f} h in {args.out}/{split} ("
                      + ", ".join(f"{e} {v['utterances']} / {v['hours']:.2f} h" for e, v in summary[split]["engines"].items()) + ")")
        print("eval-only speakers: " + ", ".join(summary["speakers"]["eval_only"]))
        if "test" in summary:
            print("test-only speakers: " + ", ".join(summary["speakers"]["test_only"]))
    elif args.corpus == "speech":
        if args.engines or args.test_fraction:
            raise ValueError("--engines and --test-fraction go with --voices natural")
        from tasks.corpora.speech import generate_speech_corpus

        summary = generate_speech_corpus(Path(args.out), args.hours, eval_fraction=args.eval_fraction, seed=args.seed)
        for split in ("train", "eval"):
            print(f"{split}: {summary[split]['utterances']} utterances, {summary[split]['hours']:.2f} h in {args.out}/{split}")
    elif args.corpus == "scenes":
        from tasks.corpora.scenes import generate_scenes_corpus

        summary = generate_scenes_corpus(Path(args.out), args.train, args.eval, args.heldout, seed=args.seed, size=args.size,
                                         object_order=args.object_order)
        print(f"wrote {args.out}/train, eval, heldout: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    elif args.corpus == "emoji":
        from tasks.corpora.emoji import generate_emoji_corpus

        summary = generate_emoji_corpus(Path(args.out), args.train, args.eval, args.heldout, seed=args.seed,
                                        size=args.size, include_variants=args.variants)
        print(f"wrote {args.out}/train, eval, heldout: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    elif args.corpus == "objects":
        from tasks.corpora.objects import generate_objects_corpus

        counts = {"train": args.train, "eval": args.eval, "test": args.test, "heldout": args.heldout,
                  "test_unseen": args.test_unseen}
        summary = generate_objects_corpus(Path(args.out), counts, seed=args.seed, size=args.size)
        print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in summary["images"].items()) + " images")
        print("object names: " + ", ".join(f"{k} {v}" for k, v in summary["names"].items()) + f" ({args.out}/names.json); "
              + "images: " + ", ".join(f"{k} {v}" for k, v in summary["object_images"].items())
              + f"; photo backgrounds: {summary['photo_backgrounds']}")
    elif args.corpus == "text-classify":
        from tasks.corpora.text_classes import generate_text_corpus

        summary = generate_text_corpus(args.source, Path(args.out), args.eval_fraction, args.max_per_label)
        for split, counts in summary.items():
            print(f"{args.out}/{split}.jsonl: {sum(counts.values())} rows, " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    elif args.corpus == "ner":
        from tasks.corpora.ner_sentences import generate_ner_corpus

        summary = generate_ner_corpus(Path(args.out), args.train, args.eval, seed=args.seed)
        print(f"wrote {args.out}/train.jsonl ({summary['train']} sentences) and eval.jsonl ({summary['eval']}, held-out templates)")
    elif args.corpus == "sentiment":
        from tasks.corpora.reviews import write_sentiment_corpus

        summary = write_sentiment_corpus(args.out, args.test_fraction, args.eval_fraction)
        for split, counts in summary.items():
            print(f"{args.out}/{split}.jsonl: {sum(counts.values())} rows, " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    elif args.corpus == "amazon":
        from tasks.corpora.amazon_reviews import write_amazon_corpus

        summary = write_amazon_corpus(args.out, args.eval_fraction)
        for split, counts in summary.items():
            print(f"{args.out}/{split}.jsonl: {sum(counts.values())} rows, " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    elif args.corpus == "wnut":
        from tasks.corpora.wnut import write_wnut_corpus

        summary = write_wnut_corpus(args.out, args.test_fraction, args.eval_fraction)
        for split, info in summary.items():
            print(f"{args.out}/{split}.jsonl: {info['tweets']} tweets, {sum(info['types'].values())} entities ("
                  + ", ".join(f"{k} {v}" for k, v in info["types"].most_common()) + ")")
    elif args.corpus == "long-speech":
        from tasks.corpora.speech import long_recording

        info = long_recording(Path(args.out), args.minutes, seed=args.seed)
        print(f"wrote {args.out} ({info['duration_s'] / 60:.1f} min) and its reference transcript next to it")


def _ngram(args: argparse.Namespace) -> None:
    from pathlib import Path

    from tasks.text_files import read_texts
    from tasks.ngram_lm import common_words, write_arpa

    texts = [text for source in args.texts for text in read_texts(source)]
    prior = common_words(args.common_words) if args.common_words else None
    counts = write_arpa(texts, args.out, order=args.order, prior=prior)
    print(f"wrote {args.out}: " + ", ".join(f"{n:,} {k}-grams" for k, n in counts.items()))
    if args.words_out:  # the lexicon that goes with it: the transcripts (for running-speech forms) and the common words
        out = Path(args.words_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_name(out.name + ".tmp").write_text("".join(f"{t}\n" for t in [*texts, *(prior or {})]), encoding="utf-8")
        os.replace(out.with_name(out.name + ".tmp"), out)
        print(f"wrote {args.words_out}: a word list for transcribe --lexicon")


def _models(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    from multimodal.shipped import BUDGET_BYTES, SHIPPED_DIR, describe, total_weight_bytes

    root = Path(args.root) if args.root else SHIPPED_DIR
    if args.root and not root.is_dir():
        raise FileNotFoundError(f"--root '{root}' is not a folder")
    rows = describe(root)
    if args.format == "json":
        print("\n".join(json.dumps(r) for r in rows))
        return
    if not rows:
        print("no shipped models")
        return
    print(f"{'name':<14} {'task':<14} {'default for':<12} {'weights':>9}  headline (test split, 95 % interval)")
    for r in rows:
        print(f"{r['name']:<14} {r['task']:<14} {r['default_for'] or '-':<12} {r['weights_mb']:>6.2f} MB  {r['metric']}")
    print(f"{len(rows)} model(s), {total_weight_bytes(root) / 1e6:.2f} MB of weights (budget {BUDGET_BYTES / 1e6:.0f} MB); "
          f"cards: {root}/NAME/README.md")


def _ship(args: argparse.Namespace) -> None:
    import shlex
    from pathlib import Path

    import yaml

    from multimodal.shipped import ship

    decoding = {}
    for item in args.decoding:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--decoding {item!r}: write KEY=VALUE, e.g. num_beams=3")
        decoding[key] = yaml.safe_load(value)
    command = " ".join(["multimodal ship", shlex.quote(args.checkpoint), "--name", shlex.quote(args.name), "--test",
                        shlex.quote(args.test), *(f"--decoding {shlex.quote(d)}" for d in args.decoding),
                        *(f"--set {shlex.quote(s)}" for s in args.set)])
    m = ship(args.checkpoint, args.name, args.test, card=args.card, decoding=decoding, force=args.force,
             batch_size=args.batch_size, command=command, settings=args.set,
             **({"root": Path(args.root)} if args.root else {}))
    h = m.headline
    print(f"shipped '{m.name}' ({m.weight_bytes / 1e6:.2f} MB of weights): {h['metric']} {h['value']:.4f} "
          f"[{h['low']:.4f}, {h['high']:.4f}] on {h['n_examples']} test examples")


def _fit_tags(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    import multimodal as mm
    from multimodal.object_tags import FitConfig, fit_object_head

    if args.epochs < 1 or (args.top is not None and args.top < 1) or not 0.0 <= (args.threshold or 0.0) <= 1.0:
        raise ValueError(f"fit-tags: --epochs ({args.epochs}) and --top ({args.top}) must be 1 or more, --threshold "
                         f"({args.threshold}) a probability from 0 to 1")
    model = mm.load(args.model) if not args.model.endswith((".yaml", ".yml")) else mm.build(args.model)
    if args.top is not None:
        model.config.encoders.image.object_tags = args.top
    if args.threshold is not None:
        model.config.encoders.image.object_tag_threshold = args.threshold
    report = fit_object_head(model, args.train, args.eval, FitConfig(epochs=args.epochs))
    path = model.save(args.output, adapter_only=True)
    print(f"object head: {report.names} names from {report.train_images} images, fitted in {report.seconds:.0f} s; "
          f"saved {path}")
    if report.eval_images:
        r = asdict(report)
        print("  ".join(f"{k} {r[k]:.3f}" for k in ("eval_recall_top_k", "eval_recall_tagged", "eval_precision_tagged"))
              + f" on {report.eval_images} evaluation images")


def _demo(args: argparse.Namespace) -> None:
    from multimodal.demo import run

    run(args.config, args.output, max_steps=args.max_steps, data=args.data, overrides=args.overrides)


def _serve(args: argparse.Namespace) -> None:
    from multimodal.serve import serve

    serve(args.model, host=args.host, port=args.port)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="multimodal",
        description="Text, images and audio through one architecture: encoders -> adapters -> a pretrained LM.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show library logs and full tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="build a model from a YAML config and save it as a checkpoint")
    b.add_argument("config", help="YAML config, e.g. configs/default.yaml")
    b.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    b.add_argument("--output", required=True, help="checkpoint dir to write")
    b.add_argument("--adapter-only", action="store_true", help="store only what is not a pretrained weight")
    b.set_defaults(func=_build)

    t = sub.add_parser("train", help="train (or fine-tune) a model from a YAML config")
    t.add_argument("config", help="YAML config, e.g. configs/tiny.yaml")
    t.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    t.add_argument("--train", action="append", help="training data: media folder with metadata.jsonl/csv, "
                   "JSONL/CSV file, saved dataset; repeat to train on a mixture")
    t.add_argument("--eval", action="append", help="evaluation data, same formats; repeat to pool several")
    t.add_argument("--output", default="runs/train", help="run dir: last/, best/, metrics.jsonl, curves.png (default: %(default)s)")
    t.add_argument("--max-steps", type=int,
                   help="optimizer steps (overrides training.max_steps, and training.epochs of an epoch-counted recipe)")
    t.add_argument("--resume", action="store_true", help="continue the run in --output exactly where it stopped")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="score a checkpoint on a dataset with the task's metrics")
    e.add_argument("--model", required=True, help=MODEL_HELP)
    e.add_argument("--task", help="task name: caption, transcribe, classify, classify_head, ner "
                   "(default: the one the model was trained on)")
    e.add_argument("--data", required=True, help="evaluation data (same formats as train)")
    e.add_argument("--split", default="validation", help="the split of a DatasetDict or saved dataset (default: %(default)s)")
    e.add_argument("--intervals", action="store_true", help="95 %% bootstrap interval of each metric (1,000 resamples)")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--max-examples", type=int, default=0, help="0 = all")
    e.add_argument("--skip-bad-rows", action="store_true", help="warn about bad rows and leave them out")
    e.add_argument("--follow-symlinks", action="store_true",
                   help="accept files that are symlinks to files outside the data folder (refused by default)")
    e.add_argument("--format", choices=["table", "json"], default="table")
    e.add_argument("--decoder", choices=["lm", "ctc"], help="transcribe: LM generation or CTC head (default: the "
                   "model's shipped setting, else lm)")
    e.add_argument("--lexicon", help=LEXICON_HELP)
    e.add_argument("--lm", help=LM_HELP)
    e.add_argument("--rescore", action="store_true", help=RESCORE_HELP)
    e.set_defaults(func=_evaluate)

    tr = sub.add_parser("transcribe", help="transcribe audio files of any length (any format ffmpeg reads)")
    tr.add_argument("files", nargs="+", help="audio files")
    tr.add_argument("--model", help=MODEL_HELP + " (default: the shipped speech model)")
    tr.add_argument("--format", choices=["txt", "json", "srt", "vtt"], default="txt")
    tr.add_argument("--output-dir", help="also write FILE_STEM.FORMAT here (srt/vtt: default the current dir)")
    tr.add_argument("--decoder", choices=["lm", "ctc"], help="LM generation, or the fast CTC head (default: the "
                    "model's shipped setting, else lm)")
    tr.add_argument("--lexicon", help=LEXICON_HELP)
    tr.add_argument("--lm", help=LM_HELP)
    tr.add_argument("--rescore", action="store_true", help=RESCORE_HELP)
    tr.add_argument("--word-timestamps", action="store_true",
                    help="each word's start and end (json output), from the CTC head's alignment of the transcript")
    tr.add_argument("--batch-size", type=int, default=8, help="windows decoded together")
    tr.set_defaults(func=_transcribe)

    ca = sub.add_parser("caption", help="caption image files (any format Pillow reads)")
    ca.add_argument("files", nargs="+", help="image files")
    ca.add_argument("--model", help=MODEL_HELP + " (default: the shipped captioner)")
    ca.add_argument("--format", choices=["txt", "json"], default="txt", help="json: one {file, text} object per line")
    ca.add_argument("--beams", type=int, help="beam width; 1 = greedy (default: the model's shipped setting, else 1)")
    ca.add_argument("--batch-size", type=int, default=8, help="images captioned together")
    ca.add_argument("--max-new-tokens", type=int, help="longest caption in tokens (default: the caption task's)")
    ca.add_argument("--explain", nargs="?", const="explanations", metavar="DIR",
                    help="also show where in the image each caption word looked: DIR/<n>.html and .png per image "
                         "(default DIR: explanations)")
    ca.set_defaults(func=_caption)

    cl = sub.add_parser("classify", help="label texts with a trained head, or zero-/few-shot with --labels")
    cl.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify (or --file)")
    cl.add_argument("--file", help="JSONL/JSON/CSV with a `text` column, or plain text with one text per line")
    cl.add_argument("--model", help=MODEL_HELP + "; with --labels also a causal LM name (default: the shipped "
                    "sentiment model; with --labels smollm2-135m-instruct)")
    cl.add_argument("--labels", help="comma-separated candidate labels, scored by the LM's likelihood (no training)")
    cl.add_argument("--shots", help="JSONL/CSV of `text,label` in-context examples for --labels (few-shot)")
    cl.add_argument("--format", choices=["table", "json"], default="table", help="json: one object per input, in order")
    cl.add_argument("--batch-size", type=int, default=16)
    cl.add_argument("--explain", nargs="?", const="explanations", metavar="DIR",
                    help="also show which words the label relied on (integrated gradients), highlighted, and write "
                         "DIR/<n>.html and .png per text (default DIR: explanations)")
    cl.set_defaults(func=_classify)

    tg = sub.add_parser("tag", help="find named entities (spans with character offsets) with a trained tagger")
    tg.add_argument("texts", nargs="*", metavar="TEXT", help="texts to tag (or --file)")
    tg.add_argument("--file", help="JSONL/JSON/CSV with a `text` column, or plain text with one text per line")
    tg.add_argument("--model", help=MODEL_HELP + " trained with data.task=ner (default: the shipped tagger)")
    tg.add_argument("--format", choices=["table", "json"], default="table", help="json: one object per input, in order")
    tg.add_argument("--batch-size", type=int, default=16)
    tg.add_argument("--explain", nargs="?", const="explanations", metavar="DIR",
                    help="also show which words each entity's tags relied on, and write DIR/<n>.html and .png per "
                         "text (default DIR: explanations)")
    tg.set_defaults(func=_tag)

    m = sub.add_parser("models", help="list the shipped models (name, task, size, headline test metric)")
    m.add_argument("--format", choices=["table", "json"], default="table")
    m.add_argument("--root", help="a folder of shipped models to list instead of the package's (e.g. a rebuild's)")
    m.set_defaults(func=_models)

    sh = sub.add_parser("ship", help="store a trained checkpoint as a shipped model (bf16, scored on the test split)")
    sh.add_argument("checkpoint", help="checkpoint dir or run dir (its best/)")
    sh.add_argument("--name", required=True, help="the shipped model's name, e.g. sentiment-en")
    sh.add_argument("--test", required=True, help="the test split (same formats as train): the card's headline figure")
    sh.add_argument("--card", help="model card (Markdown) to ship with it (default: keep the current one)")
    sh.add_argument("--decoding", action="append", default=[], metavar="KEY=VALUE",
                    help="a decoding setting the figures need, e.g. num_beams=3 or decoder=ctc (repeatable)")
    sh.add_argument("--root", help="write into this folder instead of the package's shipped models (a rebuild)")
    sh.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config setting the shipped model keeps, read at run time (repeatable), e.g. "
                         "encoders.image.tag_words=everyday; one that changes the weights is refused")
    sh.add_argument("--force", action="store_true", help="replace the model even if the new one scores lower")
    sh.add_argument("--batch-size", type=int, default=16)
    sh.set_defaults(func=_ship)

    ft = sub.add_parser("fit-tags", help="fit an image encoder's object-name head on folders whose metadata rows list "
                        "their objects; the LM reads its names as tags")
    ft.add_argument("model", help=MODEL_HELP + ", or a YAML config to build one from")
    ft.add_argument("--train", action="append", required=True, help="media folder whose metadata.jsonl rows list "
                    '"objects": [{"name": ...}] (repeatable)')
    ft.add_argument("--eval", action="append", help="folder(s) of the same kind, scored after fitting")
    ft.add_argument("--output", required=True, help="checkpoint dir to write (the model with its new head)")
    ft.add_argument("--epochs", type=int, default=20, help="passes over the training images (default: %(default)s)")
    ft.add_argument("--top", type=int, help="most names the head gives an image as tags (default: the model's, else 3)")
    ft.add_argument("--threshold", type=float, help="probability a name needs to be a tag (default: the model's, 0.5)")
    ft.set_defaults(func=_fit_tags)

    g = sub.add_parser("data", help="generate a development corpus (offline)")
    gsub = g.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    sp = gsub.add_parser("speech", help="synthetic speech with exact transcripts, as an audiofolder (train/ eval/)")
    sp.add_argument("--out", required=True, help="output dir")
    sp.add_argument("--hours", type=float, default=1.0, help="hours of speech, eval included (default: %(default)s)")
    sp.add_argument("--eval-fraction", type=float, default=0.05)
    sp.add_argument("--test-fraction", type=float, default=0.0,
                    help="with --voices natural: the share written to OUT/test, spoken only by test-only speakers "
                         "(default: %(default)s)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--voices", choices=("espeak", "natural"), default="espeak",
                    help="espeak: espeak-ng voices only; natural: flite, festival, hibari, Piper, Kokoro and espeak-ng "
                         "speakers in real rooms (tasks/corpora/natural_speech.py) (default: %(default)s)")
    sp.add_argument("--engines", help="with --voices natural: comma list from espeak,flite,festival,hibari,piper,kokoro "
                                      "(default: all)")
    lsp = gsub.add_parser("long-speech", help="one long recording of held-out sentences + its timed transcript")
    lsp.add_argument("--out", required=True, help="output .wav path")
    lsp.add_argument("--minutes", type=float, default=10.0)
    lsp.add_argument("--seed", type=int, default=0)
    sc = gsub.add_parser("scenes", help="drawn scenes captioned from the scene, with held-out colour/shape combos")
    sc.add_argument("--out", required=True, help="output dir (train/ eval/ heldout/ imagefolders)")
    sc.add_argument("--train", type=int, default=2000, help="training images (default: %(default)s)")
    sc.add_argument("--eval", type=int, default=200)
    sc.add_argument("--heldout", type=int, default=200, help="images with held-out colour/shape combinations")
    sc.add_argument("--size", type=int, default=224, help="image side in pixels")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--object-order", choices=("random", "reading"), default="random",
                    help="order captions list the groups in: random, or reading order of the grid (default: %(default)s)")
    em = gsub.add_parser("emoji", help="Noto colour emoji, augmented 1-3 per image, captioned from their names")
    em.add_argument("--out", required=True, help="output dir (train/ eval/ heldout/ imagefolders)")
    em.add_argument("--train", type=int, default=2000, help="training images (default: %(default)s)")
    em.add_argument("--eval", type=int, default=200, help="images of training emoji, newly drawn")
    em.add_argument("--heldout", type=int, default=200, help="images each showing one held-out emoji")
    em.add_argument("--size", type=int, default=224, help="image side in pixels")
    em.add_argument("--seed", type=int, default=0)
    em.add_argument("--variants", action="store_true", help="include skin-tone and hair-style variants")
    ob = gsub.add_parser("objects", help="stamps and clip art composited 1-3 per image on photos and textures, captioned "
                                         "by name; unpacks its Debian packages into the cache the first time")
    ob.add_argument("--out", required=True, help="output dir (train/ eval/ test/ heldout/ test_unseen/ imagefolders)")
    ob.add_argument("--train", type=int, default=8000, help="images of seen objects (default: %(default)s)")
    ob.add_argument("--eval", type=int, default=300, help="images of seen objects, newly composited (default: %(default)s)")
    ob.add_argument("--test", type=int, default=500, help="images of seen objects for the test split (default: %(default)s)")
    ob.add_argument("--heldout", type=int, default=300,
                    help="images of held-out objects for development (default: %(default)s)")
    ob.add_argument("--test-unseen", type=int, default=500,
                    help="images of other held-out objects, on which no choice is made (default: %(default)s)")
    ob.add_argument("--size", type=int, default=224, help="image side in pixels")
    ob.add_argument("--seed", type=int, default=0)
    tc = gsub.add_parser("text-classify", help="text,label JSONL: emoji names -> Unicode group, or fortunes -> topic")
    tc.add_argument("--corpus", dest="source", choices=["emoji", "fortunes"], required=True)
    tc.add_argument("--out", required=True, help="output dir (train.jsonl, eval.jsonl)")
    tc.add_argument("--eval-fraction", type=float, default=0.15, help="per label (default: %(default)s)")
    tc.add_argument("--max-per-label", type=int, default=300, help="cap per label before the split; 0 = all (default: %(default)s)")
    ner = gsub.add_parser("ner", help="Faker sentences with PER/LOC/ORG/DATE entities; eval from held-out templates")
    ner.add_argument("--out", required=True, help="output dir (train.jsonl, eval.jsonl)")
    ner.add_argument("--train", type=int, default=2000, help="training sentences (default: %(default)s)")
    ner.add_argument("--eval", type=int, default=500, help="sentences from held-out templates (default: %(default)s)")
    ner.add_argument("--seed", type=int, default=0)
    se = gsub.add_parser("sentiment", help="Rotten Tomatoes critic snippets, positive / negative, split by film")
    se.add_argument("--out", required=True, help="output dir (train.jsonl, eval.jsonl, test.jsonl)")
    se.add_argument("--test-fraction", type=float, default=0.15, help="share of films in test (default: %(default)s)")
    se.add_argument("--eval-fraction", type=float, default=0.1, help="share of the other films in eval (default: %(default)s)")
    am = gsub.add_parser("amazon", help="Amazon Fine Food reviews, great (5 stars) / other, with the set's own test split; "
                                        "unpacks Debian r-cran-modeldata into the cache the first time")
    am.add_argument("--out", required=True, help="output dir (train.jsonl, eval.jsonl, test.jsonl)")
    am.add_argument("--eval-fraction", type=float, default=0.1,
                    help="share of the training reviews in eval, by text hash (default: %(default)s)")
    wn = gsub.add_parser("wnut", help="WNUT-16 tweets with 10 entity types (text + entities, tokens + tags), split by tweet")
    wn.add_argument("--out", required=True, help="output dir (train.jsonl, eval.jsonl, test.jsonl)")
    wn.add_argument("--test-fraction", type=float, default=0.1, help="share of tweets in test (default: %(default)s)")
    wn.add_argument("--eval-fraction", type=float, default=0.1, help="share of tweets in eval (default: %(default)s)")
    g.set_defaults(func=_data)

    ng = sub.add_parser("ngram", help="estimate a word n-gram LM (ARPA) from transcripts, for transcribe --lm")
    ng.add_argument("texts", nargs="+", help="text files (one sentence a line), or JSONL / JSON / CSV with a `text` column (e.g. metadata.jsonl)")
    ng.add_argument("--out", required=True, help="ARPA file to write, e.g. runs/words.arpa")
    ng.add_argument("--order", type=int, default=3, help="n of the n-grams (default: %(default)s)")
    ng.add_argument("--common-words", type=int, default=0, metavar="N",
                    help="give the N most common English words (wordfreq) a unigram probability by their frequency, "
                         "so the search can write words the transcripts lack (e.g. 100000; default: off)")
    ng.add_argument("--words-out", help="also write the lexicon to search with: the transcripts and the common words")
    ng.set_defaults(func=_ngram)

    d = sub.add_parser("demo", help="fine-tune one multi-task model from the shipped ones (or reuse it), show it at "
                       "work and score it beside them")
    d.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    d.add_argument("--config", default="configs/demo.yaml", help="YAML config (default: %(default)s; "
                   "configs/multitask_synthetic.yaml trains issue 7's synthetic-data model from scratch)")
    d.add_argument("--output", default="runs/demo", help="run dir; its data/ holds the demo corpora (default: %(default)s)")
    d.add_argument("--max-steps", type=int, help="optimizer steps (overrides training.max_steps)")
    d.add_argument("--data", choices=["full", "small"], default="full",
                   help="corpus sizes: full (make demo) or small (seconds; tests and notebooks)")
    d.set_defaults(func=_demo)

    sv = sub.add_parser("serve", help="a web page with one tab per task (caption, transcribe, text), offline")
    sv.add_argument("--model", help=MODEL_HELP + " (default: auto, each task's shipped model; the page's picker "
                    "changes it)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    sv.add_argument("--port", type=int, default=7860, help="(default: %(default)s)")
    sv.set_defaults(func=_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)  # overrides may come after the options too
    if extra and (not hasattr(args, "overrides") or any(x.startswith("-") or "=" not in x for x in extra)):
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    failure = ""
    try:
        code = args.func(args)
    except USER_ERRORS as e:
        if args.verbose:
            raise
        failure, code = f"error: {e}", 2
    except KeyboardInterrupt:
        failure, code = "interrupted" + _how_to_resume(args), 130
    if failure:  # said after the except block: by then the command's progress bar has closed, above this line
        print(f"multimodal {args.command}: {failure}", file=sys.stderr)
    return code or 0


def _how_to_resume(args: argparse.Namespace) -> str:
    """For an interrupted `train`: where its last checkpoint is and how to continue from it."""
    from pathlib import Path

    from multimodal.checkpoint import recover

    if args.command != "train":
        return ""
    if not recover(Path(args.output) / "last").exists():
        return f"; nothing was saved in '{args.output}' yet"
    return f"; '{args.output}/last' holds the last step saved: run the same command with --resume to continue"


if __name__ == "__main__":
    sys.exit(main())
