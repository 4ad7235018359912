"""VCR pairs qa and qar by id (not by order); predicate classification Recall@K with and without the K-1 quirk."""

import json

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
    answers = {"1-qa": "A", "2-qa": "B", "1-qar": "D", "2-qar": "A"}
    result = score(tmp_path, "vcr", questions, answers)
    assert (result["q2a"], result["qa2r"], result["q2ar"], result["pairs"]) == (100.0, 50.0, 50.0, 2)


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
    result = score(tmp_path, "vcr", [vcr_row("1-qa", "qa", "A"), vcr_row("1-qar", "qar", "B")], {})
    assert (result["q2a"], result["q2ar"], result["coverage"]) == (0.0, 0.0, 0.0)


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
