"""Writing datasets: determinism, disjoint splits, statistics, the CLI and the data checker on the output."""

import hashlib
import json

from allseeing.cli import main
from allseeing.data.synth.general import GENERAL_FILES
from allseeing.data.synth.generate import generate
from allseeing.data.synth.tasks import TASKS
from allseeing.eval.registry import TASKS as TASKS_BY_NAME


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_gives_byte_identical_output_whatever_the_workers(tmp_path):
    generate(tmp_path / "a", 24, 12, seed=5, workers=1, progress=False)
    generate(tmp_path / "b", 24, 12, seed=5, workers=2, progress=False)
    generate(tmp_path / "c", 24, 12, seed=6, workers=1, progress=False)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")


def test_an_interrupted_run_resumes_keeping_its_images_and_ends_identical(tmp_path):
    generate(tmp_path / "whole", 12, 6, seed=5, progress=False)
    out = tmp_path / "resumed"
    generate(out, 12, 6, seed=5, progress=False)
    (out / "stats.json").unlink()  # as if stopped before the end
    gone = out / "images/train/train_000003.jpg"
    gone.unlink()
    kept = out / "images/train/train_000004.jpg"
    kept.write_bytes(b"kept")  # a kept image is not rendered again
    generate(out, 12, 6, seed=5, progress=False)
    assert kept.read_bytes() == b"kept" and gone.is_file()
    kept.write_bytes((tmp_path / "whole/images/train/train_000004.jpg").read_bytes())
    assert tree_digest(out) == tree_digest(tmp_path / "whole")
    generate(out, 12, 6, seed=6, progress=False)  # another plan: every image is drawn anew
    generate(tmp_path / "six", 12, 6, seed=6, progress=False)
    assert tree_digest(out) == tree_digest(tmp_path / "six")


def test_stats_count_what_was_written(dataset):
    out, stats = dataset
    assert json.loads((out / "stats.json").read_text()) == stats
    for task in TASKS:
        written = json.loads((out / "train" / f"{task}.json").read_text())
        assert len(written) == stats["samples_per_task"][task]
    general = {f"general/{relative}": name for name, relative in GENERAL_FILES.items()}
    for relative, count in stats["eval_rows"].items():
        if relative in general:  # a TSV with its header, a JSON list: read as the benchmark's task reads it
            assert len(TASKS_BY_NAME[general[relative]].read_questions(out / "eval" / relative)) == count
        else:
            assert len((out / "eval" / relative).read_text().splitlines()) == count
    splits = stats["splits"]
    assert splits["train"]["totals"]["scenes"] == 80
    assert splits["test"]["totals"]["scenes"] + splits["abnormal"]["totals"]["scenes"] == 32
    assert sum(splits["train"]["shapes"].values()) == splits["train"]["totals"]["objects"]


def test_train_and_test_never_share_an_image(dataset):
    out, _ = dataset
    train = {p.name for p in (out / "images" / "train").iterdir()}
    test = {p.name for p in (out / "images" / "test").iterdir()} | {p.name for p in (out / "abnormal_images").iterdir()}
    assert len(train) == 80 and len(test) == 32 and not train & test


def test_cli_writes_a_dataset_that_the_checker_accepts(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), "--n", "20", "--test", "8", "--seed", "1", "--workers", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["train_scenes"] == 20
    manifests = [str(p) for p in sorted((out / "train").glob("*.json"))]
    assert main(["data", "check", *manifests, "--image-root", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and all(m["bad_records"] == 0 and m["records"] > 0 for m in report["manifests"].values())
