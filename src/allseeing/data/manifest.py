"""Reading LLaVA-format manifests: a JSON array of samples, or JSON Lines (one sample per line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


class ManifestError(ValueError):
    """A manifest that cannot be read at all (not JSON, not a list)."""


def iter_records(path: str | Path) -> Iterator[tuple[str, object]]:
    """Yield ``(where, record)`` for every sample; ``where`` names the file and the record for messages.

    ``.jsonl`` files are streamed line by line (a bad line is yielded as a :class:`ManifestError` record so the
    caller can count it and go on); anything else is read as one JSON array.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    yield where, json.loads(line)
                except ValueError as error:
                    yield where, ManifestError(f"not JSON: {error}")
        return
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ManifestError(f"{path}: not JSON: {error}") from None
    if not isinstance(records, list):
        raise ManifestError(f"{path}: expected a JSON array of samples, found {type(records).__name__}")
    for index, record in enumerate(records):
        yield f"{path}[{index}]", record
