"""MMBench, MMBench-CN, SEED-Bench and ScienceQA-IMG by hand: the letters upstream's scorers read, MMBench's
circular groups, the prompts, the TSV with inline images, the submission file, and what the order of either file
does (nothing)."""

import base64
import csv
import io
import json
import random
import zipfile
from xml.etree import ElementTree

import pytest
from PIL import Image

from allseeing.eval.metrics.multiple_choice import can_infer, circular_hits, science_qa_choice, science_qa_letter
from allseeing.eval.task import EvalError, ScoreContext, key
from allseeing.eval.tasks.mmbench import Mmbench, MmbenchCn, write_submission
from allseeing.eval.tasks.seed import Seed
from allseeing.eval.tasks.sqa import ScienceQaImg
from tests.eval.helpers import write_jsonl

EN = "Answer with the option's letter from the given choices directly."


def png(color=(200, 10, 10)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), color).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def shuffled(items, seed=0):
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


# -- MMBench's letters -------------------------------------------------------------------------------------------
CHOICES = {"A": "cat", "B": "dog", "C": "two birds", "D": "a fish"}


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("A", "A"),
        ("A.", "A"),
        ("(B) cat", "B"),  # the letter wins over the text of option A
        ("The answer is C", "C"),
        ("**D**", "D"),
        ("dog", "B"),  # an option's text alone
        ("I see two birds.", "C"),
        ("", None),
        ("A or B", None),  # two letters
        ("a cat or a dog", None),  # two options' texts
        ("horse", None),
        ("Cannot determine the answer", "Z"),  # a refusal: a letter no answer has
        ("A dog", "A"),  # upstream's quirk: the article is the letter A
    ],
)
def test_mmbench_reads_letters_as_its_evaluator(answer, letter):
    assert can_infer(answer, CHOICES) == letter


def test_circular_hits_need_every_rotation():
    correct = {0: True, 1_000_000: True, 2_000_000: False, 3_000_000: True, 1: True, 1_000_001: True, 2: True}
    assert circular_hits(correct) == {0: False, 1: True, 2: True}
    assert circular_hits({1_000_005: True}) == {}  # a copy without its question row is not a question


# -- MMBench: the TSV, the prompt, the score ---------------------------------------------------------------------
COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source"]
COLUMNS += ["l2-category", "comment", "split"]


def row(index, answer, options, category="image_scene", l2="coarse_perception", hint="", question="What is it?"):
    cells = dict(zip("ABCD", [*options, "", "", "", ""][:4], strict=True))
    return {"index": index, "question": question, "hint": hint, **cells, "answer": answer, "category": category}, {
        "image": png(),
        "source": "s",
        "l2-category": l2,
        "comment": "",
        "split": "dev",
    }


def write_tsv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for first, rest in rows:
            cells = {**first, **rest}
            writer.writerow([cells.get(column, "") for column in COLUMNS])
    return path


def rotations(index, answer, options, **kwargs):
    """A question and its rotated copies (index + k * 1,000,000), each with its own correct letter."""
    rows = []
    for k in range(len(options)):
        rotated = options[k:] + options[:k]
        letter = "ABCD"[rotated.index(options["ABCD".index(answer)])]
        rows.append(row(index + k * 1_000_000, letter, rotated, **kwargs))
    return rows


# q0: 4 rotations; q1: 2 rotations (another category); q2: one row only
MMB_ROWS = (
    rotations(0, "B", ["cat", "dog", "bird", "fish"])
    + rotations(1, "A", ["yes", "no"], category="ocr", l2="finegrained_perception (instance-level)")
    + [row(2, "C", ["red", "green", "blue"])]
)


def mmb_score(tmp_path, answers, protocol="official", rows=MMB_ROWS, task=None, **options):
    task = task or Mmbench()
    path = write_tsv(tmp_path / "mmb.tsv", rows)
    predictions = {key(i): {"question_id": i, "text": text} for i, text in answers.items()}
    return task.score(task.read_questions(path), predictions, ScoreContext(path, protocol, options=options))


def right_answers(rows=MMB_ROWS):
    return {first["index"]: first["answer"] for first, _ in rows}


def test_mmbench_circular_accuracy_by_hand(tmp_path):
    answers = right_answers()
    assert mmb_score(tmp_path, answers)["overall"] == 100.0
    answers[2_000_000] = "A"  # one rotation of q0 wrong: q0 fails, its first row is still right
    result = mmb_score(tmp_path, answers)
    assert (result["overall"], result["vanilla"]) == (66.67, 100.0)  # 2 of 3 questions; 3 of 3 first rows
    assert result["per_category"] == {"image_scene": 50.0, "ocr": 100.0}  # q0 and q2; q1
    assert result["per_l2_category"] == {"coarse_perception": 50.0, "finegrained_perception (instance-level)": 100.0}
    assert (result["questions"], result["rows"], result["invalid"]) == (3, 7, 0)


def test_mmbench_letters_in_words_and_option_texts(tmp_path):
    answers = right_answers()
    # q0's rotations answered in four ways the evaluator reads; q1 by its text; q2 with two letters (unreadable)
    answers.update({0: "B.", 1_000_000: "(A) dog", 2_000_000: "The answer is D", 3_000_000: "dog"})
    answers.update({1: "yes", 1_000_001: "yes", 2: "B or C"})  # "yes" is B in the rotated copy
    result = mmb_score(tmp_path, answers)
    assert (result["overall"], result["vanilla"], result["invalid"]) == (66.67, 66.67, 1)


def test_mmbench_unreadable_answers_are_wrong_and_reported(tmp_path):
    answers = right_answers()
    answers[1] = "maybe"  # no letter, no option text
    predictions = {key(i): {"question_id": i, "text": t} for i, t in answers.items()}
    predictions["2"]["text"] = None  # not a string
    task = Mmbench()
    path = write_tsv(tmp_path / "mmb.tsv", MMB_ROWS)
    result = task.score(task.read_questions(path), predictions, ScoreContext(path, "fixed"))
    assert (result["overall"], result["invalid"], result["unreadable"]) == (33.33, 2, 1)


def test_mmbench_an_unanswered_row_is_upstreams_empty_cell_under_official(tmp_path):
    # upstream's submission leaves the cell empty, the evaluator reads str(NaN) = "nan": it contains option A's
    # text "an", so upstream counts the unanswered row as answering A. fixed counts it wrong.
    rows = [row(0, "A", ["an", "the"])]
    official = mmb_score(tmp_path, {}, rows=rows)
    fixed = mmb_score(tmp_path, {}, "fixed", rows=rows)
    assert (official["overall"], fixed["overall"]) == (100.0, 0.0)
    assert (official["answered"], official["invalid"]) == (0, 0)
    other = [row(0, "A", ["cat", "dog"])]  # nothing in "nan": wrong either way
    assert mmb_score(tmp_path, {}, rows=other)["overall"] == 0.0


def test_mmbench_order_of_either_file_changes_nothing(tmp_path):
    answers = right_answers()
    answers.update({2_000_000: "A", 1: "dog"})
    del answers[1_000_001]
    for protocol in ("official", "fixed"):
        expected = mmb_score(tmp_path, answers, protocol)
        for seed in range(3):
            reordered = dict(shuffled(answers.items(), seed))
            assert mmb_score(tmp_path, reordered, protocol, rows=shuffled(MMB_ROWS, seed)) == expected


def test_mmbench_truth_from_annotations_or_refused(tmp_path):
    test_rows = [({**first, "answer": ""}, rest) for first, rest in MMB_ROWS]
    annotations = write_tsv(tmp_path / "dev.tsv", MMB_ROWS)
    path = write_tsv(tmp_path / "test.tsv", test_rows)
    task = Mmbench()
    predictions = {key(i): {"question_id": i, "text": t} for i, t in right_answers().items()}
    context = ScoreContext(path, "official", options={"annotations": str(annotations)})
    assert task.score(task.read_questions(path), predictions, context)["overall"] == 100.0
    with pytest.raises(EvalError, match=r"test\.tsv: no answer for question '0'"):
        task.score(task.read_questions(path), predictions, ScoreContext(path, "official"))


def test_mmbench_tsv_asks_with_inline_images_and_upstreams_prompt(tmp_path):
    first, rest = row(7, "B", ["red", 'a "blue" one', "green"], hint="Look\tclosely.", question="Which colour?")
    rest["image"] = png((1, 2, 3))
    path = write_tsv(tmp_path / "mmb.tsv", [(first, rest), row(8, "A", ["x", "y"])])
    task = Mmbench()
    questions = task.read_questions(path)
    assert [q["question_id"] for q in questions] == ["7", "8"]
    ask = task.asks(questions, path)[0]
    options = 'A. red\nB. a "blue" one\nC. green'
    assert ask.turns == ((f"<image>\nLook\tclosely.\nWhich colour?\n{options}\n{EN}", None),)
    image = Image.open(io.BytesIO(ask.image))
    assert (image.size, image.convert("RGB").getpixel((0, 0))) == ((3, 2), (1, 2, 3))
    cn = MmbenchCn().asks(questions, path, {"lang": "cn"})[1]
    assert cn.turns[0][0] == "<image>\nWhat is it?\nA. x\nB. y\n请直接回答选项字母。"
    # upstream's mmbench_cn.sh runs without --lang cn: English by default for MMBench-CN too
    assert MmbenchCn().asks(questions, path)[1].turns[0][0].endswith(EN)
    with pytest.raises(EvalError, match="unknown prompt language 'fr'"):
        task.asks(questions, path, {"lang": "fr"})


def test_mmbench_prompt_stops_at_the_first_missing_option_as_pandas_reads_it(tmp_path):
    # "NA" is NaN to pandas and "None" is none to model_vqa_mmbench: the prompt ends before them; a missing
    # hint is left out. The evaluator still matches answers against every option that has a value.
    first, rest = row(3, "C", ["one", "NA", "three"], hint="nan")
    path = write_tsv(tmp_path / "mmb.tsv", [(first, rest)])
    task = Mmbench()
    questions = task.read_questions(path)
    assert task.asks(questions, path)[0].turns[0][0] == f"<image>\nWhat is it?\nA. one\n{EN}"
    predictions = {"3": {"question_id": 3, "text": "three"}}
    assert task.score(questions, predictions, ScoreContext(path))["overall"] == 100.0


def test_mmbench_image_cell_naming_another_row(tmp_path):
    first, rest = row(1_000_000, "A", ["x", "y"])
    path = write_tsv(tmp_path / "mmb.tsv", [row(0, "A", ["x", "y"]), (first, {**rest, "image": "0"})])
    task = Mmbench()
    asks = task.asks(task.read_questions(path), path)
    assert asks[1].image == asks[0].image and Image.open(io.BytesIO(asks[1].image)).size == (3, 2)


def test_mmbench_bad_tsv_is_one_clear_error(tmp_path):
    path = write_tsv(tmp_path / "mmb.tsv", [row(0, "A", ["x"]), row(0, "B", ["y"])])
    with pytest.raises(EvalError, match="index 0 is on lines 2 and 3"):
        Mmbench().read_questions(path)
    path.write_text("question\tA\nWhat?\tx\n")
    with pytest.raises(EvalError, match="no 'index' column"):
        Mmbench().read_questions(path)


# -- MMBench's submission ----------------------------------------------------------------------------------------
def read_xlsx(path):
    """The cells of an xlsx's first sheet, row by row (inline strings and numbers)."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(path) as archive:
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
        assert b'name="Sheet1"' in archive.read("xl/workbook.xml")
    rows = []
    for element in sheet.iterfind(".//m:row", ns):
        cells = {}
        for cell in element.iterfind("m:c", ns):
            column = "".join(ch for ch in cell.get("r") if ch.isalpha())
            text = cell.find("m:is/m:t", ns)
            cells[column] = text.text if text is not None else int(cell.find("m:v", ns).text)
        rows.append(cells)
    return rows


def test_mmbench_submission_is_upstreams_xlsx(tmp_path):
    path = write_tsv(tmp_path / "mmb.tsv", MMB_ROWS)
    questions = Mmbench().read_questions(path)
    predictions = {key(i): {"question_id": i, "text": t} for i, t in right_answers().items()}
    predictions["2"]["text"] = "C <&> done"
    out = write_submission("mmbench", questions, predictions, tmp_path / "upload.xlsx")
    header, *rows = read_xlsx(out)
    # the TSV's columns without hint, category, source, image, comment, l2-category; prediction the 7th
    assert list(header.values()) == ["index", "question", "A", "B", "C", "D", "prediction", "answer", "split"]
    assert len(rows) == 7
    assert rows[0] == {
        "A": 0,
        "B": "What is it?",
        "C": "cat",
        "D": "dog",
        "E": "bird",
        "F": "fish",
        "G": "B",
        "H": "B",
    } | {"I": "dev"}
    last = rows[-1]
    assert last == {"A": 2, "B": "What is it?", "C": "red", "D": "green", "E": "blue", "G": "C <&> done", "H": "C"} | {
        "I": "dev"
    }
    assert "F" not in last  # option D is empty: an empty cell, as pandas writes NaN


def test_mmbench_submission_needs_every_question_answered_once(tmp_path):
    path = write_tsv(tmp_path / "mmb.tsv", MMB_ROWS)
    questions = Mmbench().read_questions(path)
    answers = {key(i): {"question_id": i, "text": t} for i, t in right_answers().items()}
    missing = {k: v for k, v in answers.items() if k != "1"}
    with pytest.raises(EvalError, match=r"1 questions without a text answer, e\.g\. \['1'\]"):
        write_submission("mmbench", questions, missing, tmp_path / "x.xlsx")
    with pytest.raises(EvalError, match="1 answers to questions not in the TSV"):
        write_submission("mmbench_cn", questions, {**answers, "99": {"text": "A"}}, tmp_path / "x.xlsx")
    with pytest.raises(EvalError, match="no MMBench submission for task 'seed'"):
        write_submission("seed", questions, answers, tmp_path / "x.xlsx")
    assert not (tmp_path / "x.xlsx").exists()


# -- SEED-Bench --------------------------------------------------------------------------------------------------
SEED_TYPES = {"Scene Understanding": 1, "Instance Counting": 4, "Action Recognition": 10}
# (question_id, answer, type id, data type)
SEED_TRUTH = [
    ("101", "A", 1, "image"),
    ("102", "B", 1, "image"),
    ("103", "C", 4, "image"),
    ("104", "D", 4, "image"),
    ("105", "A", 4, "image"),
    ("201", "B", 10, "video"),
    ("202", "C", 10, "video"),
]
SEED_ANSWERS = {101: "A", 102: "B.", 103: "C", 104: "A", 105: "A", 201: "B"}  # 202 unanswered


def seed_questions(with_truth=False):
    names = {v: k for k, v in SEED_TYPES.items()}
    questions = []
    for qid, answer, type_id, data_type in SEED_TRUTH:
        question = {"question_id": int(qid), "image": f"SEED-Bench-image/{qid}.jpg", "text": "q?\nA. a\nB. b"}
        question["category"] = names[type_id]
        if with_truth:
            question.update(answer=answer, question_type_id=type_id, data_type=data_type)
        questions.append(question)
    return questions


def seed_score(tmp_path, questions, answers, protocol="official", annotations=True):
    options = {}
    if annotations:
        data = {
            "questions": [
                {"question_id": q, "answer": a, "question_type_id": t, "data_type": d} for q, a, t, d in SEED_TRUTH
            ],
            "question_type": SEED_TYPES,
        }
        (tmp_path / "SEED-Bench.json").write_text(json.dumps(data))
        options["annotations"] = str(tmp_path / "SEED-Bench.json")
    path = write_jsonl(tmp_path / "seed.jsonl", questions)
    task = Seed()
    predictions = {key(i): {"question_id": i, "text": t} for i, t in answers.items()}
    return task.score(task.read_questions(path), predictions, ScoreContext(path, protocol, options=options))


def test_seed_accuracy_by_hand(tmp_path):
    result = seed_score(tmp_path, seed_questions(), SEED_ANSWERS)
    # right: 101, 103, 105, 201; "B." is wrong (upstream compares the whole text), 202 unanswered
    assert (result["accuracy"], result["image"], result["video"]) == (57.14, 60.0, 50.0)
    assert result["per_type"] == {"Scene Understanding": 50.0, "Instance Counting": 66.67, "Action Recognition": 50.0}
    assert list(result["per_type"]) == ["Scene Understanding", "Instance Counting", "Action Recognition"]  # id order
    assert (result["invalid"], result["answered"], result["coverage"]) == (1, 6, 85.71)


def test_seed_in_record_truth_official_fixed_and_order_agree(tmp_path):
    expected = seed_score(tmp_path, seed_questions(), SEED_ANSWERS)
    for protocol in ("official", "fixed"):
        for seed in range(3):
            questions = shuffled(seed_questions(with_truth=True), seed)
            answers = dict(shuffled(SEED_ANSWERS.items(), seed))
            result = seed_score(tmp_path, questions, answers, protocol, annotations=False)
            assert result == {**expected, "protocol": protocol}


def test_seed_without_truth_is_refused(tmp_path):
    with pytest.raises(EvalError, match="question 101 has no answer and category"):
        seed_score(
            tmp_path, [{k: v for k, v in q.items() if k != "category"} for q in seed_questions()], {}, annotations=False
        )
    with pytest.raises(EvalError, match="no question 999"):
        seed_score(tmp_path, [{**seed_questions()[0], "question_id": 999}], {})


def test_seed_asks_the_text_as_it_is():
    questions = seed_questions()
    ask = Seed().asks(questions[:1], None)[0]
    assert (ask.question_id, ask.image, ask.turns) == (
        "101",
        "SEED-Bench-image/101.jpg",
        (("<image>\nq?\nA. a\nB. b", None),),
    )


# -- ScienceQA-IMG -----------------------------------------------------------------------------------------------
def sqa_record(pid, options, image=True, answer=None):
    choices = " ".join(f"({'ABCDE'[i]}) {option}" for i, option in enumerate(options))
    value = f"Context: N/A\nQuestion: Which is it?\nOptions: {choices}"
    record = {"id": pid, "conversations": [{"from": "human", "value": value + ("\n<image>" if image else "")}]}
    if answer is not None:
        record["conversations"].append({"from": "gpt", "value": f"The answer is {answer}."})
    if image:
        record["image"] = f"{pid}/image.png"
    return record


def test_sqa_prompt_is_upstreams(tmp_path):
    records = [
        {
            "id": "4",
            "image": "4/image.png",
            "conversations": [
                {
                    "from": "human",
                    "value": "Context: A map.\nQuestion: Which state is farthest north?\nOptions: "
                    "(A) West Virginia (B) Louisiana\n<image>",
                },
                {"from": "gpt", "value": "The answer is A."},
            ],
        },
        sqa_record("5", ["chiasmus", "apostrophe"], image=False),
    ]
    path = tmp_path / "llava_test_CQM-A.json"
    path.write_text(json.dumps(records))
    task = ScienceQaImg()
    asks = task.asks(task.read_questions(path), path)
    assert [ask.question_id for ask in asks] == ["4", "5"]
    assert asks[0].turns == (
        (
            "<image>\nContext: A map.\nQuestion: Which state is farthest north?\nOptions: (A) West Virginia "
            f"(B) Louisiana\n{EN}",
            None,
        ),
    )
    assert (asks[0].image, asks[1].image) == ("4/image.png", None)
    assert asks[1].turns[0][0] == f"Context: N/A\nQuestion: Which is it?\nOptions: (A) chiasmus (B) apostrophe\n{EN}"


@pytest.mark.parametrize(
    ("answer", "choices", "index"),
    [
        ("A", 2, 0),
        ("B. cat", 2, 1),
        ("The answer is C.", 3, 2),
        ("The answer is C!", 3, 2),  # upstream's unescaped "." takes any character
        ("The answer is C", 3, -1),  # ... but one must follow
        ("A.", 2, -1),  # neither a bare letter nor "A. " with its space
        ("The answer is A. The answer is B.", 2, -1),  # two answers
        ("E", 2, -1),  # no option E
        ("", 2, -1),
    ],
)
def test_sqa_reads_letters_as_upstream(answer, choices, index):
    assert science_qa_choice(answer, choices) == index


def test_sqa_letter_reading():
    assert (science_qa_letter("D"), science_qa_letter("d"), science_qa_letter("FAILED")) == ("D", None, None)


SQA_RECORDS = [
    sqa_record("1", ["x", "y"]),  # answer 1 (B)
    sqa_record("2", ["x", "y", "z"]),  # answer 2 (C)
    sqa_record("3", ["x", "y"], image=False),  # answer 0 (A)
    sqa_record("4", ["x", "y"]),  # answer 0 (A)
    sqa_record("5", ["x", "y"], image=False),  # answer 1 (B)
]
SQA_PROBLEMS = {
    "1": {"answer": 1, "choices": ["x", "y"], "image": "image.png"},
    "2": {"answer": 2, "choices": ["x", "y", "z"], "image": "image.png"},
    "3": {"answer": 0, "choices": ["x", "y"], "image": None},
    "4": {"answer": 0, "choices": ["x", "y"], "image": "image.png"},
    "5": {"answer": 1, "choices": ["x", "y"], "image": None},
}
SQA_ANSWERS = {"1": "B", "2": "The answer is C.", "3": "A.", "5": "B"}  # 4 (an image question) unanswered


def sqa_score(tmp_path, records, answers, protocol="official", annotations="folder"):
    options = {}
    if annotations:
        folder = tmp_path / "scienceqa"
        folder.mkdir(exist_ok=True)
        (folder / "problems.json").write_text(json.dumps(SQA_PROBLEMS))
        options["annotations"] = str(folder if annotations == "folder" else folder / "problems.json")
    path = tmp_path / "llava_test_CQM-A.json"
    path.write_text(json.dumps(records))
    task = ScienceQaImg()
    predictions = {k: {"question_id": k, "text": t} for k, t in answers.items()}
    return task.score(task.read_questions(path), predictions, ScoreContext(path, protocol, options=options))


def test_sqa_accuracy_by_hand_official_and_fixed(tmp_path):
    official = sqa_score(tmp_path, SQA_RECORDS, SQA_ANSWERS)
    # right: 1, 2, 5 of 5; "A." unreadable. IMG: upstream's count leaves out unanswered 4: 2 of 2
    assert (official["accuracy"], official["img"], official["invalid"]) == (60.0, 100.0, 1)
    fixed = sqa_score(tmp_path, SQA_RECORDS, SQA_ANSWERS, "fixed")
    assert (fixed["accuracy"], fixed["img"]) == (60.0, 66.67)  # 4 counts as wrong: 2 of 3
    assert sqa_score(tmp_path, SQA_RECORDS, SQA_ANSWERS, annotations="file") == official


def test_sqa_in_record_truth_and_order(tmp_path):
    letters = {"1": "B", "2": "C", "3": "A", "4": "A", "5": "B"}
    with_gpt = [
        sqa_record(r["id"], ["x", "y", "z"][: 3 if r["id"] == "2" else 2], "image" in r, letters[r["id"]])
        for r in SQA_RECORDS
    ]
    expected = sqa_score(tmp_path, SQA_RECORDS, SQA_ANSWERS)
    assert sqa_score(tmp_path, with_gpt, SQA_ANSWERS, annotations=None) == expected
    with_field = [{**r, "answer": "ABCDE".index(letters[r["id"]])} for r in SQA_RECORDS]  # an index
    for seed in range(3):
        reordered = dict(shuffled(SQA_ANSWERS.items(), seed))
        assert sqa_score(tmp_path, shuffled(with_field, seed), reordered, annotations=None) == expected


def test_sqa_without_truth_is_refused(tmp_path):
    with pytest.raises(EvalError, match="question '1' has no answer"):
        sqa_score(tmp_path, SQA_RECORDS[:1], {}, annotations=None)
    with pytest.raises(EvalError, match="no problem '9'"):
        sqa_score(tmp_path, [sqa_record("9", ["x", "y"])], {})


def test_sqa_bad_question_file_is_one_clear_error(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps([sqa_record("1", ["x", "y"]), sqa_record("1", ["x", "y"])]))
    with pytest.raises(EvalError, match="id '1' is given twice"):
        ScienceQaImg().read_questions(path)
    path.write_text(json.dumps([{"id": "1"}]))
    with pytest.raises(EvalError, match="record 0 lacks an id or a first conversation turn's value"):
        ScienceQaImg().read_questions(path)
