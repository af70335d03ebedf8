"""The `multimodal` command: a thin layer that parses arguments and calls the library."""

from __future__ import annotations

import argparse
import logging
import sys

USER_ERRORS = (ValueError, FileNotFoundError, OSError)  # bad input: one clear line, no traceback


def _build(args: argparse.Namespace) -> None:
    import multimodal as mm
    from multimodal.trainable import count_parameters

    model = mm.build(args.config, args.overrides)
    total, trainable = count_parameters(model)
    path = model.save(args.output, adapter_only=args.adapter_only)
    print(f"saved {path} ({total:,} parameters, {trainable:,} trainable)")


def _demo(args: argparse.Namespace) -> None:
    from multimodal.demo import run

    run(args.config)


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

    d = sub.add_parser("demo", help="build the default model and show each input path at work")
    d.add_argument("--config", default="configs/default.yaml", help="YAML config (default: %(default)s)")
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        args.func(args)
    except USER_ERRORS as e:
        if args.verbose:
            raise
        print(f"multimodal {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
