"""Writing a synthetic dataset: images, LLaVA training files per task, evaluation files, ``stats.json``.

Layout of ``OUT`` (the image root of every file in it)::

    images/train/train_000000.jpg ...      training scenes
    images/test/test_00000.jpg ...         test scenes
    abnormal_images/abnormal_00000.jpg ... test scenes built around a rare triplet
    train/<task>.json                      LLaVA-format samples, one file per task
    eval/crpe/crpe_exist.jsonl, eval/crpe/crpe_relation.jsonl
    eval/grounding/grounding_eval.jsonl
    eval/region_caption/region_caption_eval_square_pad.jsonl, eval/region_caption/<category>_coco_format.json
    eval/vcr/VCR_val_square_pad.jsonl
    eval/psg/psg_eval.jsonl
    eval/psg_pred_cls/psg_pred_cls_full_square_pad.jsonl, eval/psg_pred_cls/psg_pred_cls_options.json
    eval/general/<benchmark>/...           the twelve general benchmarks in their own formats (data/synth/general.py)
    images/textvqa/test_00000.jpg ...      test scenes with a word written under them (TextVQA)
    stats.json

Every scene draws from its own random stream, named by the seed, split, index and attempt, so the output is
byte-identical for a seed whatever the number of worker processes. It also resumes: images are written whole
(to a temporary name, then renamed), ``plan.json`` records the seed and version they were made with, and a run into
a folder with the same plan keeps the images already there (a 100,000-scene dataset takes an hour on 2 cores).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from allseeing import __version__
from allseeing.data.manifest import write_records
from allseeing.data.synth import evalsets, general
from allseeing.data.synth.relations import PREDICATES, salient_relations, scene_graph
from allseeing.data.synth.scenes import Triplet, choose_rare_triplets, sample_scene, sample_scenes
from allseeing.data.synth.tasks import TASKS, llava_sample
from allseeing.data.synth.world import Scene, render

RARE_TRIPLETS = 6
ABNORMAL_SHARE = 0.25
JPEG_QUALITY = 92
EVAL_FILES = {
    "crpe_exist": ("crpe/crpe_exist.jsonl", evalsets.crpe_exist),
    "crpe_relation": ("crpe/crpe_relation.jsonl", evalsets.crpe_relation),
    "grounding": ("grounding/grounding_eval.jsonl", evalsets.grounding),
    "vcr": ("vcr/VCR_val_square_pad.jsonl", evalsets.vcr),
    "psg": ("psg/psg_eval.jsonl", evalsets.psg),
    "psg_pred_cls": ("psg_pred_cls/psg_pred_cls_full_square_pad.jsonl", evalsets.psg_pred_cls),
}
SPLITS = ("train", "test", "abnormal")
REGION_FILE = "region_caption/region_caption_eval_square_pad.jsonl"
PRED_CLS_OPTIONS = "psg_pred_cls/psg_pred_cls_options.json"


@dataclass(frozen=True)
class SceneSpec:
    split: str  # one of SPLITS
    index: int
    seed: int
    rare: tuple[Triplet, ...]

    @property
    def scene_id(self) -> str:
        return f"{self.split}_{self.index:06d}" if self.split == "train" else f"{self.split}_{self.index:05d}"

    @property
    def image(self) -> str:
        folder = "abnormal_images" if self.split == "abnormal" else f"images/{self.split}"
        return f"{folder}/{self.scene_id}.jpg"

    @property
    def required(self) -> Triplet | None:
        return self.rare[self.index % len(self.rare)] if self.split == "abnormal" else None

    @classmethod
    def of_image(cls, image: str, seed: int) -> SceneSpec:
        """The spec whose ``image`` path this is, in a dataset written with ``seed``."""
        split, _, index = Path(image).stem.rpartition("_")
        if split in SPLITS and index.isdigit():
            spec = cls(split, int(index), seed, rare_triplets(seed))
            if spec.image == image:
                return spec
        raise ValueError(f"{image!r} is not the image path of a synthetic scene")


@dataclass
class SceneResult:
    spec: SceneSpec
    scene: Scene
    attempts: int
    samples: dict[str, dict] = field(default_factory=dict)
    eval_rows: dict[str, list] = field(default_factory=dict)
    regions: list[tuple[dict, list[str]]] = field(default_factory=list)
    general_rows: dict[str, list[dict]] = field(default_factory=dict)  # the general benchmarks' (test scenes)


def sample_spec_scene(spec: SceneSpec) -> tuple[Scene, int]:
    """The scene of ``spec`` and the draws it took (fresh draws until the split's constraints hold)."""
    forbidden = frozenset(spec.rare) if spec.split == "train" else frozenset()
    attempt = 0
    while True:
        rng = random.Random(f"{spec.seed}/{spec.split}/{spec.index}/{attempt}")
        scene = sample_scene(rng, spec.scene_id, required=spec.required, forbidden=forbidden)
        if scene is not None:
            return scene, attempt + 1
        attempt += 1


def build_scene(spec: SceneSpec, out: Path, reuse: bool = False) -> SceneResult:
    """Sample, render and describe one scene; ``reuse``: keep its image when a run of the same plan wrote it."""
    scene, attempts = sample_spec_scene(spec)
    path = out / spec.image
    if not (reuse and path.is_file()):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        render(scene).save(partial, format="JPEG", quality=JPEG_QUALITY)
        os.replace(partial, path)
    result = SceneResult(spec, scene, attempts)
    text_rng = random.Random(f"{spec.seed}/{spec.split}/{spec.index}/text")
    if spec.split == "train":
        for task, builder in TASKS.items():
            turns = builder(scene, text_rng)
            if turns:
                result.samples[task] = llava_sample(f"{task}-{spec.scene_id}", spec.image, turns)
    else:
        test = evalsets.EvalScene(scene, spec.image, spec.required)
        for name, (_, builder) in EVAL_FILES.items():
            result.eval_rows[name] = builder(test, text_rng)
        result.regions = evalsets.region_captions(test, text_rng)
        # A stream of its own, so that the region-level files stay what they were before the general benchmarks.
        general_rng = random.Random(f"{spec.seed}/{spec.split}/{spec.index}/general")
        result.general_rows = general.general_rows(test, general_rng)
    return result


def _signature(scene: Scene) -> tuple:
    return (scene.width, scene.height, tuple((i.shape, i.colour, i.box) for i in scene.items))


def rare_triplets(seed: int) -> tuple[Triplet, ...]:
    """The triplets that only the test split of a dataset written with ``seed`` shows."""
    return tuple(choose_rare_triplets(random.Random(f"{seed}/rare"), RARE_TRIPLETS))


def _specs(n_train: int, n_test: int, seed: int) -> tuple[list[SceneSpec], tuple[Triplet, ...]]:
    rare = rare_triplets(seed)
    n_abnormal = round(n_test * ABNORMAL_SHARE) if n_test > 1 else 0
    specs = [SceneSpec("train", i, seed, rare) for i in range(n_train)]
    specs += [SceneSpec("test", i, seed, rare) for i in range(n_test - n_abnormal)]
    specs += [SceneSpec("abnormal", i, seed, rare) for i in range(n_abnormal)]
    return specs, rare


def _build(args: tuple[SceneSpec, Path, bool]) -> SceneResult:
    return build_scene(*args)


def _results(specs: list[SceneSpec], out: Path, workers: int, reuse: bool) -> Iterator[SceneResult]:
    jobs = [(spec, out, reuse) for spec in specs]
    if workers <= 1:
        yield from map(_build, jobs)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(_build, jobs, chunksize=16)


def generate(
    out: str | Path, n_train: int, n_test: int, seed: int = 0, workers: int = 1, progress: bool = True
) -> dict:
    """Write the dataset into ``out``; returns the statistics also written to ``stats.json``."""
    if n_train < 0 or n_test < 0 or n_train + n_test == 0:
        raise ValueError(f"need a positive number of scenes, got {n_train} training and {n_test} test scenes")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reuse = _same_plan(out, seed)
    specs, rare = _specs(n_train, n_test, seed)
    samples: dict[str, list[dict]] = {task: [] for task in TASKS}
    rows: dict[str, list[dict]] = {name: [] for name in EVAL_FILES}
    regions: list[tuple[dict, list[str]]] = []
    general_rows: dict[str, list[dict]] = {name: [] for name in general.GENERAL_FILES}
    stats = _Stats(seed, n_train, n_test, rare)
    train_signatures: set[tuple] = set()
    bar = tqdm(total=len(specs), desc="synth scenes", unit="scene", disable=not progress)
    for result in _results(specs, out, workers, reuse):
        if result.spec.split != "train" and _signature(result.scene) in train_signatures:
            raise RuntimeError(f"test scene {result.spec.scene_id} repeats a training scene; use another seed")
        if result.spec.split == "train":
            train_signatures.add(_signature(result.scene))
        stats.add(result)
        for task, sample in result.samples.items():
            samples[task].append(sample)
        for name, new_rows in result.eval_rows.items():
            rows[name].extend(new_rows)
        regions.extend(result.regions)
        for name, new_rows in result.general_rows.items():
            general_rows.setdefault(name, []).extend(new_rows)
        bar.update()
    bar.close()
    _write_training(out, samples, stats)
    _write_eval(out, rows, regions, stats)
    if n_test:
        stats.eval_rows.update(general.write_general(out, general_rows, JPEG_QUALITY))
    # Written last and renamed into place: a dataset with stats.json is complete (the campaign relies on it).
    partial = out / "stats.json.partial"
    partial.write_text(json.dumps(stats.as_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, out / "stats.json")
    return stats.as_json()


def _same_plan(out: Path, seed: int) -> bool:
    """Whether ``out`` holds images of this plan (the same seed and version), which a resumed run keeps; records
    the plan otherwise. A scene's image depends on the seed, its split and index only, not on the counts."""
    plan = {"seed": seed, "allseeing": __version__}
    path = out / "plan.json"
    try:
        if json.loads(path.read_text(encoding="utf-8")) == plan:
            return True
    except (OSError, ValueError):
        pass
    partial = out / "plan.json.partial"
    partial.write_text(json.dumps(plan) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return False


def _write_training(out: Path, samples: dict[str, list[dict]], stats: _Stats) -> None:
    folder = out / "train"
    folder.mkdir(exist_ok=True)
    for task, task_samples in samples.items():
        write_records(folder / f"{task}.json", task_samples)
        stats.samples[task] = len(task_samples)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_eval(out: Path, rows: dict[str, list[dict]], regions: list[tuple[dict, list[str]]], stats: _Stats) -> None:
    folder = out / "eval"
    for name, (relative, _) in EVAL_FILES.items():
        _write_jsonl(folder / relative, rows[name])
        stats.eval_rows[relative] = len(rows[name])
    references: dict[str, dict] = {}
    region_rows = []
    for ann_id, (row, captions) in enumerate(regions):
        region_rows.append({**row, "ann_id": ann_id})
        coco = references.setdefault(
            row["category"],
            {
                "info": {"description": f"synthetic region captions, {row['category']}"},
                "licenses": [],
                "type": "captions",
                "images": [],
                "annotations": [],
            },
        )
        coco["images"].append({"id": ann_id})
        for caption in captions:
            coco["annotations"].append({"image_id": ann_id, "id": len(coco["annotations"]), "caption": caption})
    _write_jsonl(folder / REGION_FILE, region_rows)
    stats.eval_rows[REGION_FILE] = len(region_rows)
    for category, coco in sorted(references.items()):
        path = folder / "region_caption" / f"{category}_coco_format.json"
        path.write_text(json.dumps(coco, ensure_ascii=False), encoding="utf-8")
    options = folder / PRED_CLS_OPTIONS
    options.write_text(json.dumps(list(PREDICATES)), encoding="utf-8")


class _Stats:
    """Counts per split, task, predicate and object class."""

    def __init__(self, seed: int, n_train: int, n_test: int, rare: tuple[Triplet, ...]) -> None:
        self.header = {
            "seed": seed,
            "train_scenes": n_train,
            "test_scenes": n_test,
            "rare_triplets": [list(t) for t in rare],
        }
        self.splits: dict[str, dict[str, Counter]] = {}
        self.samples: dict[str, int] = {}
        self.eval_rows: dict[str, int] = {}

    def add(self, result: SceneResult) -> None:
        split = self.splits.setdefault(
            result.spec.split,
            {k: Counter() for k in ("totals", "shapes", "colours", "predicates", "salient_predicates")},
        )
        scene = result.scene
        split["totals"].update(scenes=1, objects=len(scene.items), resampled=result.attempts - 1)
        split["shapes"].update(item.shape for item in scene.items)
        split["colours"].update(item.colour for item in scene.items)
        split["predicates"].update(r.predicate for r in scene_graph(scene))
        split["salient_predicates"].update(r.predicate for r in salient_relations(scene))

    def as_json(self) -> dict:
        return {
            **self.header,
            "samples_per_task": self.samples,
            "eval_rows": self.eval_rows,
            "splits": {
                name: {k: dict(sorted(v.items())) for k, v in counters.items()}
                for name, counters in self.splits.items()
            },
        }


def text_corpus(n_scenes: int, seed: int = 0) -> Iterator[str]:
    """Every prompt and answer the world writes for ``n_scenes`` scenes (training tasks and evaluation questions),
    without images: the text a tokenizer for synthetic-world models is trained on."""
    for index, scene in enumerate(sample_scenes(seed, "corpus", n_scenes)):
        rng = random.Random(f"{seed}/corpus/{index}/text")
        for builder in TASKS.values():
            for question, answer in builder(scene, rng) or []:
                yield question
                yield answer
        test = evalsets.EvalScene(scene, "corpus.jpg", None)
        for _, builder in EVAL_FILES.values():
            for row in builder(test, rng):
                yield from [turn["value"] for turn in row["conversations"]] if "conversations" in row else [row["text"]]
        for row, references in evalsets.region_captions(test, rng):
            yield row["text"]
            yield from references
