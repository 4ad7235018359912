"""VQAv2, VizWiz, TextVQA and GQA scored by hand: consensus over leave-one-out subsets, the normalisers, where the
protocols differ, unreadable and missing answers, the order of lines, annotation files against in-record truth,
and the submission files."""

import json
import random

import pytest

from allseeing.eval.metrics.vqa import (
    consensus,
    evalai_answer,
    gqa_answer,
    normalised_consensus,
    vizwiz_official,
    vqa_api_answer,
    vqav2_official,
)
from allseeing.eval.task import EvalError, ScoreContext, index_predictions, key
from allseeing.eval.tasks.gqa import Gqa
from allseeing.eval.tasks.textvqa import TextVqa, question_of
from allseeing.eval.tasks.vqa import VizWiz, Vqav2, write_submission
from tests.eval.helpers import write_jsonl

SUFFIX = "\nAnswer the question using a single word or phrase."


def score(tmp_path, task, questions, answers, protocol="official", annotations=None):
    """Score ``answers`` ({question_id: text or record}, in that order) as ``eval score`` would."""
    path = write_jsonl(tmp_path / "questions.jsonl", questions)
    records = [a if isinstance(a, dict) else {"question_id": i, "text": a} for i, a in answers.items()]
    options = {}
    if annotations is not None:
        options["annotations"] = tmp_path / "annotations.json"
        options["annotations"].write_text(json.dumps(annotations))
    context = ScoreContext(path, protocol, options=options)
    answers_path = write_jsonl(tmp_path / "predictions.jsonl", records)
    read = (
        task.read_predictions(answers_path) if isinstance(task, TextVqa) else index_predictions(records, answers_path)
    )
    return task.score(task.read_questions(path), read, context)


def shuffled(items, seed):
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


# --- consensus and the normalisers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("givers", "expected"),
    [
        (0, 0.0),
        # the giver left out: 0 of 9 match -> 0; each of the 9 others left out: 1 of 9 -> 1/3; (9 * 1/3) / 10
        (1, 0.3),
        # 2 givers left out: 1 match -> 1/3 each; 8 others: 2 matches -> 2/3 each; (2/3 + 16/3) / 10 = 0.6
        (2, 0.6),
        # 3 givers left out: 2 matches -> 2/3 each; 7 others: 3 matches -> 1 each; (2 + 7) / 10 = 0.9
        (3, 0.9),
        (4, 1.0),  # every subset of 9 holds at least 3 givers
        (10, 1.0),
    ],
)
def test_consensus_is_the_mean_over_the_ten_subsets_of_nine(givers, expected):
    humans = ["red"] * givers + ["blue"] * (10 - givers)
    assert consensus("red", humans) == pytest.approx(expected)
    assert consensus("red", list(reversed(humans))) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("answer", "normalised"),
    [
        ("yes.", "yes"),
        ("Yes", "yes"),
        ("two", "2"),
        ("Two dogs", "2 dogs"),
        ("none", "0"),
        ("the cat", "cat"),
        ("A man", "man"),
        ("dont", "don't"),
        ("isnt it", "isn't it"),
        ("3.5", "3.5"),  # a period before a digit stays
        ("1,000", "1000"),
        ("black and white!", "black and white"),
        ("red-blue", "red blue"),  # a mark touching no space becomes one
        ("red - blue", "red blue"),  # a mark touching a space goes
        ("  left\n", "left"),
    ],
)
def test_the_evalai_answer_processor(answer, normalised):
    assert evalai_answer(answer) == normalised


def test_the_vqa_api_normaliser_keeps_commas_evalai_drops():
    assert vqa_api_answer("red, white") == "red white"  # ", " touches a space: removed
    assert vqa_api_answer("1,000") == "1000"  # a digit-comma-digit: every mark removed
    assert evalai_answer("it's red") == "it 's red" and vqa_api_answer("it's red") == "it's red"


def test_at_most_32_periods_go_as_upstreams_sub_count():
    assert vqa_api_answer("a." * 40 + "b") == "a" * 32 + "a.a.a.a.a.a.a.a.b"


def test_vqav2_official_compares_unanimous_humans_as_written_fixed_normalises_both_sides():
    humans = ["two"] * 10  # unanimous, and not as the VQA API writes numbers
    assert vqav2_official("two", humans) == 0.0  # the upload says "2"; unanimous humans are not normalised
    assert normalised_consensus("two", humans) == 1.0
    assert vqav2_official("Yes.", ["yes"] * 10) == 1.0  # the upload is "yes"
    assert vqav2_official("Red.", ["red"] * 2 + ["Blue"] * 8) == pytest.approx(0.6)


def test_vizwiz_official_never_normalises_the_humans():
    humans = ["coffee."] * 3 + ["tea"] * 7
    assert vizwiz_official("Coffee", humans) == 0.0
    assert normalised_consensus("Coffee", humans) == pytest.approx(0.9)


def test_gqa_answer_is_stripped_cut_of_final_periods_and_lowered():
    assert gqa_answer(" Yes.\n") == "yes"
    assert gqa_answer("The left..") == "the left"  # articles stay: GQA compares exactly


# --- VQAv2 and VizWiz ----------------------------------------------------------------------------------------------

VQAV2_TRUTH = {
    1: (["2"] * 10, "number"),
    2: (["red"] * 2 + ["blue"] * 8, "other"),
    3: (["cat"] + ["dog"] * 9, "other"),
    4: (["yes"] * 10, "yes/no"),
}
VQAV2_ANSWERS = {1: "two", 2: "Red.", 3: "a cat", 4: "no"}  # 1.0, 0.6, 0.3, 0.0


def vqav2_questions(in_record=True):
    return [
        {"question_id": qid, "image": f"COCO_val2014_{qid:012d}.jpg", "text": f"Question {qid}?{SUFFIX}"}
        | ({"answers": answers, "answer_type": kind} if in_record else {})
        for qid, (answers, kind) in VQAV2_TRUTH.items()
    ]


def vqav2_annotations():
    return {
        "annotations": [
            {
                "question_id": qid,
                "answer_type": kind,
                "answers": [
                    {"answer": a, "answer_confidence": "yes", "answer_id": n + 1} for n, a in enumerate(answers)
                ],
            }
            for qid, (answers, kind) in reversed(VQAV2_TRUTH.items())
        ]
    }


def test_vqav2_by_hand(tmp_path):
    result = score(tmp_path, Vqav2(), vqav2_questions(), VQAV2_ANSWERS)
    assert result["accuracy"] == 47.5  # (1 + 0.6 + 0.3 + 0) / 4
    assert result["per_answer_type"] == {"number": 100.0, "other": 45.0, "yes/no": 0.0}
    assert (result["asked"], result["answered"], result["invalid"]) == (4, 4, 0)


@pytest.mark.parametrize("protocol", ["official", "fixed"])
def test_vqav2_annotation_file_and_in_record_truth_score_alike(tmp_path, protocol):
    in_record = score(tmp_path, Vqav2(), vqav2_questions(), VQAV2_ANSWERS, protocol)
    annotated = score(tmp_path, Vqav2(), vqav2_questions(False), VQAV2_ANSWERS, protocol, vqav2_annotations())
    assert annotated == in_record and annotated["accuracy"] == 47.5


def test_vqav2_protocols_differ_on_unanimous_humans_written_otherwise(tmp_path):
    questions = [{"question_id": 7, "image": "x.jpg", "text": "How many?", "answers": ["two"] * 10}]
    assert score(tmp_path, Vqav2(), questions, {7: "Two"})["accuracy"] == 0.0
    assert score(tmp_path, Vqav2(), questions, {7: "Two"}, "fixed")["accuracy"] == 100.0


@pytest.mark.parametrize("protocol", ["official", "fixed"])
def test_vqav2_missing_and_unreadable_answers_are_wrong_and_reported(tmp_path, protocol):
    answers = {1: "2", 2: {"question_id": 2, "text": None}, 3: "."}  # 4 unanswered; "." leaves nothing
    result = score(tmp_path, Vqav2(), vqav2_questions(), answers, protocol)
    assert result["accuracy"] == 25.0  # LLaVA uploads "" for an unanswered question: 1 / 4 either way
    assert (result["answered"], result["coverage"], result["invalid"], result["unreadable"]) == (3, 75.0, 2, 1)


@pytest.mark.parametrize("protocol", ["official", "fixed"])
def test_vqav2_and_vizwiz_do_not_depend_on_the_order_of_either_file(tmp_path, protocol):
    expected = score(tmp_path, Vqav2(), vqav2_questions(False), VQAV2_ANSWERS, protocol, vqav2_annotations())
    for seed in range(4):
        answers = dict(shuffled(VQAV2_ANSWERS.items(), seed))
        questions = shuffled(vqav2_questions(False), seed + 10)
        assert score(tmp_path, Vqav2(), questions, answers, protocol, vqav2_annotations()) == expected
    expected = score(tmp_path, VizWiz(), vizwiz_questions(), VIZWIZ_ANSWERS, protocol, vizwiz_annotations())
    for seed in range(4):
        answers = dict(shuffled(VIZWIZ_ANSWERS.items(), seed))
        questions = shuffled(vizwiz_questions(), seed)
        assert score(tmp_path, VizWiz(), questions, answers, protocol, vizwiz_annotations()) == expected


VIZWIZ_TRUTH = {
    "VizWiz_val_00000000.jpg": (["unanswerable"] * 10, "unanswerable"),
    "VizWiz_val_00000001.jpg": (["coffee."] * 3 + ["tea"] * 7, "other"),
    "VizWiz_val_00000002.jpg": (["yes"] * 4 + ["no"] * 6, "yes/no"),
}
VIZWIZ_ANSWERS = {0: "Unanswerable", 1: "Coffee", 2: "no"}


def vizwiz_questions():
    return [
        {"question_id": n, "image": image, "text": f"What is this?{SUFFIX}"} for n, image in enumerate(VIZWIZ_TRUTH)
    ]


def vizwiz_annotations():
    return [
        {"image": image, "question": "What is this?", "answers": [{"answer": a, "answer_confidence": "yes"} for a in answers],
         "answer_type": kind, "answerable": int(kind != "unanswerable")}
        for image, (answers, kind) in VIZWIZ_TRUTH.items()
    ]  # fmt: skip


def test_vizwiz_by_hand_paired_by_image(tmp_path):
    official = score(tmp_path, VizWiz(), vizwiz_questions(), VIZWIZ_ANSWERS, annotations=vizwiz_annotations())
    assert official["accuracy"] == 66.67  # (1 + 0 + 1) / 3: "coffee" is not the humans' "coffee."
    assert official["per_answer_type"] == {"other": 0.0, "unanswerable": 100.0, "yes/no": 100.0}
    fixed = score(tmp_path, VizWiz(), vizwiz_questions(), VIZWIZ_ANSWERS, "fixed", vizwiz_annotations())
    assert fixed["accuracy"] == 96.67  # (1 + 0.9 + 1) / 3
    in_record = [q | {"answers": VIZWIZ_TRUTH[q["image"]][0]} for q in vizwiz_questions()]
    assert score(tmp_path, VizWiz(), in_record, VIZWIZ_ANSWERS, "fixed")["accuracy"] == 96.67


def test_missing_truth_is_a_clear_error(tmp_path):
    questions = [{"question_id": 1, "image": "x.jpg", "text": "What?"}]
    with pytest.raises(EvalError, match=r"question '1' has no 'answers' and no --annotations"):
        score(tmp_path, Vqav2(), questions, {1: "yes"})
    with pytest.raises(EvalError, match=r"no vqav2 annotation for question '1'"):
        score(tmp_path, Vqav2(), questions, {1: "yes"}, annotations={"annotations": []})
    with pytest.raises(EvalError, match=r"question '1' has no 'answer' and no --annotations"):
        score(tmp_path, Gqa(), questions, {1: "yes"})
    with pytest.raises(EvalError, match=r"'answers' must be a non-empty list"):
        score(tmp_path, Vqav2(), [questions[0] | {"answers": "yes"}], {1: "yes"})


def test_asks_are_the_image_and_the_text_with_a_budget_of_128(tmp_path):
    for task in (Vqav2(), VizWiz(), TextVqa(), Gqa()):
        path = write_jsonl(tmp_path / "q.jsonl", [{"question_id": 5, "image": "a.jpg", "text": f"What?{SUFFIX}"}])
        (ask,) = task.asks(task.read_questions(path), path)
        assert (ask.question_id, ask.image, ask.turns) == ("5", "a.jpg", ((f"<image>\nWhat?{SUFFIX}", None),))
        assert task.max_new_tokens == 128 and not task.ranks_options


# --- TextVQA -------------------------------------------------------------------------------------------------------


def ocr_question(image, question, tokens=None):
    text = question + (f"\nReference OCR token: {tokens}" if tokens else "") + SUFFIX
    return {"question_id": image, "image": f"{image}.jpg", "text": text}


TEXTVQA_QUESTIONS = [
    ocr_question("img1", "What brand?", "Nikon, F"),
    ocr_question("img1", "what year?", "1999"),  # LLaVA's file repeats the image id as question_id
    ocr_question("img2", "what is written?"),
]
TEXTVQA_DATA = [
    {"question_id": 10, "image_id": "img1", "question": "what brand?", "answers": ["nikon"] * 10},
    {"question_id": 11, "image_id": "img1", "question": "What year?", "answers": ["1999"] * 2 + ["1998"] * 8},
    {"question_id": 12, "image_id": "img2", "question": "what is written?", "answers": ["stop"] * 3 + ["go"] * 7},
]
TEXTVQA_ANSWERS = {"img1#1": "Nikon", "img1#2": "1999"}  # 1.0 and 0.6; img2 unanswered


def test_textvqa_numbers_repeated_ids_by_text_whatever_the_line_order(tmp_path):
    for questions in (TEXTVQA_QUESTIONS, TEXTVQA_QUESTIONS[::-1]):
        path = write_jsonl(tmp_path / "q.jsonl", questions)
        read = {q["question_id"]: (q["source_question_id"] if "#" in q["question_id"] else None, q["text"][:11])
                for q in TextVqa().read_questions(path)}  # fmt: skip
        assert read == {
            "img1#1": ("img1", "What brand?"),
            "img1#2": ("img1", "what year?\n"),
            "img2": (None, "what is wri"),
        }


def test_textvqa_reads_llavas_answer_file_with_its_repeated_ids(tmp_path):
    # model_vqa_loader writes the question's id and its text as "prompt"; lines in any order
    upstream = {n: {"question_id": q["question_id"], "prompt": q["text"], "text": a}
                for n, (q, a) in enumerate(zip(TEXTVQA_QUESTIONS, ["nikon", "1999", "go"], strict=True))}  # fmt: skip
    ours = {"img1#1": "nikon", "img1#2": "1999", "img2": "go"}
    for protocol in ("official", "fixed"):
        expected = score(tmp_path, TextVqa(), TEXTVQA_QUESTIONS, ours, protocol, {"data": TEXTVQA_DATA})
        assert expected["accuracy"] == 86.67  # (1 + 0.6 + 1) / 3
        assert score(tmp_path, TextVqa(), TEXTVQA_QUESTIONS, upstream, protocol, {"data": TEXTVQA_DATA}) == expected
        reordered = dict(shuffled(upstream.items(), 1))
        assert (
            score(tmp_path, TextVqa(), TEXTVQA_QUESTIONS, reordered, "fixed", {"data": TEXTVQA_DATA})["accuracy"]
            == 86.67
        )
    unprompted = [{"question_id": "img1", "text": "x"}] * 2
    with pytest.raises(EvalError, match=r"question_id 'img1' repeats and a line of it has no 'prompt'"):
        TextVqa().read_predictions(write_jsonl(tmp_path / "answers.jsonl", unprompted))


def test_textvqa_reads_the_question_as_upstreams_prompt_processor():
    assert question_of(f"What brand?\nReference OCR token: A, B{SUFFIX}") == "what brand?"
    assert question_of(f"Reference OCR token: A\nWhat brand?{SUFFIX}") == "what brand?"
    assert question_of(f"What brand?{SUFFIX}") == "what brand?"
    assert question_of("OCR tokens: a, b. Question: What brand? Short answer:") == "what brand?"
    assert question_of("What brand?") is None  # upstream's assert


def test_textvqa_by_hand_official_scores_the_answered_fixed_all(tmp_path):
    data = {"data": TEXTVQA_DATA}
    official = score(tmp_path, TextVqa(), TEXTVQA_QUESTIONS, TEXTVQA_ANSWERS, annotations=data)
    assert official["accuracy"] == 80.0  # (1 + 0.6) / 2
    fixed = score(tmp_path, TextVqa(), TEXTVQA_QUESTIONS, TEXTVQA_ANSWERS, "fixed", data)
    assert fixed["accuracy"] == 53.33  # (1 + 0.6 + 0) / 3
    assert (fixed["asked"], fixed["answered"], fixed["coverage"]) == (3, 2, 66.67)


def test_textvqa_in_record_truth_scores_as_the_annotation_file(tmp_path):
    answers = {(d["image_id"], d["question"].lower()): d["answers"] for d in TEXTVQA_DATA}
    in_record = [q | {"answers": answers[(q["question_id"], question_of(q["text"]))]} for q in TEXTVQA_QUESTIONS]
    for protocol in ("official", "fixed"):
        expected = score(tmp_path, TextVqa(), TEXTVQA_QUESTIONS, TEXTVQA_ANSWERS, protocol, {"data": TEXTVQA_DATA})
        assert score(tmp_path, TextVqa(), in_record, TEXTVQA_ANSWERS, protocol) == expected


def test_textvqa_shared_pairs_official_takes_the_last_annotation_fixed_one_each(tmp_path):
    questions = [ocr_question("img3", "what is it?", "CUP")] * 2  # asked twice, word for word
    data = {"data": [
        {"image_id": "img3", "question": "what is it?", "answers": ["cup"] * 10},
        {"image_id": "img3", "question": "what is it?", "answers": ["mug"] * 10},
    ]}  # fmt: skip
    answers = {"img3#1": "cup", "img3#2": "cup"}
    assert score(tmp_path, TextVqa(), questions, answers, annotations=data)["accuracy"] == 0.0  # both against "mug"
    assert score(tmp_path, TextVqa(), questions, answers, "fixed", data)["accuracy"] == 50.0


def test_textvqa_official_takes_question_id_as_the_image_id_fixed_reads_the_image(tmp_path):
    questions = [{"question_id": 34602, "image": "img1.jpg", "text": f"what brand?{SUFFIX}"}]
    data = {"data": TEXTVQA_DATA}
    with pytest.raises(EvalError, match=r"no annotation with image_id '34602' and question 'what brand\?'"):
        score(tmp_path, TextVqa(), questions, {34602: "nikon"}, annotations=data)
    assert score(tmp_path, TextVqa(), questions, {34602: "nikon"}, "fixed", data)["accuracy"] == 100.0


def test_textvqa_unreadable_and_empty_answers_are_wrong_and_invalid(tmp_path):
    answers = {"img1#1": {"question_id": "img1#1", "text": ["nikon"]}, "img1#2": "", "img2": "STOP!"}
    result = score(tmp_path, TextVqa(), TEXTVQA_QUESTIONS, answers, "fixed", {"data": TEXTVQA_DATA})
    assert result["accuracy"] == 30.0  # (0 + 0 + 0.9) / 3
    assert (result["invalid"], result["unreadable"]) == (2, 1)


def test_textvqa_fixed_does_not_depend_on_the_order_of_either_file(tmp_path):
    answers = TEXTVQA_ANSWERS | {"img2": "go"}
    for protocol in ("official", "fixed"):
        expected = score(tmp_path, TextVqa(), TEXTVQA_QUESTIONS, answers, protocol, {"data": TEXTVQA_DATA})
        for seed in range(4):
            questions = shuffled(TEXTVQA_QUESTIONS, seed)
            either = dict(shuffled(answers.items(), seed)) if protocol == "fixed" else answers
            assert score(tmp_path, TextVqa(), questions, either, protocol, {"data": TEXTVQA_DATA}) == expected


# --- GQA -----------------------------------------------------------------------------------------------------------

GQA_TRUTH = {
    "201": {"answer": "yes", "types": {"structural": "verify", "semantic": "attr", "detailed": "verifyAttr"}},
    "202": {"answer": "left", "types": {"structural": "query", "semantic": "rel", "detailed": "relS"}},
    "203": {"answer": "no", "types": {"structural": "logical", "semantic": "obj", "detailed": "logicOr"}},
    "204": {"answer": "red", "types": {"structural": "query", "semantic": "attr", "detailed": "color"}},
}
GQA_ANSWERS = {"201": "Yes.", "202": " Left", "203": "yes", "204": "Red"}


def gqa_questions(in_record=False):
    return [
        {"question_id": qid, "image": "n1.jpg", "text": f"Q{qid}?{SUFFIX}"}
        | ({"answer": truth["answer"], "types": truth["types"]} if in_record else {})
        for qid, truth in GQA_TRUTH.items()
    ]


def test_gqa_by_hand_with_the_types_eval_py_prints(tmp_path):
    result = score(tmp_path, Gqa(), gqa_questions(), GQA_ANSWERS, annotations=GQA_TRUTH)
    assert result["accuracy"] == 75.0  # 201, 202, 204 right ("Yes." -> "yes", " Left" -> "left"), 203 wrong
    assert (result["binary"], result["open"]) == (50.0, 100.0)  # binary: 201, 203; open (query): 202, 204
    assert result["per_structural"] == {"logical": 0.0, "query": 100.0, "verify": 100.0}
    assert result["per_semantic"] == {"attr": 100.0, "obj": 0.0, "rel": 100.0}
    assert score(tmp_path, Gqa(), gqa_questions(), GQA_ANSWERS, "fixed", GQA_TRUTH) == result | {"protocol": "fixed"}


def test_gqa_in_record_truth_and_unbalanced_questions(tmp_path):
    expected = score(tmp_path, Gqa(), gqa_questions(), GQA_ANSWERS, annotations=GQA_TRUTH)
    assert score(tmp_path, Gqa(), gqa_questions(in_record=True), GQA_ANSWERS) == expected
    unbalanced = {q: t | {"isBalanced": q != "204"} for q, t in GQA_TRUTH.items()}
    result = score(tmp_path, Gqa(), gqa_questions(), GQA_ANSWERS, annotations=unbalanced)
    assert (result["accuracy"], result["open"]) == (66.67, 100.0)  # 204 left out as eval.py does


def test_gqa_missing_and_unreadable_answers_are_wrong(tmp_path):
    answers = {"201": "yes", "202": {"question_id": "202", "text": 3}, "203": "."}
    result = score(tmp_path, Gqa(), gqa_questions(), answers, annotations=GQA_TRUTH)
    assert result["accuracy"] == 25.0  # eval.py stops on 204 unanswered; here it counts as wrong
    assert (result["invalid"], result["unreadable"], result["coverage"]) == (2, 1, 75.0)


def test_gqa_does_not_depend_on_the_order_of_either_file(tmp_path):
    expected = score(tmp_path, Gqa(), gqa_questions(), GQA_ANSWERS, annotations=GQA_TRUTH)
    for seed in range(4):
        questions, answers = shuffled(gqa_questions(), seed), dict(shuffled(GQA_ANSWERS.items(), seed))
        assert score(tmp_path, Gqa(), questions, answers, annotations=GQA_TRUTH) == expected


# --- submission files ----------------------------------------------------------------------------------------------


def by_id(answers):
    return {key(i): {"question_id": i, "text": a} for i, a in answers.items()}


def test_vqav2_submission_answers_every_question_once_as_llava_uploads(tmp_path):
    out = tmp_path / "upload" / "vqav2.json"
    summary = write_submission("vqav2", vqav2_questions(False), by_id(VQAV2_ANSWERS), out)
    expected = [{"question_id": 1, "answer": "2"}, {"question_id": 2, "answer": "red"},
                {"question_id": 3, "answer": "cat"}, {"question_id": 4, "answer": "no"}]  # fmt: skip
    assert out.read_text() == json.dumps(expected)
    assert (summary["entries"], summary["answered"]) == (4, 4)


def test_vqav2_submission_padded_to_test2015_as_llava_does(tmp_path):
    test2015 = [{"question_id": n, "image": "x.jpg", "text": "?"} for n in (9, 3, 1, 2, 4)]
    write_submission("vqav2", vqav2_questions(False)[:2], by_id({1: "Yes", 2: "Two"}), tmp_path / "s.json", test2015)
    answers = [(e["question_id"], e["answer"]) for e in json.loads((tmp_path / "s.json").read_text())]
    assert answers == [(9, ""), (3, ""), (1, "yes"), (2, "2"), (4, "")]


def test_vizwiz_submission_is_keyed_by_image(tmp_path):
    questions = [{"question_id": n, "image": f"VizWiz_test_{n:08d}.jpg", "text": "?"} for n in range(2)]
    write_submission("vizwiz", questions, by_id({0: "Unanswerable.", 1: "a red can"}), tmp_path / "v.json")
    assert json.loads((tmp_path / "v.json").read_text()) == [
        {"image": "VizWiz_test_00000000.jpg", "answer": "unanswerable"},
        {"image": "VizWiz_test_00000001.jpg", "answer": "red can"},
    ]


def test_an_incomplete_submission_is_refused_naming_how_many_and_one(tmp_path):
    out = tmp_path / "s.json"
    with pytest.raises(EvalError, match=r"2 of 4 questions have no answer, e.g. question_id '2'"):
        write_submission("vqav2", vqav2_questions(False), by_id({1: "yes", 3: "no"}), out)
    with pytest.raises(EvalError, match=r"1 answers are not text, e.g. question_id '0'"):
        write_submission("vizwiz", vizwiz_questions()[:1], by_id({0: None}), out)
    with pytest.raises(EvalError, match=r"1 answers to questions not in the question file, e.g. question_id '8'"):
        write_submission("vqav2", vqav2_questions(False)[:1], by_id({1: "yes", 8: "no"}), out)
    with pytest.raises(EvalError, match=r"gqa has no submission file"):
        write_submission("gqa", gqa_questions(), by_id(GQA_ANSWERS), out)
    assert not out.exists()
