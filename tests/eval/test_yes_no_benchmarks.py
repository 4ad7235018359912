"""POPE and MME scoring by hand: answer readings, confusion matrices and F1, acc and acc+, the sums, what the
order of the files does (upstream pairs by position), the truth from annotation files or from the questions."""

import random

import pytest

from allseeing.eval.metrics.yes_no import NO, OTHER, YES, mme_reading, pope_reading
from allseeing.eval.task import EvalError, ScoreContext, index_predictions, read_jsonl
from allseeing.eval.tasks.mme import Mme
from allseeing.eval.tasks.pope import Pope
from tests.eval.helpers import write_jsonl

SUFFIX = "\nAnswer the question using a single word or phrase."


def run(tmp_path, task, questions, answers, protocol="official", annotations=None):
    """Score ``answers`` (a list of (question_id, text or None), in file order) as ``allseeing eval score`` would."""
    q = write_jsonl(tmp_path / "questions.jsonl", questions)
    p = write_jsonl(tmp_path / "predictions.jsonl", [{"question_id": i, "text": t} for i, t in answers])
    read = task.read_predictions(p) if isinstance(task, Mme) else index_predictions(read_jsonl(p), p)
    options = {} if annotations is None else {"annotations": str(annotations)}
    return task.score(task.read_questions(q), read, ScoreContext(q, protocol, options=options))


# ---------------------------------------------------------------- POPE


def pope_question(qid, label, category="adversarial", image="a.jpg", thing=None):
    question = {
        "question_id": qid,
        "image": image,
        "text": f"Is there a {thing or qid} in the image?{SUFFIX}",
        "category": category,
    }
    return question if label is None else {**question, "label": label}


@pytest.mark.parametrize(
    ("answer", "official", "fixed"),
    [
        ("No, there is not.", NO, NO),
        ("Yes.", YES, YES),
        ("", YES, None),  # eval_pope.py reads an empty answer as yes; fixed: unreadable, wrong
        ("There is no dog.", NO, NO),
        ("Yes. No.", YES, YES),  # the first sentence only
        ("I don't know", YES, YES),
        ("Not at all", YES, NO),  # "Not" is not among eval_pope.py's words
        ("NO", YES, NO),
        ("No!", YES, NO),
        ("No\nthere is none", YES, NO),  # eval_pope.py splits at spaces only
        ("No,there", YES, NO),  # commas are removed, not made spaces
        (".", YES, None),
    ],
)
def test_pope_reading(answer, official, fixed):
    assert pope_reading(answer, official=True) == official
    assert pope_reading(answer, official=False) == fixed


# adversarial: 8 questions, the last unanswered; popular: 6.
POPE_QUESTIONS = [
    pope_question(1, "yes"),
    pope_question(2, "yes"),
    pope_question(3, "no"),
    pope_question(4, "no"),
    pope_question(5, "yes"),
    pope_question(6, "yes"),
    pope_question(7, "no"),
    pope_question(8, "no"),
] + [pope_question(10 + i, label, "popular") for i, label in enumerate(["yes", "yes", "yes", "no", "no", "no"])]
POPE_ANSWERS = [
    (1, "Yes."),  # TP
    (2, "No, there is not."),  # FN
    (3, "No"),  # TN
    (4, "Yes"),  # FP
    (5, "yes, there is a dog"),  # TP
    (6, ""),  # official: yes, TP; fixed: unreadable, FN
    (7, "There is no cat."),  # TN
    (10, "Yes"),  # TP
    (11, "Yes"),  # TP
    (12, "No"),  # FN
    (13, "Yes"),  # FP
    (14, "Yes"),  # FP
    (15, "Yes"),  # FP
]


def test_pope_official_confusion_by_hand(tmp_path):
    result = run(tmp_path, Pope(), POPE_QUESTIONS, POPE_ANSWERS)
    adversarial, popular = result["splits"]["adversarial"], result["splits"]["popular"]
    # adversarial, 7 answered: TP 3 (1, 5, 6), FP 1 (4), TN 2 (3, 7), FN 1 (2).
    assert (adversarial["tp"], adversarial["fp"], adversarial["tn"], adversarial["fn"]) == (3, 1, 2, 1)
    assert adversarial["accuracy"] == 71.43  # 5/7
    assert (adversarial["precision"], adversarial["recall"], adversarial["f1"]) == (75.0, 75.0, 75.0)
    assert adversarial["yes_ratio"] == 57.14  # 4/7 (1, 4, 5, 6)
    # popular: TP 2, FN 1, FP 3, TN 0: P = 2/5, R = 2/3, F1 = 2PR/(P+R) = (8/15)/(16/15) = 1/2.
    assert (popular["tp"], popular["fp"], popular["tn"], popular["fn"]) == (2, 3, 0, 1)
    assert (popular["accuracy"], popular["precision"], popular["recall"]) == (33.33, 40.0, 66.67)
    assert (popular["f1"], popular["yes_ratio"]) == (50.0, 83.33)
    assert result["f1"] == 62.5  # (75 + 50) / 2
    assert result["accuracy"] == 52.38  # (5/7 + 1/3) / 2
    assert result["invalid"] == 1 and result["unreadable"] == 0  # the empty answer
    assert (result["asked"], result["answered"], result["mismatched"]) == (14, 13, 0)


def test_pope_fixed_counts_missing_and_empty_answers_wrong(tmp_path):
    result = run(tmp_path, Pope(), POPE_QUESTIONS, POPE_ANSWERS, "fixed")
    adversarial = result["splits"]["adversarial"]
    # 8 questions: TP 2 (1, 5), FN 2 (2, 6 empty), TN 2 (3, 7), FP 2 (4, 8 unanswered, label no).
    assert (adversarial["tp"], adversarial["fp"], adversarial["tn"], adversarial["fn"]) == (2, 2, 2, 2)
    assert (adversarial["accuracy"], adversarial["precision"], adversarial["recall"]) == (50.0, 50.0, 50.0)
    assert (adversarial["f1"], adversarial["yes_ratio"], adversarial["scored"]) == (50.0, 37.5, 8)  # yes: 3/8
    assert result["splits"]["popular"]["f1"] == 50.0
    assert (result["f1"], result["accuracy"]) == (50.0, 41.67)  # (1/2 + 1/3) / 2
    assert result["invalid"] == 1


def test_pope_llava_issue_626_random_split(tmp_path):
    # haotian-liu/LLaVA#626 prints LLaVA-1.5-7B on POPE random: TP 1183, FP 31, TN 1379, FN 317, F1 0.87177597...
    counts = {("yes", "Yes"): 1183, ("no", "Yes"): 31, ("no", "No"): 1379, ("yes", "No"): 317}
    questions, answers = [], []
    for (label, answer), n in counts.items():
        for _ in range(n):
            qid = len(questions) + 1
            questions.append(pope_question(qid, label, "random"))
            answers.append((qid, answer))
    result = run(tmp_path, Pope(), questions, answers)
    split = result["splits"]["random"]
    assert (split["accuracy"], split["precision"], split["recall"], split["f1"]) == (88.04, 97.45, 78.87, 87.18)
    assert split["yes_ratio"] == 41.72  # 1214/2910
    assert result["f1"] == 87.18


def write_annotations(folder, splits):
    folder.mkdir()
    for name, records in splits.items():
        write_jsonl(folder / f"coco_pope_{name}.json", records)
    return folder


def annotation(number, label, image="a.jpg", thing=None):
    return {
        "question_id": number,
        "image": image,
        "text": f"Is there a {thing or number} in the image?",
        "label": label,
    }


# LLaVA's numbering: random's questions are 10,000,000 + POPE's number.
ANNOTATED = [pope_question(n, None, thing=n) for n in (1, 2, 3, 4)] + [
    pope_question(10_000_000 + n, None, "random", thing=n) for n in (1, 2)
]
ANNOTATIONS = {
    "adversarial": [annotation(1, "yes"), annotation(2, "no"), annotation(3, "yes"), annotation(4, "no")],
    "random": [annotation(1, "yes"), annotation(2, "no")],
}
ANNOTATED_ANSWERS = [(1, "Yes"), (2, "No"), (3, "Yes"), (4, "Yes"), (10_000_001, "Yes"), (10_000_002, "No")]


def test_pope_annotation_files_pair_by_file_order_under_official(tmp_path):
    folder = write_annotations(tmp_path / "coco", ANNOTATIONS)
    in_order = run(tmp_path, Pope(), ANNOTATED, ANNOTATED_ANSWERS, annotations=folder)
    # adversarial: TP 2, TN 1, FP 1 (4): accuracy 3/4, P 2/3, R 1, F1 = (4/3)/(5/3) = 0.8; random: all right.
    assert in_order["splits"]["adversarial"]["f1"] == 80.0 and in_order["splits"]["adversarial"]["accuracy"] == 75.0
    assert in_order["splits"]["random"]["f1"] == 100.0
    assert in_order["f1"] == 90.0 and in_order["mismatched"] == 0
    assert run(tmp_path, Pope(), ANNOTATED, ANNOTATED_ANSWERS, "fixed", folder) == {**in_order, "protocol": "fixed"}


def test_pope_official_depends_on_the_prediction_order_and_fixed_does_not(tmp_path, capsys):
    folder = write_annotations(tmp_path / "coco", ANNOTATIONS)
    reordered = ANNOTATED_ANSWERS[3::-1] + ANNOTATED_ANSWERS[4:]  # adversarial's answers 4, 3, 2, 1
    official = run(tmp_path, Pope(), ANNOTATED, reordered, annotations=folder)
    # eval_pope.py zips the answers in file order with the labels in theirs: (Yes, yes) TP, (Yes, no) FP,
    # (No, yes) FN, (Yes, no) FP: accuracy 1/4, P 1/3, R 1/2, F1 = (1/3)/(5/6) = 0.4.
    adversarial = official["splits"]["adversarial"]
    assert (adversarial["tp"], adversarial["fp"], adversarial["tn"], adversarial["fn"]) == (1, 2, 0, 1)
    assert (adversarial["accuracy"], adversarial["f1"], adversarial["mismatched"]) == (25.0, 40.0, 4)
    assert official["f1"] == 70.0 and official["mismatched"] == 4
    assert "scored against another question's label" in capsys.readouterr().err
    fixed = run(tmp_path, Pope(), ANNOTATED, reordered, "fixed", folder)
    assert fixed["splits"]["adversarial"]["f1"] == 80.0 and fixed["f1"] == 90.0


def test_pope_official_partial_file_pairs_the_first_labels(tmp_path):
    folder = write_annotations(tmp_path / "coco", ANNOTATIONS)
    official = run(tmp_path, Pope(), ANNOTATED, ANNOTATED_ANSWERS[1:], annotations=folder)
    # answers 2, 3, 4 (No, Yes, Yes) against labels 1, 2, 3 (yes, no, yes): FN, FP, TP.
    adversarial = official["splits"]["adversarial"]
    assert (adversarial["tp"], adversarial["fp"], adversarial["fn"], adversarial["mismatched"]) == (1, 1, 1, 3)
    fixed = run(tmp_path, Pope(), ANNOTATED, ANNOTATED_ANSWERS[1:], "fixed", folder)
    # question 1 unanswered (label yes): FN; the rest as in order: TN 1, TP 1, FP 1.
    adversarial = fixed["splits"]["adversarial"]
    assert (adversarial["tp"], adversarial["fp"], adversarial["tn"], adversarial["fn"]) == (1, 1, 1, 1)


def test_pope_annotations_of_another_version(tmp_path, capsys):
    other = {**ANNOTATIONS, "random": [annotation(1, "yes"), annotation(2, "no", image="b.jpg")]}
    folder = write_annotations(tmp_path / "coco", other)
    official = run(tmp_path, Pope(), ANNOTATED, ANNOTATED_ANSWERS, annotations=folder)
    assert official["splits"]["random"]["mismatched"] == 1 and "another POPE version" in capsys.readouterr().err
    with pytest.raises(EvalError, match="another POPE version"):
        run(tmp_path, Pope(), ANNOTATED, ANNOTATED_ANSWERS, "fixed", folder)


def test_pope_truth_errors(tmp_path):
    with pytest.raises(EvalError, match="question 1 has no label"):
        run(tmp_path, Pope(), [pope_question(1, None)], [(1, "Yes")])
    with pytest.raises(EvalError, match="lacks category"):
        run(tmp_path, Pope(), [{"question_id": 1, "image": "a.jpg", "text": "Is there?", "label": "yes"}], [])
    with pytest.raises(EvalError, match="no POPE annotation file"):
        run(tmp_path, Pope(), [pope_question(1, None)], [(1, "Yes")], annotations=tmp_path)
    folder = write_annotations(tmp_path / "coco", {"random": [annotation(1, "yes")]})
    with pytest.raises(EvalError, match="no label in split 'adversarial'"):
        run(tmp_path, Pope(), [pope_question(1, None)], [(1, "Yes")], "fixed", folder)
    bad = write_annotations(tmp_path / "bad", {"adversarial": [annotation(1, "maybe")]})
    with pytest.raises(EvalError, match="'maybe' is not yes/no"):
        run(tmp_path, Pope(), [pope_question(1, None)], [(1, "Yes")], annotations=bad)


def test_pope_a_split_with_no_answers_and_a_non_text_answer(tmp_path):
    questions, answers = [*POPE_QUESTIONS[:2], pope_question(9, "yes", "random")], [(1, None), (2, "Yes")]
    result = run(tmp_path, Pope(), questions, answers)
    # official: answer 1 is not text (wrong: FN), answer 2 TP; random has no answer and is left out of the mean.
    adversarial = result["splits"]["adversarial"]
    assert (adversarial["tp"], adversarial["fn"], result["unreadable"], result["invalid"]) == (1, 1, 1, 1)
    assert result["splits"]["random"]["f1"] is None and result["f1"] == adversarial["f1"] == 66.67
    fixed = run(tmp_path, Pope(), questions, answers, "fixed")
    assert fixed["splits"]["random"]["fn"] == 1 and fixed["splits"]["random"]["f1"] == 0.0
    assert fixed["f1"] == 33.33  # (2/3 + 0) / 2


def test_pope_asks_the_question_as_written(tmp_path):
    (ask,) = Pope().asks([pope_question(1, "yes")], tmp_path / "q.jsonl")
    assert ask.question_id == "1" and ask.image == "a.jpg"
    assert ask.turns == ((f"<image>\nIs there a 1 in the image?{SUFFIX}", None),)


# ---------------------------------------------------------------- MME


@pytest.mark.parametrize(
    ("answer", "reading"),
    [
        ("Yes", YES),
        ("no", NO),
        ("Yes, there is.", YES),
        ("yes, no", YES),
        (" yes", YES),
        ("Not sure", NO),  # "not " holds "no"
        ("Nope", NO),
        ("Snow", NO),  # "snow" holds "no": calculation.py's rule
        ("The answer is yes", OTHER),  # only the first 4 characters count
        ("Unknown", OTHER),
        ("", OTHER),
    ],
)
def test_mme_reading(answer, reading):
    assert mme_reading(answer) == reading


def mme_question(image, n, answer, category="existence", qid=None):
    question = {
        "question_id": qid or f"{image}-{n}",
        "image": f"{category}/{image}.jpg",
        "text": f"Is there a thing {n} in this image?{SUFFIX}",
        "category": category,
    }
    return question if answer is None else {**question, "answer": answer}


# existence: images a, b, c (b's second answer wrong); count: image e (both right); code_reasoning: image d
# (an answer read as "other").
MME_QUESTIONS = [
    mme_question("a", 1, "Yes"),
    mme_question("a", 2, "No"),
    mme_question("b", 1, "Yes"),
    mme_question("b", 2, "No"),
    mme_question("c", 1, "Yes"),
    mme_question("c", 2, "No"),
    mme_question("e", 1, "Yes", "count"),
    mme_question("e", 2, "No", "count"),
    mme_question("d", 1, "Yes", "code_reasoning"),
    mme_question("d", 2, "No", "code_reasoning"),
]
MME_ANSWERS = [
    ("a-1", "Yes"),
    ("a-2", "No"),
    ("b-1", "Yes"),
    ("b-2", "Yes"),
    ("c-1", "Yes"),
    ("c-2", "No"),
    ("e-1", "Yes, there is."),
    ("e-2", "no"),
    ("d-1", "The answer is yes"),
    ("d-2", "No"),
]


@pytest.mark.parametrize("protocol", ["official", "fixed"])
def test_mme_acc_acc_plus_and_sums_by_hand(tmp_path, protocol):
    result = run(tmp_path, Mme(), MME_QUESTIONS, MME_ANSWERS, protocol)
    existence = result["subtasks"]["existence"]
    # 5 of 6 questions right; images a and c of 3 right: 83.33... + 66.66... = 150.
    assert (existence["accuracy"], existence["accuracy_plus"], existence["score"]) == (83.33, 66.67, 150.0)
    assert (existence["questions"], existence["images"], existence["other"]) == (6, 3, 0)
    assert result["subtasks"]["count"]["score"] == 200.0
    code = result["subtasks"]["code_reasoning"]
    assert (code["accuracy"], code["accuracy_plus"], code["score"], code["other"]) == (50.0, 0.0, 50.0, 1)
    assert result["perception"] == 350.0 and result["cognition"] == 50.0
    assert result["missing_subtasks"] == [
        "position",
        "color",
        "posters",
        "celebrity",
        "scene",
        "landmark",
        "artwork",
        "OCR",
        "commonsense_reasoning",
        "numerical_calculation",
        "text_translation",
    ]
    assert (result["other"], result["invalid"], result["mixed_pairs"]) == (1, 1, 0)
    assert result["grouping"] == ("position" if protocol == "official" else "image")


def llava_style(questions):
    """LLaVA's llava_mme.jsonl: an image's two questions share its path as their id."""
    return [{**{k: v for k, v in q.items() if k != "answer"}, "question_id": q["image"]} for q in questions]


def write_folder(root, questions, nested=(), double_space=()):
    """MME_Benchmark_release_version: answer files next to the images, or under questions_answers_YN/ where the
    subtask has an images/ folder."""
    for question in questions:
        subtask, file = question["image"].split("/")
        folder = root / subtask
        if subtask in nested:
            (folder / "images").mkdir(parents=True, exist_ok=True)
            folder = folder / "questions_answers_YN"
        folder.mkdir(parents=True, exist_ok=True)
        asked = question["text"].split("\n")[0]
        space = "  " if question["question_id"] in double_space else " "
        with (folder / (file.split(".")[0] + ".txt")).open("a") as out:
            out.write(f"{asked}{space}Please answer yes or no.\t{question['answer']}\n")
    return root


def test_mme_llava_files_and_mme_folder(tmp_path):
    folder = write_folder(
        tmp_path / "MME_Benchmark_release_version", MME_QUESTIONS, nested={"count"}, double_space={"a-2"}
    )
    questions = write_jsonl(tmp_path / "llava_mme.jsonl", llava_style(MME_QUESTIONS))
    read = Mme().read_questions(questions)
    assert read[0]["question_id"] == "existence/a.jpg#Is there a thing 1 in this image?"
    # LLaVA's answer file: the ids repeated, each answer's question in "prompt".
    by_id = {q["question_id"]: q for q in MME_QUESTIONS}
    answers = [
        {"question_id": by_id[i]["image"], "prompt": by_id[i]["text"], "text": text, "model_id": "m"}
        for i, text in MME_ANSWERS
    ]
    predictions = Mme().read_predictions(write_jsonl(tmp_path / "answers.jsonl", answers))
    context = ScoreContext(questions, "official", options={"annotations": str(folder)})
    result = Mme().score(read, predictions, context)
    assert (result["perception"], result["cognition"], result["answered"]) == (350.0, 50.0, 10)
    (ask,) = Mme().asks(read[:1], questions)
    assert ask.question_id == read[0]["question_id"] and ask.image == "existence/a.jpg"
    assert ask.turns == ((f"<image>\nIs there a thing 1 in this image?{SUFFIX}", None),)


def test_mme_official_pairs_by_position(tmp_path, capsys):
    # two images, each with one wrong answer: fixed acc+ is 0.
    questions = [mme_question(i, n, a) for i in "pq" for n, a in ((1, "Yes"), (2, "No"))]
    answers = [("p-1", "Yes"), ("q-1", "Yes"), ("p-2", "Yes"), ("q-2", "Yes")]
    official = run(tmp_path, Mme(), questions, answers)["subtasks"]["existence"]
    # calculation.py pairs lines 1-2 (p-1, q-1: both right) and 3-4 (both wrong): acc+ 1/2.
    assert (official["accuracy"], official["accuracy_plus"], official["score"]) == (50.0, 50.0, 100.0)
    assert "mix two images" in capsys.readouterr().err
    fixed = run(tmp_path, Mme(), questions, answers, "fixed")["subtasks"]["existence"]
    assert (fixed["accuracy"], fixed["accuracy_plus"], fixed["score"]) == (50.0, 0.0, 50.0)


def test_mme_partial_answer_files(tmp_path):
    # odd: calculation.py's assert fails; official pairs by image and counts the missing answer wrong.
    odd = run(tmp_path, Mme(), MME_QUESTIONS[:6], MME_ANSWERS[:5])
    assert odd["grouping"] == "image"
    assert (odd["subtasks"]["existence"]["accuracy"], odd["subtasks"]["existence"]["accuracy_plus"]) == (66.67, 33.33)
    # even: upstream pairs a-1/a-2 and b-1/c-1 (both right): 100 and 100, though b and c lack an answer.
    even = run(tmp_path, Mme(), MME_QUESTIONS[:6], [MME_ANSWERS[i] for i in (0, 1, 2, 4)])
    assert (even["subtasks"]["existence"]["score"], even["mixed_pairs"]) == (200.0, 1)
    fixed = run(tmp_path, Mme(), MME_QUESTIONS[:6], [MME_ANSWERS[i] for i in (0, 1, 2, 4)], "fixed")
    assert (fixed["subtasks"]["existence"]["accuracy"], fixed["subtasks"]["existence"]["accuracy_plus"]) == (
        66.67,
        33.33,
    )
    assert fixed["coverage"] == 66.67


def test_mme_truth_errors(tmp_path):
    with pytest.raises(EvalError, match="'answer' .*None is not Yes/No"):
        run(tmp_path, Mme(), [mme_question("a", 1, None)], [("a-1", "Yes")])
    with pytest.raises(EvalError, match="'Maybe' is not Yes/No"):
        run(tmp_path, Mme(), [mme_question("a", 1, "Maybe")], [("a-1", "Yes")])
    folder = write_folder(tmp_path / "MME", MME_QUESTIONS[:2])
    with pytest.raises(EvalError, match="no answer in count/e.txt"):
        run(tmp_path, Mme(), MME_QUESTIONS[:2] + MME_QUESTIONS[6:7], [], annotations=folder)
    twice = llava_style(MME_QUESTIONS[:1]) * 2
    with pytest.raises(EvalError, match="is there twice"):
        Mme().read_questions(write_jsonl(tmp_path / "twice.jsonl", twice))


# ---------------------------------------------------------------- both


def shuffled(records, seed):
    records = list(records)
    random.Random(seed).shuffle(records)
    return records


@pytest.mark.parametrize("seed", [1, 2])
def test_fixed_is_order_free_and_official_is_where_upstream_is(tmp_path, seed):
    pope_fixed = run(tmp_path, Pope(), POPE_QUESTIONS, POPE_ANSWERS, "fixed")
    assert run(tmp_path, Pope(), shuffled(POPE_QUESTIONS, seed), shuffled(POPE_ANSWERS, seed), "fixed") == pope_fixed
    mme_fixed = run(tmp_path, Mme(), MME_QUESTIONS, MME_ANSWERS, "fixed")
    assert run(tmp_path, Mme(), shuffled(MME_QUESTIONS, seed), shuffled(MME_ANSWERS, seed), "fixed") == mme_fixed
    # upstream reads the question file for categories (POPE) or not at all (MME): its order changes nothing.
    folder = write_annotations(tmp_path / "coco", ANNOTATIONS)
    pope = run(tmp_path, Pope(), ANNOTATED, ANNOTATED_ANSWERS, annotations=folder)
    assert run(tmp_path, Pope(), shuffled(ANNOTATED, seed), ANNOTATED_ANSWERS, annotations=folder) == pope
    mme = run(tmp_path, Mme(), MME_QUESTIONS, MME_ANSWERS)
    assert run(tmp_path, Mme(), shuffled(MME_QUESTIONS, seed), MME_ANSWERS) == mme
    # MME's accuracy is order-free upstream too (acc+ is not: test_mme_official_pairs_by_position).
    reordered = run(tmp_path, Mme(), MME_QUESTIONS, shuffled(MME_ANSWERS, seed))
    assert {n: s["accuracy"] for n, s in reordered["subtasks"].items()} == {
        n: s["accuracy"] for n, s in mme["subtasks"].items()
    }
