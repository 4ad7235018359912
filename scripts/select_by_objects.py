"""Keep the records of a synthetic dataset whose scene has a given number of objects.

Two uses: a curriculum stage (lone objects first: run 5K learned to localise on the grounding samples of
single-object scenes, and run 6 continued it on the full mix, docs/model-card.md), and a score by scene size (Acc@0.5
on the grounding questions of single-object test images tells localisation from binding).

    python scripts/select_by_objects.py --synth gall --objects 1 gall/train/grounding.json \\
        --out gall/train/grounding_n1.json
    python scripts/select_by_objects.py --synth heldout --objects 2-3 \\
        heldout/eval/grounding/grounding_eval.jsonl --out heldout/grounding_2-3.jsonl

The files carry no object counts, so each record's scene is drawn again from its image path and the dataset's seed
(read from DIR/stats.json; no rendering). Files are read and written as the training manifests are (JSON lines if
``.jsonl``, else one JSON array; the output's format follows its own name), in the input's order. Prints one JSON
object: records read, records kept, and the records per object count.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from allseeing.data.manifest import ManifestError, iter_records, write_records
from allseeing.data.synth.generate import SceneSpec, sample_spec_scene


def parse_range(text: str) -> range:
    """``"1"`` or ``"2-3"`` (inclusive) as a range of object counts."""
    low, dash, high = text.partition("-")
    try:
        first, last = int(low), int(high if dash else low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a range like 2-3, got {text!r}") from None
    if not 1 <= first <= last:
        raise argparse.ArgumentTypeError(f"expected 1 <= first <= last, got {text!r}")
    return range(first, last + 1)


def read_records(path: Path) -> list[tuple[str, dict]]:
    """``(where, record)`` for each record of a manifest (JSON lines if ``.jsonl``, else one JSON array)."""
    records = []
    for where, record in iter_records(path):
        if isinstance(record, ManifestError):
            raise ManifestError(f"{where}: {record}")
        records.append((where, record))
    return records


def object_counts(records: list[tuple[str, dict]], seed: int) -> list[int]:
    """The number of objects in each record's scene (scenes drawn once per image)."""
    by_image: dict[str, int] = {}
    counts = []
    for where, record in records:
        image = record.get("image") if isinstance(record, dict) else None
        if not isinstance(image, str):
            raise ValueError(f"{where}: no image path")
        if image not in by_image:
            try:
                spec = SceneSpec.of_image(image, seed)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            by_image[image] = len(sample_spec_scene(spec)[0].items)
        counts.append(by_image[image])
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="a training file (JSON list) or evaluation file (JSON lines)")
    parser.add_argument("--synth", type=Path, required=True, help="the dataset folder (its stats.json has the seed)")
    parser.add_argument("--objects", type=parse_range, required=True, help="object count to keep: 1, or a range 2-3")
    parser.add_argument("--out", type=Path, required=True, help="where to write the kept records")
    args = parser.parse_args(argv)

    seed = json.loads((args.synth / "stats.json").read_text())["seed"]
    records = read_records(args.manifest)
    counts = object_counts(records, seed)
    kept = [record for (_, record), count in zip(records, counts, strict=True) if count in args.objects]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_records(args.out, kept)
    by_objects = dict(sorted(Counter(counts).items()))
    print(json.dumps({"records": len(records), "kept": len(kept), "by_objects": by_objects}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
