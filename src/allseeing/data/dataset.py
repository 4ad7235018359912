"""Training data: an indexed, validated view of LLaVA manifests, samples on demand, batches.

``prepare`` reads every manifest once: each record is checked (:func:`allseeing.data.check.check_record`: JSON,
roles, ``<image>`` markers, strict ReC, the image present and readable) and tokenised by spans to get its true
length (image tokens included) under the length policy. Good records keep only their byte offset, length and
modality in compact arrays, cached in the run's folder (a resumed run reads them back): a 30-million-record
manifest does not live as Python dicts in every worker. Bad records are counted by reason and left out (never
replaced by another sample); preparation stops when their share passes ``max_bad_fraction``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from allseeing.data.check import ImageCache, check_record
from allseeing.data.image import load_image
from allseeing.data.manifest import DataSource, is_json_lines
from allseeing.data.templates import Turn, turns_from_llava
from allseeing.data.tokenize import ENCODING_RULE, IGNORE_INDEX, Encoded, SampleTooLongError
from allseeing.rec.flip import flip_text


class DataError(ValueError):
    """Training data that cannot be used (too many bad records, unreadable manifests)."""


class Encoder(Protocol):
    """What the data layer needs of a processor (``allseeing.model.processor.Processor`` is one): its tokenizer
    (a fast tokenizer, whose serialised form keys the cached index), its settings (a dataclass), and the
    conversation encoder."""

    tokenizer: Any
    config: Any

    def encode(self, turns: Sequence[Turn], max_length: int | None = None, policy: str = "drop") -> Encoded: ...


RecordEncoder = Callable[[dict], Encoded]  # a manifest record -> its ids and labels
PixelEncoder = Callable[[list[Image.Image]], torch.Tensor]  # images -> the tower's pixel values


@dataclass
class Prepared:
    """Good records of all sources: where they are, how long they are, whether they have an image."""

    paths: list[str]
    image_roots: list[str]
    ratios: list[float]
    source: np.ndarray  # int32, per record
    offset: np.ndarray  # int64 byte offset of the record in its JSONL file
    length: np.ndarray  # int32 tokens after image expansion
    has_image: np.ndarray  # bool
    bad: Counter = field(default_factory=Counter)
    total: int = 0

    def __len__(self) -> int:
        return len(self.offset)

    def read(self, index: int) -> dict:
        with open(self.paths[self.source[index]], "rb") as handle:
            handle.seek(int(self.offset[index]))
            return json.loads(handle.readline())


def as_jsonl(path: Path, cache: Path) -> Path:
    """A JSONL file with the manifest's records: the file itself, or a one-time conversion of a JSON array."""
    if is_json_lines(path):
        return path
    converted = cache / f"{path.stem}-{_fingerprint(path)}.jsonl"
    if not converted.exists():
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read {path}: {error}") from None
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a JSON array of samples")
        # One partial file per process: under torchrun every rank may convert at once; the rename is atomic and
        # every rank writes the same content.
        partial = converted.with_suffix(f".partial-{os.getpid()}")
        with partial.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        partial.replace(converted)
    return converted


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]


def prepare(
    sources: Sequence[DataSource],
    encode_record: RecordEncoder,
    cache: str | Path,
    *,
    max_bad_fraction: float,
    progress: bool = True,
    index_key: str | None = None,
    workers: int = 0,
) -> Prepared:
    """Validate, measure and index every record of ``sources`` that trains: a source at ratio 0 (listed only for
    the tokenizer's corpus, see :func:`allseeing.train.setup.tokenizer_corpus`) is neither read nor counted.

    Args:
        encode_record: record -> :class:`Encoded` (raises :class:`SampleTooLongError` or ValueError when unusable).
        cache: a folder for converted manifests and, with ``index_key``, for each source's index.
        index_key: what the lengths depend on (tokenizer, template, length limit and policy; see
            :func:`encoder_key`). With it, a source indexed before with the same key, manifest file and image folder
            is read back from the cache instead of checked and tokenised again, so a resumed run starts at once.
        workers: processes that check and tokenise (0: this one). Each takes byte ranges of the manifests, so one
            large manifest is spread over all of them; the index is the same for any number.
    """
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    paths, roots, ratios, stored = [], [], [], []
    for spec in sources:
        trains = spec.ratio > 0
        jsonl = as_jsonl(Path(spec.path), cache) if trains else Path(spec.path)
        paths.append(str(jsonl))
        roots.append(spec.image_root)
        ratios.append(spec.ratio)
        key = None
        if index_key is not None and trains:
            digest = hashlib.sha1(f"{_fingerprint(jsonl)}:{Path(spec.image_root).resolve()}:{index_key}".encode())
            key = cache / f"{jsonl.stem}-{digest.hexdigest()[:12]}.index.npz"
        stored.append(key)
    indexes: list[_SourceIndex | None] = [
        _SourceIndex.join([]) if ratio == 0 else _SourceIndex.load(key) if key and key.exists() else None
        for ratio, key in zip(ratios, stored, strict=True)
    ]
    todo = [n for n, index in enumerate(indexes) if index is None]
    made = _index_sources([(paths[n], roots[n]) for n in todo], encode_record, workers, progress)
    for n, index in zip(todo, made, strict=True):
        if stored[n] is not None:
            index.save(stored[n])
        indexes[n] = index
    bad = sum((index.bad for index in indexes), Counter())
    total = sum(index.total for index in indexes)
    if total and sum(bad.values()) / total > max_bad_fraction:
        raise DataError(
            f"{sum(bad.values())} of {total} records are unusable ({dict(bad)}), more than max_bad_fraction "
            f"{max_bad_fraction}"
        )
    return Prepared(
        paths,
        roots,
        ratios,
        np.concatenate([np.full(len(index.offset), n, dtype=np.int32) for n, index in enumerate(indexes)]),
        np.concatenate([index.offset for index in indexes]),
        np.concatenate([index.length for index in indexes]),
        np.concatenate([index.has_image for index in indexes]),
        bad,
        total,
    )


@dataclass
class _SourceIndex:
    """One source's (or one byte range's) good records: byte offset, length, image or not; its bad-record counts."""

    offset: np.ndarray
    length: np.ndarray
    has_image: np.ndarray
    bad: Counter
    total: int

    def save(self, path: Path) -> None:
        partial = path.with_name(f"{path.name}.partial-{os.getpid()}.npz")  # atomic: several ranks may write
        np.savez(
            partial,
            offset=self.offset,
            length=self.length,
            has_image=self.has_image,
            counts=np.array(json.dumps({"bad": dict(self.bad), "total": self.total})),
        )
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> _SourceIndex:
        with np.load(path) as stored:
            counts = json.loads(str(stored["counts"]))
            return cls(stored["offset"], stored["length"], stored["has_image"], Counter(counts["bad"]), counts["total"])

    @classmethod
    def join(cls, parts: list[_SourceIndex]) -> _SourceIndex:
        return cls(  # an empty manifest has no parts
            np.concatenate([np.zeros(0, np.int64), *(part.offset for part in parts)]),
            np.concatenate([np.zeros(0, np.int32), *(part.length for part in parts)]),
            np.concatenate([np.zeros(0, bool), *(part.has_image for part in parts)]),
            sum((part.bad for part in parts), Counter()),
            sum(part.total for part in parts),
        )


RANGE_BYTES = 4 << 20  # the work of one indexing task: about 10,000 records of a synthetic manifest


def _index_sources(
    sources: list[tuple[str, str]], encode_record: RecordEncoder, workers: int, progress: bool
) -> list[_SourceIndex]:
    """The index of each (JSONL path, image root), its byte ranges checked in ``workers`` processes.

    The ranges go through a DataLoader (no batching, results in order), which forks workers that inherit
    ``encode_record`` as it is; each worker opens each image it checks once.
    """
    ranges = [(n, path, root, start, end) for n, (path, root) in enumerate(sources) for start, end in _ranges(path)]
    loader = torch.utils.data.DataLoader(
        _RangeIndexer(ranges, encode_record), batch_size=None, num_workers=workers, collate_fn=_unchanged
    )
    parts: list[list[_SourceIndex]] = [[] for _ in sources]
    with tqdm(
        total=sum(end - start for *_, start, end in ranges),
        desc="preparing data",
        unit="B",
        unit_scale=True,
        disable=not progress,
    ) as bar:
        for (n, _, _, start, end), part in zip(ranges, loader, strict=True):
            parts[n].append(part)
            bar.update(end - start)
    return [_SourceIndex.join(found) for found in parts]


def _unchanged(part: _SourceIndex) -> _SourceIndex:
    return part


def _ranges(path: str) -> list[tuple[int, int]]:
    """Byte ranges of about RANGE_BYTES that cover the file, each starting at a line."""
    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as handle:
        while bounds[-1] + RANGE_BYTES < size:
            handle.seek(bounds[-1] + RANGE_BYTES)
            handle.readline()  # to the start of the next line
            bounds.append(handle.tell())
    bounds.append(size)
    return [(start, end) for start, end in pairwise(bounds) if end > start]


class _RangeIndexer(torch.utils.data.Dataset):
    """Item i: the index of the i-th byte range (records checked and tokenised)."""

    def __init__(self, ranges: list[tuple[int, str, str, int, int]], encode_record: RecordEncoder) -> None:
        self.ranges = ranges
        self.encode_record = encode_record
        self.images: dict[str, ImageCache] = {}

    def __len__(self) -> int:
        return len(self.ranges)

    def __getitem__(self, item: int) -> _SourceIndex:
        _, path, root, start, end = self.ranges[item]
        # One cache per image folder: the task manifests of one dataset share their images.
        images = self.images.setdefault(root, ImageCache(Path(root)))
        offsets, lengths, has_image = array("q"), array("i"), array("b")
        bad: Counter = Counter()
        total = 0
        with open(path, "rb") as handle:
            handle.seek(start)
            offset = start
            while offset < end:
                line = handle.readline()
                line_start, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                total += 1
                reason = _problem(line, images, self.encode_record)
                if isinstance(reason, str):
                    bad[reason] += 1
                    continue
                encoded, image = reason
                offsets.append(line_start)
                lengths.append(len(encoded.input_ids))
                has_image.append(image)
        return _SourceIndex(
            np.frombuffer(offsets, dtype=np.int64).copy(),
            np.frombuffer(lengths, dtype=np.int32).copy(),
            np.frombuffer(has_image, dtype=np.int8).astype(bool),
            bad,
            total,
        )


def _problem(line: bytes, images: ImageCache, encode_record: RecordEncoder) -> str | tuple[Encoded, bool]:
    """The reason a record is unusable, or its encoding and whether it has an image."""
    try:
        record = json.loads(line)
    except ValueError:
        return "unreadable"
    problems = check_record(record, images)
    if problems:
        return problems[0][0]
    try:
        return encode_record(record), "image" in record
    except SampleTooLongError:
        return "too_long"
    except ValueError:
        return "unusable"


class SampleDataset(torch.utils.data.Dataset):
    """Samples by (epoch, index): the record, optionally mirrored, tokenised, with its image's pixels."""

    def __init__(
        self,
        prepared: Prepared,
        encode_record: RecordEncoder,
        pixel_values: PixelEncoder,
        flip_probability: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.prepared = prepared
        self.encode_record = encode_record
        self.pixel_values = pixel_values
        self.flip_probability = flip_probability
        self.seed = seed

    def __len__(self) -> int:
        return len(self.prepared)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        record = self.prepared.read(index)
        image = None
        if "image" in record:
            image = load_image(Path(self.prepared.image_roots[self.prepared.source[index]]) / record["image"])
        if (
            image is not None
            and self.flip_probability
            and random.Random(f"{self.seed}/{epoch}/{index}").random() < self.flip_probability
        ):
            record, image = mirror(record, image)
        encoded = self.encode_record(record)
        return {"input_ids": encoded.input_ids, "labels": encoded.labels, "image": image}


def mirror(record: dict, image: Image.Image) -> tuple[dict, Image.Image]:
    """The sample for the horizontally flipped image: every turn's boxes flipped and left/right words swapped."""
    turns = [{**turn, "value": flip_text(turn["value"], image.size)} for turn in record["conversations"]]
    return {**record, "conversations": turns}, ImageOps.mirror(image)


def collate(samples: list[dict], pad_id: int, pixel_values: PixelEncoder) -> dict:
    """Right-padded ids and labels, the attention mask, and the pixels of the samples that have an image."""
    width = max(len(s["input_ids"]) for s in samples)
    input_ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(samples), width), dtype=torch.long)
    for row, sample in enumerate(samples):
        n = len(sample["input_ids"])
        input_ids[row, :n] = torch.tensor(sample["input_ids"])
        labels[row, :n] = torch.tensor(sample["labels"])
        mask[row, :n] = 1
    batch = {"input_ids": input_ids, "labels": labels, "attention_mask": mask}
    images = [s["image"] for s in samples if s["image"] is not None]
    if images:
        batch["pixel_values"] = pixel_values(images)
    return batch


def encoder_key(processor: Encoder, policy: str) -> str:
    """What a record's encoded length depends on: the tokenizer, the template, the image tokens, the length limit
    and policy, and the tokenisation rule (the key of :func:`prepare`'s cached index)."""
    settings = json.dumps(
        [processor.tokenizer.backend_tokenizer.to_str(), dataclasses.asdict(processor.config), policy, ENCODING_RULE],
        sort_keys=True,
    )
    return hashlib.sha1(settings.encode()).hexdigest()


def encoder_for(processor: Encoder, max_length: int, policy: str) -> RecordEncoder:
    """record -> Encoded with the processor's template and tokenizer (the one used for lengths and training)."""

    def encode_record(record: dict) -> Encoded:
        return processor.encode(turns_from_llava(record["conversations"]), max_length=max_length, policy=policy)

    return encode_record
