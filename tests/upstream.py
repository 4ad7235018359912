"""Golden facts that upstream's own code wrote (``scripts/upstream_fixtures.py``, transformers 4.31 and its pins).

``tests/fixtures/upstream`` holds a tiny SentencePiece tokenizer in three folders (``legacy`` false, true, absent),
a tiny CLIP tower and ASMv2 checkpoint as upstream's stack saved them, images, question files, and the facts:
prompt strings, ids (``-200`` marks upstream's image placeholder), training labels, greedy continuations and
option losses in ``facts.json``; pixel values and last-position logits in ``tensors.safetensors``.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
LEGACY = ("false", "true", "absent")
UPSTREAM_IMAGE_ID = -200
TOKENIZER_FILES = ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json")


@functools.cache
def facts() -> dict:
    return json.loads((FIXTURES / "facts.json").read_text(encoding="utf-8"))


@functools.cache
def tensors() -> dict:
    from safetensors.torch import load_file

    return load_file(FIXTURES / "tensors.safetensors")


def case(legacy: str, name: str) -> dict:
    return facts()["legacy"][legacy][name]


def question(name: str) -> dict:
    return json.loads((FIXTURES / "questions" / f"{name}.jsonl").read_text(encoding="utf-8"))


def training_record(name: str) -> dict:
    records = json.loads((FIXTURES / "questions" / "train.json").read_text(encoding="utf-8"))
    return next(record for record in records if record["id"] == name)


def expand(ids: list[int], image_id: int, image_tokens: int | None = None) -> list[int]:
    """Upstream ids with its one ``-200`` placeholder replaced by the stock model's ``image_tokens`` image ids."""
    image_tokens = image_tokens or facts()["image_tokens"]
    out: list[int] = []
    for token in ids:
        out += [image_id] * image_tokens if token == UPSTREAM_IMAGE_ID else [token]
    return out


def expand_labels(labels: list[int], ids: list[int], image_tokens: int | None = None) -> list[int]:
    """Upstream labels aligned with :func:`expand`'s ids (image positions are never trained)."""
    image_tokens = image_tokens or facts()["image_tokens"]
    out: list[int] = []
    for label, token in zip(labels, ids, strict=True):
        out += [-100] * image_tokens if token == UPSTREAM_IMAGE_ID else [label]
    return out


def checkpoint(folder: Path, legacy: str) -> Path:
    """A copy of the upstream checkpoint whose tokenizer files are those of ``tokenizer-legacy-<legacy>``."""
    shutil.copytree(FIXTURES / "checkpoint", folder)
    for name in TOKENIZER_FILES:
        shutil.copy(FIXTURES / f"tokenizer-legacy-{legacy}" / name, folder / name)
    return folder
