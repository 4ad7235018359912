"""Reading LLaVA-format manifests: a JSON array of samples, or JSON Lines (one sample per line)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DataSource:
    """One manifest: LLaVA JSON or JSONL, the folder its images are relative to, and its share of the mix."""

    path: str
    image_root: str = "."
    # Samples drawn per epoch, as a multiple of the manifest's size. 0 trains on none of it, but a fresh model's
    # tokenizer still learns its text: a curriculum's first stage lists the later stages' tasks at 0.
    ratio: float = 1.0


class ManifestError(ValueError):
    """A manifest that cannot be read at all (not JSON, not a list)."""


def is_json_lines(path: Path) -> bool:
    """Whether a manifest is JSON Lines (``.jsonl``) rather than one JSON array: the suffix decides, as everywhere."""
    return path.suffix == ".jsonl"


def write_records(path: Path, records: list) -> None:
    """Write records as the manifest format ``path``'s suffix names (:func:`is_json_lines`), as they will be read;
    through a temporary file renamed at the end, so that a killed writer never leaves a truncated manifest."""
    if is_json_lines(path):
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    else:
        text = json.dumps(records, ensure_ascii=False)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _not_json(error: ValueError, with_line: bool) -> str:
    """A JSON error without the decoder's "line 1" of a one-line record, which reads as a wrong line number."""
    if not isinstance(error, json.JSONDecodeError):
        return f"not JSON: {error}"
    where = f"line {error.lineno} column {error.colno}" if with_line else f"column {error.colno}"
    return f"not JSON at {where}: {error.msg}"


def iter_records(path: str | Path) -> Iterator[tuple[str, object]]:
    """Yield ``(where, record)`` for every sample; ``where`` names the file and the record for messages.

    ``.jsonl`` files are streamed line by line (a bad line is yielded as a :class:`ManifestError` record so the
    caller can count it and go on); anything else is read as one JSON array.
    """
    path = Path(path)
    if is_json_lines(path):
        empty = True
        # newline="\n": a JSON line is split at "\n" only, so line numbers are the file's (a stray "\r" or U+2028
        # inside a record does not start a new one).
        with path.open(encoding="utf-8", newline="\n") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                empty = False
                where = f"{path}:{number}"
                try:
                    yield where, json.loads(line.rstrip("\r\n"))  # a decoder error then points into the line
                except ValueError as error:
                    yield where, ManifestError(_not_json(error, with_line=False))
        if empty:
            raise ManifestError(f"{path}: empty file, no samples")
        return
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ManifestError(f"{path}: empty file, no samples")
    try:
        records = json.loads(text)
    except ValueError as error:
        raise ManifestError(f"{path}: {_not_json(error, with_line=True)}") from None
    if not isinstance(records, list):
        raise ManifestError(f"{path}: expected a JSON array of samples, found {type(records).__name__}")
    for index, record in enumerate(records):
        yield f"{path}[{index}]", record
