"""``fixed`` scores never depend on the order of lines in either file; ``official`` ignores the question file's.

Run on every case of the upstream golden fixtures (all five generated tasks), shuffled three ways.
"""

import random
import shutil
from pathlib import Path

import pytest

from allseeing.eval.score import score_file
from tests.eval.test_upstream_scores import CASES, FIXTURES

ORDERED = sorted(name for name, case in CASES.items() if case["status"] == "ok")


def shuffled_copy(source: Path, target: Path, seed: int) -> Path:
    lines = [line for line in source.read_text().splitlines() if line.strip()]
    random.Random(seed).shuffle(lines)
    target.write_text("\n".join(lines) + "\n")
    return target


def case_copy(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(FIXTURES / "cases" / name, folder)
    return folder


@pytest.mark.parametrize("name", ORDERED)
def test_fixed_is_independent_of_line_order_in_both_files(name, tmp_path):
    task, folder = CASES[name]["task"], case_copy(name, tmp_path)
    expected = score_file(task, folder / "questions.jsonl", folder / "predictions.jsonl", "fixed")
    for seed in range(3):
        questions = shuffled_copy(folder / "questions.jsonl", folder / f"q{seed}.jsonl", seed)
        predictions = shuffled_copy(folder / "predictions.jsonl", folder / f"p{seed}.jsonl", seed + 10)
        assert score_file(task, questions, predictions, "fixed") == expected


@pytest.mark.parametrize("name", ORDERED)
def test_official_is_independent_of_the_question_files_order(name, tmp_path):
    task, folder = CASES[name]["task"], case_copy(name, tmp_path)
    expected = score_file(task, folder / "questions.jsonl", folder / "predictions.jsonl", "official")
    questions = shuffled_copy(folder / "questions.jsonl", folder / "shuffled.jsonl", 0)
    assert score_file(task, questions, folder / "predictions.jsonl", "official") == expected
