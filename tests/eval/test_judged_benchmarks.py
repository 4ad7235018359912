"""LLaVA-Bench (in the wild) and MM-Vet, scored by a scripted judge: hand-computed numbers, upstream's prompts and
parsing, the judge log's resume, secrets, and failures."""

import json
import random
import re

import pytest
import yaml

from allseeing.cli import evaluate, main
from allseeing.config import ConfigError
from allseeing.eval.metrics.judge import (
    MMVET_TEMPERATURES,
    capability_scores,
    llava_review_messages,
    mmvet_messages,
    numpy_round,
    parse_correctness,
    parse_score_pair,
    prompts,
    relative_scores,
)
from allseeing.eval.registry import TASKS
from allseeing.eval.report import SuiteTask, markdown
from allseeing.eval.task import EvalError, ScoreContext, key
from allseeing.eval.tasks.judged import LlavaWild, MmVet, write_submission
from allseeing.infer.openai_client import ChatClient, Endpoint
from tests.eval.helpers import write_jsonl
from tests.infer.stub_openai import ScriptedServer, closed_port_url

JUDGE = "judge-4"


def endpoint(url, **settings):
    return Endpoint(base_urls=(url,), served_model=JUDGE, **{"backoff_s": 0.01, "concurrency": 3, **settings})


def assistant_2(text):
    """The model's answer in a LLaVA-Bench review request."""
    return re.search(r"\[Assistant 2\]\n(.*?)\n\n\[End of Assistant 2\]", text, re.S).group(1)


def table_prediction(text):
    """The model's answer in an MM-Vet grader request (the third cell of the row to complete)."""
    row = next(line for line in reversed(text.split("\n")) if line.endswith(" | "))
    return row.split(" | ")[2]


@pytest.fixture
def judge():
    servers = []

    def start(reply, script=None):
        servers.append(ScriptedServer(script, reply=reply))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# LLaVA-Bench --------------------------------------------------------------------------------------------------------

LLAVA_QUESTIONS = [
    {"question_id": 0, "image": "001.jpg", "text": "What is the man doing?", "category": "conv"},
    {"question_id": 1, "image": "001.jpg", "text": "What colour is his shirt?", "category": "conv"},
    {"question_id": 2, "image": "002.jpg", "text": "Describe the image in detail.", "category": "detail"},
    {"question_id": 3, "image": "002.jpg", "text": "Why is this funny?", "category": "complex"},
    {"question_id": 4, "image": "001.jpg", "text": "What might happen next?", "category": "complex"},
]
CAPTIONS = {"001.jpg": "A man irons clothes on a taxi's roof.", "002.jpg": ["A meme.", "Two dogs."]}
# The judge's review of each answer (Assistant 1 is the reference): the first line holds the two scores.
REVIEWS = {
    "a0": "8 6\nAssistant 1 is more precise.",
    "a1": "7 7\nBoth are right.",
    "a2": "9 3\nAssistant 2 misses most of the image.",
    "a3": "6 8\nAssistant 2 explains the joke better.",
    "a4": "I cannot compare these answers.",  # no scores: upstream's parse_score gives -1 -1
    "": "8 1\nAssistant 2 says nothing.",  # an unanswered question, judged as an empty answer (fixed)
}


def llava_reply(text):
    return REVIEWS[assistant_2(text)]


def with_truth(question):
    return {**question, "caption": CAPTIONS[question["image"]], "answer": f"reference {question['question_id']}"}


def llava_score(tmp_path, server_url, protocol, answers=None, questions=None, **options):
    questions = questions or [with_truth(q) for q in LLAVA_QUESTIONS]
    answers = {q["question_id"]: f"a{q['question_id']}" for q in questions} if answers is None else answers
    path = write_jsonl(tmp_path / "questions.jsonl", questions)
    task = LlavaWild()
    predictions = {key(i): {"question_id": i, "text": text} for i, text in answers.items()}
    context = ScoreContext(
        path, protocol, options={"judge": endpoint(server_url), "judge_log": tmp_path / "judge.jsonl", **options}
    )
    return task.score(task.read_questions(path), predictions, context)


def test_llava_relative_scores_computed_by_hand(judge, tmp_path):
    server = judge(llava_reply)
    official = llava_score(tmp_path, server.url, "official")
    # Rows (reference, model): conv (8, 6), (7, 7); detail (9, 3); complex (6, 8) and the unreadable review (-1, -1).
    # official: every mean is rounded to 3 decimals, then model / reference * 100 to 1 decimal.
    #   overall: reference (8+7+9+6-1)/5 = 5.8, model (6+7+3+8-1)/5 = 4.6 -> 4.6 / 5.8 * 100 = 79.31 -> 79.3
    #   conv: 6.5 / 7.5 = 86.67 -> 86.7; detail: 3 / 9 = 33.3; complex: reference 2.5, model 3.5 -> 140.0
    assert {k: official[k] for k in ("overall", "conv", "detail", "complex")} == {
        "overall": 79.3,
        "conv": 86.7,
        "detail": 33.3,
        "complex": 140.0,
    }
    assert official["reference_score"] == {"overall": 58.0, "complex": 25.0, "conv": 75.0, "detail": 90.0}
    assert official["model_score"] == {"overall": 46.0, "complex": 35.0, "conv": 65.0, "detail": 30.0}
    assert official["judged"] == 5 and official["unjudged"] == 1
    assert official["judge"] == {"model": JUDGE, "new": 5, "reused": 0, "log": str(tmp_path / "judge.jsonl")}
    fixed = llava_score(tmp_path, server.url, "fixed")
    # fixed leaves the unreadable review out: overall reference 30/4 = 7.5, model 24/4 = 6.0 -> 80.0;
    # complex (6, 8) alone -> 8/6 = 133.33; 2 decimals.
    assert {k: fixed[k] for k in ("overall", "conv", "detail", "complex")} == {
        "overall": 80.0,
        "conv": 86.67,
        "detail": 33.33,
        "complex": 133.33,
    }
    assert fixed["reference_score"]["complex"] == 60.0 and fixed["model_score"]["overall"] == 60.0
    assert fixed["unjudged"] == 1 and fixed["judge"]["new"] == 0 and fixed["judge"]["reused"] == 5
    assert fixed["asked"] == fixed["answered"] == 5 and fixed["coverage"] == 100.0 and fixed["invalid"] == 0


def test_llava_official_reviews_the_answered_fixed_judges_a_missing_answer_as_empty(judge, tmp_path):
    server = judge(llava_reply)
    answers = {0: "a0", 2: "a2", 3: "a3", 4: "a4"}  # question 1 unanswered
    official = llava_score(tmp_path, server.url, "official", answers)
    # overall: reference (8+9+6-1)/4 = 5.5, model (6+3+8-1)/4 = 4.0 -> 72.73 -> 72.7; conv: 6/8 = 75.0
    assert official["overall"] == 72.7 and official["conv"] == 75.0 and official["judged"] == 4
    assert official["coverage"] == 80.0
    assert all(assistant_2(body["messages"][1]["content"]) for body in server.bodies)  # no empty answer asked
    fixed = llava_score(tmp_path, server.url, "fixed", answers)
    # question 1 judged as an empty answer: (8, 1). overall without the unreadable: reference (8+8+9+6)/4 = 7.75,
    # model (6+1+3+8)/4 = 4.5 -> 58.06; conv: reference 8, model 3.5 -> 43.75
    assert fixed["overall"] == 58.06 and fixed["conv"] == 43.75 and fixed["judged"] == 5
    assert fixed["judge"]["new"] == 1  # only the empty answer was new


def test_llava_summary_rounds_the_means_to_3_decimals_before_the_ratio_as_upstream():
    rows = [("conv", (10.0, 4.0)), ("conv", (7.0, 9.0)), ("conv", (6.0, 9.0))]
    # reference 23/3 -> 7.667, model 22/3 -> 7.333: 7.333 / 7.667 * 100 = 95.644 -> 95.6; exactly 22/23 = 95.652
    assert relative_scores(rows, official=True)["conv"] == 95.6
    assert relative_scores(rows, official=False)["conv"] == 95.65
    assert relative_scores([("conv", None)], official=False)["overall"] is None  # nothing judged


def test_llava_review_request_is_upstreams(judge, tmp_path):
    server = judge(llava_reply)
    llava_score(tmp_path, server.url, "official", answers={2: "a2"})
    (body,) = server.bodies
    rule = prompts()["llava_bench"]["rules"]["llava_bench_detail"]["prompt"]
    assert body["model"] == JUDGE and body["max_tokens"] == 1024 and body["temperature"] == 0
    system, user = body["messages"]
    assert system == {
        "role": "system",
        "content": "You are a helpful and precise assistant for checking the quality of the answer.",
    }
    assert user["role"] == "user" and user["content"] == (
        "[Context]\nA meme.\nTwo dogs.\n\n"  # a list of captions, one per line
        "[Question]\nDescribe the image in detail.\n\n"
        "[Assistant 1]\nreference 2\n\n[End of Assistant 1]\n\n"
        "[Assistant 2]\na2\n\n[End of Assistant 2]\n\n"
        f"[System]\n{rule}\n\n"
    )
    assert rule.startswith("We would like to request your feedback on the performance of two AI assistants")
    assert "represented with a few sentences describing the image" in rule


def test_llava_score_pairs_are_read_as_upstreams_parse_score():
    cases = {
        "8 6\nbecause": ((8.0, 6.0), (8.0, 6.0)),
        "8,6": ((8.0, 6.0), (8.0, 6.0)),
        "7.5 9": ((7.5, 9.0), (7.5, 9.0)),
        "8, 6": (None, (8.0, 6.0)),  # upstream splits "8  6" at each space: three pieces
        "8 6 \nok": (None, (8.0, 6.0)),
        "8\t6": (None, (8.0, 6.0)),
        "Scores: 8 6": (None, None),
        "8 6 7": (None, None),
        "\n8 6": (None, None),  # the first line is empty
    }
    for review, (official, fixed) in cases.items():
        assert parse_score_pair(review, official=True) == official, review
        assert parse_score_pair(review, official=False) == fixed, review
    nan = parse_score_pair("nan 5", official=True)
    assert nan[0] != nan[0] and parse_score_pair("nan 5", official=False) is None
    # a NaN reaching upstream's means makes them NaN: reported as null, not as invalid JSON
    assert relative_scores([("conv", nan)], official=True)["overall"] is None


def test_llava_truth_from_the_benchmark_folder(judge, tmp_path):
    folder = tmp_path / "llava-bench-in-the-wild"
    folder.mkdir()
    contexts = [{"id": i, "image": image, "caption": caption} for i, (image, caption) in enumerate(CAPTIONS.items())]
    write_jsonl(folder / "context.jsonl", contexts)
    references = [{"question_id": q["question_id"], "text": f"reference {q['question_id']}"} for q in LLAVA_QUESTIONS]
    write_jsonl(folder / "answers_gpt4.jsonl", references)
    server = judge(llava_reply)
    from_records = llava_score(tmp_path, server.url, "official")
    for given in (folder, folder / "answers_gpt4.jsonl"):
        from_folder = llava_score(tmp_path, server.url, "official", questions=LLAVA_QUESTIONS, annotations=given)
        assert from_folder["overall"] == from_records["overall"] == 79.3
        assert from_folder["judge"]["reused"] == 5  # the very same requests as with in-record truth
    (folder / "context.jsonl").write_text(json.dumps({"image": "001.jpg", "caption": "x"}) + "\n")
    with pytest.raises(EvalError, match=r"context.jsonl: no caption of image '002.jpg' \(question '2'\)"):
        llava_score(tmp_path, server.url, "official", questions=LLAVA_QUESTIONS, annotations=folder)
    with pytest.raises(EvalError, match=r"question 0 lacks caption or answer, and no --annotations"):
        llava_score(tmp_path, server.url, "official", questions=LLAVA_QUESTIONS)
    unknown = [{**with_truth(LLAVA_QUESTIONS[0]), "category": "chat"}]
    with pytest.raises(EvalError, match=r"categories \['chat'\] have no review rule; known: conv, detail, complex"):
        llava_score(tmp_path, server.url, "official", questions=unknown)


def test_llava_scores_do_not_depend_on_the_order_of_either_file(judge, tmp_path):
    server = judge(llava_reply)
    questions = [with_truth(q) for q in LLAVA_QUESTIONS]
    answers = {q["question_id"]: f"a{q['question_id']}" for q in questions}
    shuffled = questions[:]
    random.Random(3).shuffle(shuffled)
    reordered = dict(reversed(list(answers.items())))
    for protocol in ("official", "fixed"):
        first = llava_score(tmp_path, server.url, protocol, answers, questions)
        again = llava_score(tmp_path, server.url, protocol, reordered, shuffled)
        assert {k: v for k, v in first.items() if k != "judge"} == {k: v for k, v in again.items() if k != "judge"}


# MM-Vet -----------------------------------------------------------------------------------------------------------

MMVET = [
    {"question_id": 0, "image": "v1_0.png", "text": "What is x in the equation?", "answer": "-1<AND>-5",
     "capability": ["ocr", "math"]},
    {"question_id": 1, "image": "v1_1.png", "text": "What brand is it?", "answer": "Apple", "capability": ["rec", "ocr"]},
    {"question_id": 2, "image": "v1_2.png", "text": "Why is this funny?", "answer": "Irony", "capability": ["rec", "know", "gen"]},
    {"question_id": 3, "image": "v1_3.png", "text": "How many cats?", "answer": "2", "capability": ["rec"]},
    {"question_id": 4, "image": "v1_4.png", "text": "What does the sign say?", "answer": "Stop<OR>STOP",
     "capability": ["ocr", "rec"]},
]  # fmt: skip
GRADES = {"x = -1": "0.5", "Apple": "1.0", "A pun": "Sure", "Stop": "??"}


def mmvet_reply(text):
    """ "A pun" is graded only when asked again; "Stop" never gets a readable grade."""
    if "Predict the correctness of the answer (digit): " in text and table_prediction(text) == "A pun":
        return "0.3"
    return GRADES[table_prediction(text)]


MMVET_ANSWERS = {0: "x = -1", 1: "Apple", 2: "A pun", 4: "Stop"}  # question 3 unanswered


def mmvet_score(tmp_path, server_url, protocol, answers=MMVET_ANSWERS, questions=MMVET, **options):
    path = write_jsonl(tmp_path / "mmvet.jsonl", questions)
    task = MmVet()
    predictions = {key(i): {"question_id": i, "text": text} for i, text in answers.items()}
    options = {"judge": endpoint(server_url), "judge_log": tmp_path / "mmvet.judge.jsonl", **options}
    return task.score(task.read_questions(path), predictions, ScoreContext(path, protocol, options=options))


def test_mmvet_scores_per_capability_computed_by_hand(judge, tmp_path):
    server = judge(mmvet_reply)
    official = mmvet_score(tmp_path, server.url, "official")
    # scores: q0 0.5, q1 1.0, q2 0.3 (asked again), q3 0.0 (unanswered), q4 0.0 (never a score)
    # total (0.5 + 1.0 + 0.3) / 5 = 36.0; rec (1.0 + 0.3) / 4 = 32.5; ocr (0.5 + 1.0) / 3 = 50.0;
    # math 50.0; know and gen 30.0. Combinations: ocr_rec (1.0 + 0.0) / 2 = 50.0, math_ocr 50.0, gen_know_rec 30.0,
    # rec 0.0.
    assert official["total"] == 36.0
    assert official["capabilities"] == {"rec": 32.5, "ocr": 50.0, "math": 50.0, "gen": 30.0, "know": 30.0}
    assert list(official["capabilities"])[:2] == ["rec", "ocr"]  # most frequent first
    assert official["combinations"] == {"ocr_rec": 50.0, "math_ocr": 50.0, "gen_know_rec": 30.0, "rec": 0.0}
    assert official["unjudged"] == 1 and official["answered"] == 4 and official["coverage"] == 80.0
    # "Stop": the question, then four asks again; the grader's fifth ask again is never read, so it is not sent
    stop = [b for b in server.bodies if table_prediction(b["messages"][0]["content"]) == "Stop"]
    assert [b["temperature"] for b in stop] == list(MMVET_TEMPERATURES) == [0.0, 0.0, 0.5, 1.0, 1.5]
    assert ["Predict the correctness" in b["messages"][0]["content"] for b in stop] == [False] + [True] * 4
    assert all(b["max_tokens"] == 3 and b["model"] == JUDGE for b in server.bodies)
    assert len(server.bodies) == 1 + 1 + 2 + 5  # question 3 (unanswered) is not asked
    fixed = mmvet_score(tmp_path, server.url, "fixed")
    assert fixed["total"] == 36.0 and fixed["capabilities"]["rec"] == 32.5 and fixed["judge"]["new"] == 0


def test_mmvet_rounds_as_the_grader_official_one_decimal_fixed_two():
    rows = [(["ocr"], 1.0), (["ocr"], 0.0), (["ocr"], 0.0)]
    assert capability_scores(rows, official=True)["total"] == 33.3
    assert capability_scores(rows, official=False)["total"] == 33.33
    # the grader rounds numpy floats: numpy's rounding, not Python's
    assert numpy_round(0.45, 1) == 0.4 and round(0.45, 1) == 0.5
    assert numpy_round(2.675, 2) == 2.68 and round(2.675, 2) == 2.67
    assert numpy_round(float("nan"), 1) != numpy_round(float("nan"), 1)


def test_mmvet_grades_are_read_as_the_grader_reads_them():
    cases = {
        "0.5": 0.5,
        "1.0": 1.0,
        "1": 1.0,
        "0": 0.0,
        "0.7 because": 0.7,
        "1.5": None,
        "-0.1": None,
        "0.5.": None,
        "Yes": None,
        "": None,
    }
    for reply, expected in cases.items():
        assert parse_correctness(reply, official=True) == expected, reply
        assert parse_correctness(reply, official=False) == expected, reply
    nan = parse_correctness("nan", official=True)
    assert nan != nan and parse_correctness("nan", official=False) is None
    assert capability_scores([(["ocr"], nan)], official=True)["total"] is None  # NaN: null in the JSON


def test_mmvet_request_is_the_graders():
    (first,) = mmvet_messages("What is x?", "-1<AND>-5", "x = 3", again=False)
    prompt = prompts()["mmvet"]["prompt"]
    assert first == {"role": "user", "content": prompt + "\nWhat is x? | -1 <AND> -5 | x = 3 | "}
    assert prompt.startswith("Compare the ground truth and prediction from AI models, to give a correctness score")
    assert "Question | Ground truth | Prediction | Correctness\n--- | --- | --- | ---\n" in prompt
    assert prompt.endswith(" | 1.0\n")  # so the row to complete follows an empty line, as in the grader
    (again,) = mmvet_messages("Q", "a<OR>b", "b", again=True)
    assert again["content"] == prompt + "\nQ | a <OR> b | b | \nPredict the correctness of the answer (digit): "


def test_mmvet_truth_from_mm_vet_json_in_its_order(judge, tmp_path):
    truth = {
        f"v1_{q['question_id']}": {
            "imagename": q["image"],
            "capability": q["capability"],
            "question": q["text"],
            "answer": q["answer"],
        }
        for q in reversed(MMVET)  # another order than the question file's
    }
    (tmp_path / "mm-vet").mkdir()
    (tmp_path / "mm-vet" / "mm-vet.json").write_text(json.dumps(truth))
    bare = [{k: q[k] for k in ("question_id", "image", "text")} for q in MMVET]
    server = judge(mmvet_reply)
    in_records = mmvet_score(tmp_path, server.url, "official")
    for given in (tmp_path / "mm-vet", tmp_path / "mm-vet" / "mm-vet.json"):
        annotated = mmvet_score(tmp_path, server.url, "official", questions=bare, annotations=given)
        assert {k: v for k, v in annotated.items() if k != "judge"} == {
            k: v for k, v in in_records.items() if k != "judge"
        }
        assert annotated["judge"]["new"] == 0
    with pytest.raises(EvalError, match=r"mm-vet.json: no v1_9 \(question '9'\)"):
        mmvet_score(
            tmp_path,
            server.url,
            "official",
            {},
            [{"question_id": 9, "image": "x", "text": "?"}],
            annotations=tmp_path / "mm-vet",
        )
    with pytest.raises(EvalError, match=r"question 0 lacks answer or capability, and no --annotations"):
        mmvet_score(tmp_path, server.url, "official", questions=bare)


def test_mmvet_scores_do_not_depend_on_the_order_of_either_file(judge, tmp_path):
    server = judge(mmvet_reply)
    shuffled = MMVET[:]
    random.Random(5).shuffle(shuffled)
    reordered = dict(reversed(list(MMVET_ANSWERS.items())))
    for protocol in ("official", "fixed"):
        first = mmvet_score(tmp_path, server.url, protocol)
        again = mmvet_score(tmp_path, server.url, protocol, reordered, shuffled)
        assert {k: v for k, v in first.items() if k != "judge"} == {k: v for k, v in again.items() if k != "judge"}


def test_mmvet_submission_is_convert_mmvet_for_evals_file(tmp_path):
    predictions = {str(i): {"question_id": i, "text": f"answer {i}"} for i in (2, 0, 1)}
    out = write_submission("mmvet", MMVET[:3], predictions, tmp_path / "results" / "asmv2.json")
    assert json.loads(out.read_text()) == {"v1_0": "answer 0", "v1_1": "answer 1", "v1_2": "answer 2"}
    assert out.read_text().startswith('{\n  "v1_0": "answer 0",')  # indented by 2, as upstream's json.dump
    with pytest.raises(
        EvalError,
        match=r"mmvet: a submission answers every question once: 1 unanswered \(e.g. "
        r"\['2'\]\), 0 not asked",
    ):
        write_submission("mmvet", MMVET[:3], {k: v for k, v in predictions.items() if k != "2"}, tmp_path / "x.json")
    with pytest.raises(EvalError, match=r"1 not asked \(e.g. \['7'\]\)"):
        write_submission("mmvet", MMVET[:3], {**predictions, "7": {"text": "?"}}, tmp_path / "x.json")
    with pytest.raises(EvalError, match=r"the answer to question '0' is not text"):
        write_submission("mmvet", MMVET[:1], {"0": {"question_id": 0, "text": None}}, tmp_path / "x.json")


# The judge: log, resume, secrets, failures, configuration ----------------------------------------------------------


@pytest.fixture
def registered(monkeypatch):
    """The two tasks reachable from the command line and suites (the lead registers them for good)."""
    monkeypatch.setitem(TASKS, "llava_wild", LlavaWild())
    monkeypatch.setitem(TASKS, "mmvet", MmVet())
    monkeypatch.setattr(evaluate, "TASK_NAMES", (*evaluate.TASK_NAMES, "llava_wild", "mmvet"))


def llava_files(tmp_path):
    questions = write_jsonl(tmp_path / "questions.jsonl", [with_truth(q) for q in LLAVA_QUESTIONS])
    answers = [{"question_id": q["question_id"], "text": f"a{q['question_id']}"} for q in LLAVA_QUESTIONS]
    return questions, write_jsonl(tmp_path / "preds.jsonl", answers)


def test_a_second_score_run_reuses_the_logged_replies_and_sends_nothing(judge, registered, tmp_path, capsys):
    server = judge(llava_reply)
    questions, predictions = llava_files(tmp_path)
    argv = ["eval", "score", "llava_wild", "--questions", str(questions), "--predictions", str(predictions),
            "--judge-base-url", server.url, "--judge-model", JUDGE]  # fmt: skip
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    log = tmp_path / "preds.judge.jsonl"  # beside the predictions by default
    assert first["judge"] == {"model": JUDGE, "new": 5, "reused": 0, "log": str(log)}
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(r["question_id"] for r in records) == ["0", "1", "2", "3", "4"]
    assert {r["judge_model"] for r in records} == {JUDGE} and records[0]["reply"] == REVIEWS[
        f"a{records[0]['question_id']}"
    ]
    sent = len(server.bodies)
    assert main([*argv, "--protocol", "fixed"]) == 0 and main(argv) == 0
    assert len(server.bodies) == sent == 5  # neither the other protocol nor a re-run asks again
    out = capsys.readouterr().out
    again = json.loads(out[out.rindex('{\n  "task"') :])
    assert again["overall"] == first["overall"] == 79.3 and again["judge"]["reused"] == 5
    # another judge model is another judgment
    other = judge(llava_reply)
    assert main([*argv[:-4], "--judge-base-url", other.url, "--judge-model", "judge-5"]) == 0
    assert len(other.bodies) == 5


def test_a_record_cut_short_at_the_end_of_the_log_is_asked_again(judge, tmp_path):
    server = judge(llava_reply)
    llava_score(tmp_path, server.url, "official")
    log = tmp_path / "judge.jsonl"
    text = log.read_text()
    log.write_text(text[: text.rindex("\n", 0, -1) + 1] + text.splitlines()[-1][:30])  # the last record cut short
    again = llava_score(tmp_path, server.url, "official")
    assert again["judge"] == {"model": JUDGE, "new": 1, "reused": 4, "log": str(log)} and len(server.bodies) == 6
    assert len(log.read_text().splitlines()) == 5 and all(json.loads(line) for line in log.read_text().splitlines())
    log.write_text("not json\n" + log.read_text())
    with pytest.raises(EvalError, match=r"judge.jsonl:1: not a judge log record"):
        llava_score(tmp_path, server.url, "official")


def test_the_api_key_goes_only_into_the_request_header(judge, registered, tmp_path, capsys, monkeypatch):
    secret = "sk-judge-SECRET-0123456789"
    monkeypatch.setenv("JUDGE_KEY", secret)
    server = judge(llava_reply)
    questions, predictions = llava_files(tmp_path)
    scores = tmp_path / "scores.json"
    argv = ["eval", "score", "llava_wild", "--questions", str(questions), "--predictions", str(predictions),
            "--judge-base-url", server.url, "--judge-model", JUDGE, "--judge-api-key-env", "JUDGE_KEY",
            "--out", str(scores)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert all(h["Authorization"] == f"Bearer {secret}" for h in server.headers)
    written = [p.read_text() for p in tmp_path.iterdir() if p.is_file()]
    assert len(written) == 4  # questions, predictions, the judge log, the scores
    assert all(secret not in text for text in [*written, printed.out, printed.err])
    assert "JUDGE_KEY" not in scores.read_text()
    monkeypatch.delenv("JUDGE_KEY")
    (tmp_path / "preds.judge.jsonl").unlink()
    assert main(argv) == 1
    assert capsys.readouterr().err.strip() == (
        "allseeing eval: error: --judge-api-key-env JUDGE_KEY: that environment variable is not set"
    )


def test_a_judge_server_down_is_one_line(registered, tmp_path, capsys):
    questions, predictions = llava_files(tmp_path)
    argv = ["eval", "score", "llava_wild", "--questions", str(questions), "--predictions", str(predictions),
            "--judge-base-url", closed_port_url(), "--judge-model", JUDGE, "--judge-max-retries", "0"]  # fmt: skip
    assert main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("allseeing eval: error: http://127.0.0.1:")
    assert re.search(
        r"no answer to the judge's review of llava_wild question '\d' after 1 try \(last: "
        r"ConnectionRefusedError",
        error,
    )


def test_the_judge_is_required_and_whole(registered, judge, tmp_path, capsys):
    questions, predictions = llava_files(tmp_path)
    base = ["eval", "score", "llava_wild", "--questions", str(questions), "--predictions", str(predictions)]
    assert main(base) == 1
    assert capsys.readouterr().err.strip() == (
        "allseeing eval: error: llava_wild is scored by a judge model: give --judge-base-url and --judge-model (in a "
        "suite: judge_base_url and judge_model)"
    )
    assert main([*base, "--judge-model", JUDGE]) == 1
    assert "a judge needs both --judge-base-url and --judge-model" in capsys.readouterr().err
    assert main([*base, "--judge-model", JUDGE, "--judge-base-url", "ftp://x"]) == 1
    assert "the judge (--judge-base-url, --judge-model): --base-url 'ftp://x' is not" in capsys.readouterr().err


def test_suite_tasks_name_their_judge(registered, tmp_path):
    entry = SuiteTask(
        name="wild",
        task="llava_wild",
        questions="q.jsonl",
        judge_base_url="http://127.0.0.1:9/v1",
        judge_model=JUDGE,
        judge_api_key_env="JUDGE_KEY",
        annotations="bench",
    ).check()
    options = entry.score_options(tmp_path / "wild.jsonl")
    assert options["judge"] == Endpoint(("http://127.0.0.1:9/v1",), JUDGE, "JUDGE_KEY", concurrency=4)
    assert options["judge_log"] == str(tmp_path / "wild.judge.jsonl") and options["annotations"] == "bench"
    assert SuiteTask(name="v", task="mmvet", questions="q.jsonl").check().judge() is None  # predicted, not scored
    with pytest.raises(ConfigError, match=r"task 'v': the judge: --base-url 'nowhere' is not an http\(s\) URL"):
        SuiteTask(name="v", task="mmvet", questions="q.jsonl", judge_base_url="nowhere", judge_model=JUDGE).check()
    report = {
        "model": "m",
        "suite": "s.yaml",
        "results": {
            "vet": {
                "official": {
                    "task": "mmvet",
                    "total": 36.0,
                    "capabilities": {"rec": 32.5, "ocr": 50.0},
                    "coverage": 80.0,
                    "invalid": 0,
                }
            }
        },
    }
    assert "| official | 36.00 | 32.50 | 50.00 | – | – | – | – | 80.00 | 0 |" in markdown(report)


def test_a_suite_scores_a_judged_task_and_its_rerun_asks_nothing(judge, registered, tmp_path):
    from PIL import Image

    for image in CAPTIONS:
        Image.new("RGB", (8, 6), "blue").save(tmp_path / image)
    answers = {q["text"]: f"a{q['question_id']}" for q in LLAVA_QUESTIONS}
    # One server is both the served model and the judge: a review request starts with its context.
    server = judge(lambda text: llava_reply(text) if text.startswith("[Context]") else answers[text])
    questions = write_jsonl(tmp_path / "questions.jsonl", [with_truth(q) for q in LLAVA_QUESTIONS])
    suite = tmp_path / "suite.yaml"
    task = {"name": "wild", "task": "llava_wild", "questions": str(questions)}
    task.update(judge_base_url=server.url, judge_model=JUDGE, judge_concurrency=2)
    suite.write_text(
        yaml.safe_dump(
            {
                "backend": "openai",
                "base_url": [server.url],
                "served_model": "asmv2",
                "image_root": str(tmp_path),
                "out": str(tmp_path / "out"),
                "tasks": [task],
            }
        )
    )
    assert main(["eval", "run", "--suite", str(suite)]) == 0
    results = json.loads((tmp_path / "out" / "report.json").read_text())["results"]["wild"]
    assert results["official"]["overall"] == 79.3 and results["fixed"]["overall"] == 80.0
    assert results["official"]["judge"]["log"] == str(tmp_path / "out" / "wild.judge.jsonl")
    assert results["fixed"]["judge"]["new"] == 0  # fixed reuses official's reviews
    assert "| official | 79.30 | 86.70 | 33.30 | 140.00 | 100.00 | 0 |" in (tmp_path / "out" / "report.md").read_text()
    sent = len(server.bodies)
    assert sent == 10  # five answers, five reviews
    assert main(["eval", "run", "--suite", str(suite)]) == 0 and len(server.bodies) == sent


def test_the_client_sends_a_temperature_only_when_asked(judge):
    server = judge(lambda text: "ok")
    client = ChatClient(endpoint(server.url))
    messages = [{"role": "user", "content": "hi"}]
    assert client.complete(messages, 3, "q") == "ok" and client.complete(messages, 3, "q", temperature=0.5) == "ok"
    assert [body["temperature"] for body in server.bodies] == [0, 0.5]
    assert isinstance(server.bodies[0]["temperature"], int)  # the default request is unchanged: "temperature": 0


def test_review_messages_refuse_a_category_without_a_rule():
    with pytest.raises(EvalError, match="category 'chat' has no review rule"):
        llava_review_messages("c", "q", "r", "a", "chat")
