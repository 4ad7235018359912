"""scripts/select_by_objects.py: records kept by their scene's object count, checked against what the files say."""

import argparse
import importlib.util
import json
import re
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[3] / "scripts" / "select_by_objects.py"
spec = importlib.util.spec_from_file_location("select_by_objects", SCRIPT)
select_by_objects = importlib.util.module_from_spec(spec)
spec.loader.exec_module(select_by_objects)

BOX = re.compile(r"\[\d+, \d+, \d+, \d+\]")


def described_objects(out: Path) -> dict[str, int]:
    """Objects per training image, counted independently: the detailed description boxes every object once."""
    samples = json.loads((out / "train" / "detailed_description.json").read_text())
    return {s["image"]: len(set(BOX.findall(s["conversations"][1]["value"]))) for s in samples}


def run(capsys, *argv) -> dict:
    assert select_by_objects.main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("objects, wanted", [("1", {1}), ("2-3", {2, 3})])
def test_training_records_are_kept_by_object_count_in_order(dataset, tmp_path, capsys, objects, wanted):
    out, _ = dataset
    source = out / "train" / "grounding.json"
    records = json.loads(source.read_text())
    counts = described_objects(out)
    report = run(capsys, source, "--synth", out, "--objects", objects, "--out", tmp_path / "kept.json")
    kept = json.loads((tmp_path / "kept.json").read_text())
    assert kept == [r for r in records if counts[r["image"]] in wanted] and kept
    assert report["records"] == len(records) and report["kept"] == len(kept)
    assert report["by_objects"] == {
        str(n): sum(counts[r["image"]] == n for r in records) for n in sorted({counts[r["image"]] for r in records})
    }


def test_evaluation_lines_stay_lines_and_lone_objects_are_the_images_without_relations(dataset, tmp_path, capsys):
    out, _ = dataset
    source = out / "eval" / "grounding" / "grounding_eval.jsonl"
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    with_relations = {json.loads(line)["image"] for line in (out / "eval" / "psg" / "psg_eval.jsonl").open()}
    assert any(r["image"].startswith("abnormal_images/") for r in rows)  # scenes drawn around a rare triplet too

    run(capsys, source, "--synth", out, "--objects", "1", "--out", tmp_path / "lone.jsonl")
    lone = [json.loads(line) for line in (tmp_path / "lone.jsonl").read_text().splitlines()]
    assert lone == [r for r in rows if r["image"] not in with_relations] and lone

    report = run(capsys, source, "--synth", out, "--objects", "1-8", "--out", tmp_path / "all.jsonl")
    assert report["kept"] == report["records"] == len(rows)
    assert (tmp_path / "all.jsonl").read_text() == "".join(json.dumps(r) + "\n" for r in rows)


def test_a_record_that_is_not_a_synthetic_scene_is_named(dataset, tmp_path):
    out, _ = dataset
    source = tmp_path / "mixed.json"
    source.write_text(json.dumps([{"image": "images/train/train_000001.jpg"}, {"image": "photos/cat.jpg"}]))
    with pytest.raises(ValueError, match=r"mixed.json\[1\]: 'photos/cat.jpg' is not the image path"):
        select_by_objects.main([str(source), "--synth", str(out), "--objects", "1", "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("text", ["0", "3-2", "one", "1-"])
def test_object_ranges_are_checked(text):
    with pytest.raises(argparse.ArgumentTypeError):
        select_by_objects.parse_range(text)
