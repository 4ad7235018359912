"""Checking LLaVA-format training data before it is used (``allseeing data check``).

Per sample: ``id`` and ``conversations`` present; turns are ``{"from", "value"}`` with roles alternating
human/gpt from a human first turn; ``<image>`` appears exactly once, in the first human turn, when the sample
has an image, and never otherwise; the image exists and decodes; every turn parses as strict ReC (so every box
is four numbers in range and every predicate box belongs to a ``<ref>``). Problems are counted by kind and
listed with the file, the record and the message; nothing is skipped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from allseeing.data.image import size_problem
from allseeing.data.manifest import ManifestError, iter_records
from allseeing.rec import tags
from allseeing.rec.parse import ReCParseError, parse

ROLES = ("human", "gpt")
MAX_LISTED = 50


@dataclass
class CheckReport:
    records: int = 0
    turns: int = 0
    images: int = 0
    bad_records: int = 0
    problems: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.bad_records == 0

    def add(self, where: str, kind: str, message: str) -> None:
        self.problems[kind] += 1
        if len(self.examples) < MAX_LISTED:
            self.examples.append(f"{where}: {message}")

    def as_json(self) -> dict:
        return {
            "records": self.records,
            "bad_records": self.bad_records,
            "turns": self.turns,
            "images": self.images,
            "problems": dict(sorted(self.problems.items())),
            "examples": self.examples,
        }


class ImageCache:
    """Opens each distinct image once (many samples share one)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: dict[str, str | None] = {}

    def problem(self, relative: str) -> str | None:
        if relative not in self.seen:
            path = self.root / relative
            try:
                with Image.open(path) as image:
                    # The limits load_image applies: a sample that passes here must load in training.
                    self.seen[relative] = size_problem(str(path), *image.size)
                    image.verify()
            except FileNotFoundError:
                self.seen[relative] = f"image {path} does not exist"
            except (OSError, UnidentifiedImageError) as error:
                self.seen[relative] = f"image {path} does not open: {error}"
        return self.seen[relative]


def check_record(record: object, images: ImageCache) -> list[tuple[str, str]]:
    """Problems of one sample as ``(kind, message)`` pairs."""
    if isinstance(record, ManifestError):
        return [("unreadable", str(record))]
    if not isinstance(record, dict):
        return [("not_a_sample", f"expected an object, found {type(record).__name__}")]
    found: list[tuple[str, str]] = []
    if "id" not in record:
        found.append(("missing_id", "no 'id'"))
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        return [*found, ("missing_conversations", "'conversations' must be a non-empty list")]
    image_markers = 0
    for index, turn in enumerate(turns):
        if not (isinstance(turn, dict) and isinstance(turn.get("value"), str) and turn.get("from") in ROLES):
            found.append(("bad_turn", f"turn {index} must be {{'from': 'human'|'gpt', 'value': str}}"))
            continue
        if turn["from"] != ROLES[index % 2]:
            found.append(("roles", f"turn {index} is from {turn['from']!r}, expected {ROLES[index % 2]!r}"))
        markers = turn["value"].count(tags.IMAGE)
        image_markers += markers
        if markers and index != 0:
            found.append(("image_marker", f"{tags.IMAGE} in turn {index}, not in the first human turn"))
        try:
            parse(turn["value"], mode="strict")
        except ReCParseError as error:
            found.append(("rec", f"turn {index}: {error}"))
    if len(turns) % 2:
        found.append(("roles", "the last turn is from human; a training sample ends with a gpt reply"))
    has_image = "image" in record
    if has_image and image_markers != 1:
        found.append(("image_marker", f"{tags.IMAGE} appears {image_markers} times; a sample with an image needs one"))
    if not has_image and image_markers:
        found.append(("image_marker", f"{tags.IMAGE} in a sample without an image"))
    if has_image:
        if not isinstance(record["image"], str):
            found.append(("image", "'image' must be a relative path"))
        elif problem := images.problem(record["image"]):
            found.append(("image", problem))
    return found


def check_manifest(path: str | Path, image_root: str | Path, progress: bool = True) -> CheckReport:
    """Check every sample of a manifest; raises :class:`ManifestError` only when the file cannot be read."""
    report = CheckReport()
    images = ImageCache(Path(image_root))
    for where, record in tqdm(
        iter_records(path), desc=f"checking {Path(path).name}", unit="sample", disable=not progress
    ):
        report.records += 1
        if isinstance(record, dict) and isinstance(record.get("conversations"), list):
            report.turns += len(record["conversations"])
        problems = check_record(record, images)
        for kind, message in problems:
            report.add(where, kind, message)
        report.bad_records += bool(problems)
    report.images = len(images.seen)
    return report
