"""CRPE scoring by hand: circular groups from the question file, order-free, official vs fixed letters."""

import random

import pytest

from allseeing.eval.metrics.choice import official_choice, options_of, tolerant_choice
from allseeing.eval.task import EvalError
from tests.eval.helpers import score

OPTIONS = "A. left of\nB. above\nC. inside\nD. next to"


def rotations(qid, category, correct_letters):
    return [
        {
            "question_id": f"{qid}-{k}",
            "image": "x.jpg",
            "text": f"Q?\n{OPTIONS}\nAnswer with the letter.",
            "correct_option": c,
            "category": category,
        }
        for k, c in enumerate(correct_letters)
    ]


QUESTIONS = (
    rotations("s1", "subject", "ADCB")
    + rotations("p1", "predicate", "ADCB")
    + rotations("p2", "predicate", "BADC")
    + rotations("o1", "object", "CBAD")
)
PERFECT = {q["question_id"]: q["correct_option"] for q in QUESTIONS}


def test_all_right_is_100_and_overall_is_the_mean(tmp_path):
    result = score(tmp_path, "crpe", QUESTIONS, PERFECT)
    assert (result["subject"], result["predicate"], result["object"], result["overall"]) == (100.0, 100.0, 100.0, 100.0)
    assert result["exist"] is None and result["coverage"] == 100.0 and result["invalid"] == 0


def test_one_wrong_rotation_fails_its_group_only(tmp_path):
    answers = dict(PERFECT, **{"p2-3": "A"})
    result = score(tmp_path, "crpe", QUESTIONS, answers)
    assert result["predicate"] == 50.0  # 1 of 2 groups
    assert result["per_row"]["predicate"] == 87.5  # 7 of 8 rows
    assert result["overall"] == round((100 + 50 + 100) / 3, 2)


def test_shuffled_prediction_lines_score_the_same(tmp_path):
    answers = dict(PERFECT, **{"p2-3": "A", "o1-0": "B"})
    shuffled = list(answers.items())
    random.Random(0).shuffle(shuffled)
    assert score(tmp_path, "crpe", QUESTIONS, answers) == score(tmp_path, "crpe", QUESTIONS, dict(shuffled))


def test_a_missing_rotation_fails_its_group_and_shows_in_coverage(tmp_path):
    answers = {k: v for k, v in PERFECT.items() if k != "s1-2"}
    result = score(tmp_path, "crpe", QUESTIONS, answers)
    assert result["subject"] == 0.0 and result["coverage"] == round(100 * 15 / 16, 2) and result["answered"] == 15


def test_an_empty_category_does_not_crash(tmp_path):
    answers = dict(PERFECT, **{f"o1-{k}": "A. left of" for k in range(4)})  # all invalid under official
    result = score(tmp_path, "crpe", QUESTIONS, answers)
    assert result["object"] == 0.0 and result["invalid"] == 4 and "object" not in result["letters"]


def test_official_and_fixed_differ_exactly_on_formatted_letters(tmp_path):
    formatted = {k: {"A": "A.", "B": "(B)", "C": "C) inside", "D": "The answer is D"}[v] for k, v in PERFECT.items()}
    official = score(tmp_path, "crpe", QUESTIONS, formatted, protocol="official")
    fixed = score(tmp_path, "crpe", QUESTIONS, formatted, protocol="fixed")
    assert (official["overall"], official["invalid"]) == (0.0, 16)
    assert (fixed["overall"], fixed["invalid"]) == (100.0, 0)
    plain = score(tmp_path, "crpe", QUESTIONS, PERFECT, protocol="fixed")
    assert plain["overall"] == score(tmp_path, "crpe", QUESTIONS, PERFECT)["overall"]


def test_a_category_not_in_fours_is_an_error(tmp_path):
    with pytest.raises(EvalError, match="category 'subject' has 3 rows, not a multiple of 4"):
        score(tmp_path, "crpe", QUESTIONS[1:], {k: v for k, v in PERFECT.items() if k != "s1-0"})


@pytest.mark.parametrize(
    ("answer", "official", "tolerant"),
    [
        ("A", ("A", False), ("A", False)),
        ("", (None, False), (None, True)),
        ("A.", (None, True), ("A", False)),
        ("(C)", (None, True), ("C", False)),
        ("The answer is B.", (None, True), ("B", False)),
        ("inside", (None, True), ("C", False)),
        ("a", ("a", False), (None, True)),
        ("E", ("E", False), (None, True)),
    ],
)
def test_letter_extraction(answer, official, tolerant):
    options = options_of(OPTIONS)
    assert options == {"A": "left of", "B": "above", "C": "inside", "D": "next to"}
    assert official_choice(answer) == official
    assert tolerant_choice(answer, options) == tolerant
