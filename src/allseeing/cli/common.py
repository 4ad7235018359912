"""Helpers shared by the verbs: common options, input reading, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from allseeing.rec.boxes import FRAMES


class UserError(Exception):
    """A problem with what the user asked for; printed as one line."""


def common_options() -> argparse.ArgumentParser:
    """Options every verb takes (used as an argparse parent)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return parent


def add_model_option(parser: argparse.ArgumentParser, help_text: str = "model folder") -> None:
    """``--model``, defaulting to the bundled small model so that every command runs offline."""
    from allseeing.assets import BUNDLED_MODEL

    parser.add_argument("--model", default=str(BUNDLED_MODEL), help=f"{help_text} (default: the bundled small model)")


def decoding_options() -> argparse.ArgumentParser:
    """``--max-new-tokens`` and ``--temperature`` for the verbs that chat (an argparse parent)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--max-new-tokens", type=int, default=256, help="answer length limit (default: %(default)s)")
    parent.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    return parent


def decoding_config(args: argparse.Namespace):  # -> DecodingConfig (torch is imported only when a verb runs)
    from allseeing.infer.generate import DecodingConfig

    sampled = args.temperature > 0
    return DecodingConfig(max_new_tokens=args.max_new_tokens, do_sample=sampled, temperature=args.temperature or 1.0)


def add_frame_option(parser: argparse.ArgumentParser, flag: str = "--frame", dest: str = "frame") -> None:
    choices = ", ".join(f"{name} ({frame.used_by})" for name, frame in FRAMES.items())
    parser.add_argument(flag, dest=dest, default="square999", choices=list(FRAMES), metavar="F", help=choices)


def read_text(path: str | None) -> tuple[str, str]:
    """The text of FILE, or of stdin when FILE is absent or ``-``; returns (text, name for messages)."""
    if path in (None, "-"):
        # Bytes, decoded strictly: the text stream would replace undecodable bytes silently.
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        try:
            return data.decode("utf-8"), "<stdin>"
        except UnicodeDecodeError as error:
            raise UserError(f"<stdin> is not UTF-8 text: {error}") from None
    try:
        return Path(path).read_text(encoding="utf-8"), path
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None


def format_json(value: Any, indent: int = 0) -> str:
    """JSON indented by structure, with lists of plain values (boxes) kept on one line."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [
            f"{inner}{json.dumps(key, ensure_ascii=False)}: {format_json(v, indent + 2)}" for key, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) and v for v in value):
        if all(isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v) for v in value):
            return json.dumps(value, ensure_ascii=False)  # a list of boxes
        return "[\n" + ",\n".join(f"{inner}{format_json(v, indent + 2)}" for v in value) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


def print_json(value: Any) -> None:
    sys.stdout.write(format_json(value) + "\n")
