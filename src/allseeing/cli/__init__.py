"""``allseeing <verb>``: the command line. Every verb is reachable in-process through :func:`main`."""

from __future__ import annotations

import argparse
import os
import sys

from allseeing import __version__
from allseeing.cli import chat, convert, data, demo, evaluate, quickstart, rec, synth, train
from allseeing.cli.common import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allseeing",
        description="The All-Seeing Project V2 toolkit: ReC format, ASMv2, CRPE and region-level evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"allseeing {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    quickstart.register(verbs)
    rec.register(verbs)
    synth.register(verbs)
    data.register(verbs)
    chat.register(verbs)
    demo.register(verbs)
    convert.register(verbs)
    evaluate.register(verbs)
    train.register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb; returns the exit status (problems print one line, ``--debug`` shows the traceback)."""
    args = build_parser().parse_args(argv)
    if not sys.stderr.isatty():
        # Progress bars are for people: ours are off then, and so are those of transformers and the hub (both read
        # this variable when first imported, which the verbs do later).
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return args.run(args)
    except ModuleNotFoundError as error:
        if args.debug:
            raise
        print(
            f"allseeing {args.verb}: error: this command needs the package {error.name!r}; "
            "install the extras: pip install torch==2.13.0 -e '.[model,eval]'",
            file=sys.stderr,
        )
        return 1
    except (UserError, ValueError, OSError) as error:
        if args.debug:
            raise
        print(f"allseeing {args.verb}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
