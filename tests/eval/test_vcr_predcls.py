"""VCR: fixed pairs qa and qar by id, official by position as upstream; predicate classification Recall@K with and
without the K-1 quirk, ties, short score lists and partial files."""

import json

import pytest

from allseeing.eval.task import EvalError
from tests.eval.helpers import score

OPTIONS = "\nA. one\nB. two\nC. three\nD. four\nAnswer with the option's letter."


def vcr_row(qid, category, letter, first="<image>\nWhat?"):
    conversations = [{"from": "human", "value": first + OPTIONS}]
    if category == "qar":
        conversations += [{"from": "gpt", "value": "A"}, {"from": "human", "value": "Why?" + OPTIONS}]
    return {
        "question_id": qid,
        "image": "x.jpg",
        "conversations": conversations,
        "correct_option": letter,
        "category": category,
    }


def test_q2ar_pairs_by_id_whatever_the_order(tmp_path):
    # qa rows first, qar rows after in another order: positional pairing (upstream) would mix them up
    questions = [
        vcr_row("1-qa", "qa", "A"),
        vcr_row("2-qa", "qa", "B"),
        vcr_row("2-qar", "qar", "C"),
        vcr_row("1-qar", "qar", "D"),
    ]
    answers = {"1-qa": "B", "2-qa": "B", "1-qar": "D", "2-qar": "A"}  # 1-qa and 2-qar wrong: no pair right
    result = score(tmp_path, "vcr", questions, answers, protocol="fixed")
    assert (result["q2a"], result["qa2r"], result["q2ar"], result["pairs"]) == (50.0, 50.0, 0.0, 2)
    for shuffled in (questions[::-1], questions[1:] + questions[:1]):
        assert score(tmp_path, "vcr", shuffled, dict(reversed(answers.items())), protocol="fixed") == result


def test_official_zips_qa_and_qar_in_answer_order_as_upstream(tmp_path):
    questions = [vcr_row("1-qa", "qa", "A"), vcr_row("2-qa", "qa", "B"), vcr_row("1-qar", "qar", "D")]
    questions.append(vcr_row("2-qar", "qar", "C"))
    answers = {"1-qa": "B", "2-qa": "B", "2-qar": "A", "1-qar": "D"}  # qa [wrong, right], qar [wrong, right]
    result = score(tmp_path, "vcr", questions, answers)
    assert (result["q2ar"], result["pairs"]) == (50.0, 2)  # (1-qa, 2-qar) wrong, (2-qa, 1-qar) right
    assert score(tmp_path, "vcr", questions[::-1], answers) == result  # the question file's order plays no part


def test_pairs_without_id_suffixes_fall_back_to_the_repeated_first_turn(tmp_path):
    questions = [
        vcr_row(10, "qa", "A", "<image>\nFirst?"),
        vcr_row(11, "qa", "B", "<image>\nSecond?"),
        vcr_row(12, "qar", "C", "<image>\nSecond?"),
        vcr_row(13, "qar", "D", "<image>\nFirst?"),
    ]
    result = score(tmp_path, "vcr", questions, {10: "A", 11: "B", 12: "C", 13: "B"})
    assert (result["q2ar"], result["unpaired"]) == (50.0, 0)  # pair (10, 13) fails on 13; (11, 12) is right


def test_vcr_with_nothing_answered_does_not_crash(tmp_path):
    questions = [vcr_row("1-qa", "qa", "A"), vcr_row("1-qar", "qar", "B")]
    official = score(tmp_path, "vcr", questions, {})  # upstream divides by zero here
    fixed = score(tmp_path, "vcr", questions, {}, protocol="fixed")
    assert (official["q2a"], official["q2ar"], official["coverage"]) == (None, None, 0.0)
    assert (fixed["q2a"], fixed["q2ar"], fixed["coverage"]) == (0.0, 0.0, 0.0)


def test_official_scores_a_partial_vcr_file_on_what_it_answers(tmp_path):
    questions = [vcr_row(f"{i}-{c}", c, "A") for i in range(4) for c in ("qa", "qar")]
    answers = {"0-qa": "A", "0-qar": "A", "1-qa": "B", "1-qar": "A"}
    official = score(tmp_path, "vcr", questions, answers)
    fixed = score(tmp_path, "vcr", questions, answers, protocol="fixed")
    assert (official["q2a"], official["qa2r"], official["q2ar"]) == (50.0, 100.0, 50.0)
    assert (fixed["q2a"], fixed["qa2r"], fixed["q2ar"]) == (25.0, 50.0, 25.0)


def pred_cls_questions(tmp_path):
    (tmp_path / "psg_pred_cls_options.json").write_text(json.dumps([f"p{i}" for i in range(12)]))
    return [
        {
            "question_id": "q1",
            "image": "img.jpg",
            "text": "?",
            "label_format": "{}",
            "correct_option": ["p0"],
            "subj": "s1",
            "obj": "o1",
        },
        {
            "question_id": "q2",
            "image": "img.jpg",
            "text": "?",
            "label_format": "{}",
            "correct_option": ["p11"],
            "subj": "s2",
            "obj": "o2",
        },
    ]


def ranked(first_score, order):
    return {"text": [f"p{i}" for i in order], "scores": [first_score - k for k in range(len(order))]}


def test_recall_at_k_official_drops_the_last_of_the_top_k(tmp_path):
    questions = pred_cls_questions(tmp_path)
    answers = {
        "q1": {"question_id": "q1", **ranked(100.0, range(12))},  # p0 ranks first of all 24 candidates
        "q2": {"question_id": "q2", **ranked(50.0, range(12))},  # p11 is the 24th and last candidate
    }
    official = score(tmp_path, "psg_pred_cls", questions, answers)
    fixed = score(tmp_path, "psg_pred_cls", questions, answers, protocol="fixed")
    # 24 candidates < 50: upstream keeps [:50] = all 24, then drops the last (p11 of q2)
    assert (official["recall@20"], official["recall@50"], official["recall@100"]) == (50.0, 50.0, 50.0)
    assert (fixed["recall@20"], fixed["recall@50"], fixed["recall@100"]) == (50.0, 100.0, 100.0)
    assert fixed["mean_recall@50"] == 100.0 and fixed["per_predicate@100"] == {"p0": 100.0, "p11": 100.0}


def test_fixed_ranks_by_sum_logprob(tmp_path):
    questions = pred_cls_questions(tmp_path)[:1]
    record = {"question_id": "q1", "text": ["p1", "p0"], "scores": [-1.0, -2.0], "sum_logprobs": [-5.0, -3.0]}
    official = score(tmp_path, "psg_pred_cls", questions, {"q1": record})
    fixed = score(tmp_path, "psg_pred_cls", questions, {"q1": record}, protocol="fixed")
    assert official["recall@20"] == 0.0  # 2 candidates, the last (p0) dropped
    assert fixed["recall@20"] == 100.0


def test_ties_official_keeps_answer_order_fixed_breaks_them_by_id(tmp_path):
    # Two pairs, one candidate each, equal scores; K=20 keeps 19 upstream, so pad with 18 better candidates.
    questions = pred_cls_questions(tmp_path)
    pad = {"text": [f"p{i}" for i in range(1, 10)], "scores": [9.0] * 9}
    q1 = {"question_id": "q1", "text": ["p0", *pad["text"]], "scores": [1.0, *pad["scores"]]}
    q2 = {"question_id": "q2", "text": ["p11", *pad["text"]], "scores": [1.0, *pad["scores"]]}
    # 20 candidates; upstream keeps the first 19 by score: 18 at 9.0, then whichever 1.0 came first.
    first_q2 = score(tmp_path, "psg_pred_cls", questions, {"q2": q2, "q1": q1})
    first_q1 = score(tmp_path, "psg_pred_cls", questions, {"q1": q1, "q2": q2})
    assert first_q2["per_predicate@100"] != first_q1["per_predicate@100"]  # as upstream: answer order breaks ties
    assert first_q1["recall@20"] == first_q2["recall@20"] == 50.0
    assert score(tmp_path, "psg_pred_cls", questions[::-1], {"q1": q1, "q2": q2}) == first_q1
    fixed = [
        score(tmp_path, "psg_pred_cls", qs, answers, protocol="fixed")
        for qs in (questions, questions[::-1])
        for answers in ({"q2": q2, "q1": q1}, {"q1": q1, "q2": q2})
    ]
    assert all(result == fixed[0] for result in fixed)


def test_official_truncates_the_options_to_a_shorter_score_list_fixed_drops_the_line(tmp_path):
    questions = pred_cls_questions(tmp_path)[:1]
    record = {"question_id": "q1", "text": ["p0", "p1", "p2"], "scores": [3.0, 2.0]}
    official = score(tmp_path, "psg_pred_cls", questions, {"q1": record})
    fixed = score(tmp_path, "psg_pred_cls", questions, {"q1": record}, protocol="fixed")
    assert (official["recall@20"], official["invalid"]) == (100.0, 1)  # p0, p1 scored; the last (p1) dropped
    assert (fixed["recall@20"], fixed["invalid"]) == (0.0, 1)


def test_official_scores_a_partial_file_on_what_it_answers(tmp_path):
    questions = pred_cls_questions(tmp_path)
    answers = {"q1": {"question_id": "q1", **ranked(100.0, range(12))}}
    official = score(tmp_path, "psg_pred_cls", questions, answers)
    fixed = score(tmp_path, "psg_pred_cls", questions, answers, protocol="fixed")
    assert (official["recall@20"], fixed["recall@20"]) == (100.0, 50.0)


def test_pairs_compare_by_value_and_options_as_written(tmp_path):
    (tmp_path / "psg_pred_cls_options.json").write_text(json.dumps(["a"]))
    base = {"image": "img.jpg", "text": "?", "label_format": "{}"}
    # "a|b" + "c" and "a" + "b|c" are different pairs; a string key joined with "|" would merge them.
    questions = [
        {**base, "question_id": "q1", "correct_option": ["on"], "subj": "a|b", "obj": "c"},
        {**base, "question_id": "q2", "correct_option": ["in"], "subj": "a", "obj": "b|c"},
    ]
    answers = {
        "q1": {"question_id": "q1", "text": ["in", "x", "y"], "scores": [3.0, 2.0, 1.0]},
        "q2": {"question_id": "q2", "text": ["z", "w", "v"], "scores": [3.0, 2.0, 1.0]},
    }
    assert score(tmp_path, "psg_pred_cls", questions, answers)["recall@20"] == 0.0
    numbers = [{**base, "question_id": "q1", "correct_option": [3], "subj": 1, "obj": 2}]
    answer = {"q1": {"question_id": "q1", "text": [3, 4, 5], "scores": [True, 0.5, 0.1]}}
    result = score(tmp_path, "psg_pred_cls", numbers, answer)  # upstream ranks True as 1
    assert (result["recall@20"], result["invalid"], result["per_predicate@100"]) == (100.0, 0, {"3": 100.0})


def test_fixed_mean_recall_does_not_depend_on_the_order_of_the_predicates(tmp_path):
    # Recalls 4/15, 0/2, 5/8 and 1/3 of four predicates, one image each: a plain float sum of the four
    # fractions differs in its last bit between orders, enough to round 30.625 either way.
    (tmp_path / "psg_pred_cls_options.json").write_text(json.dumps(["p"]))
    plan = {"A": (15, 4), "B": (2, 0), "C": (8, 5), "D": (3, 1)}
    questions, answers = [], {}
    for predicate, (total, hits) in plan.items():
        for i in range(total):
            qid = f"{predicate}{i}"
            questions.append(
                {
                    "question_id": qid,
                    "image": predicate,
                    "text": "?",
                    "label_format": "{}",
                    "correct_option": [predicate],
                    "subj": i,
                    "obj": i,
                }
            )
            answers[qid] = {"question_id": qid, "text": [predicate if i < hits else "x"], "sum_logprobs": [0.0]}
    by_image = {p: [q for q in questions if q["image"] == p] for p in plan}
    results = {
        score(tmp_path, "psg_pred_cls", [q for p in order for q in by_image[p]], answers, protocol="fixed")[
            "mean_recall@20"
        ]
        for order in ("ABCD", "ABDC", "DCBA", "CADB")
    }
    assert len(results) == 1


def test_official_vcr_leaves_other_categories_aside_as_upstream_fixed_refuses_them(tmp_path):
    questions = [vcr_row("1-qa", "qa", "A"), vcr_row("1-qar", "qar", "B"), vcr_row("1-x", "other", "C")]
    answers = {"1-qa": "A", "1-qar": "B", "1-x": "A"}
    assert score(tmp_path, "vcr", questions, answers)["q2ar"] == 100.0
    with pytest.raises(EvalError, match="category 'other' is neither qa nor qar"):
        score(tmp_path, "vcr", questions, answers, protocol="fixed")
