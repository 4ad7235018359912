"""ScienceQA, image subset (SQA-IMG): LLaVA's ``llava_test_CQM-A.json`` asked as
``llava/eval/model_vqa_science.py --single-pred-prompt`` asks it, scored as ``llava/eval/eval_science_qa.py``
scores it (OpenGVLab/all-seeing).

The question file is a JSON list of LLaVA conversation records ``{id, image?, conversations: [{from: human, value:
"Context: ...\\nQuestion: ...\\nOptions: (A) ... (B) ...\\n<image>"}, {from: gpt, value: "The answer is B."}]}``.
The prompt is the human turn without ``<image>``, stripped, after ``<image>\\n`` when the record has an image, and
then "\\nAnswer with the option's letter from the given choices directly.".

Keys: ``accuracy`` (every question) and ``img`` (the questions with an image: the table's SQA-IMG). An answer is
read as upstream reads it (:func:`~allseeing.eval.metrics.multiple_choice.science_qa_choice`); one it cannot read
is wrong and counted in ``invalid``. ``official``: an unanswered question is wrong and left out of ``img``'s count
(upstream decides "has an image" from the answer's prompt, and a missing answer has none); ``fixed``: it is wrong
in both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from allseeing.data.templates import image_question
from allseeing.eval.metrics.multiple_choice import SCIENCE_QA_LETTERS, science_qa_choice
from allseeing.eval.task import (
    Ask,
    EvalError,
    ScoreContext,
    answer_text,
    bookkeeping,
    key,
    percent,
    read_json,
    require_all,
)
from allseeing.eval.tasks.common import JsonlQuestions

INSTRUCTION = "Answer with the option's letter from the given choices directly."
IMAGE_MARKER = "<image>"
_GPT_ANSWER = re.compile(r"The answer is ([A-E])\.")
_OPTIONS_LINE = re.compile(r"^Options: (.*)$", re.MULTILINE)  # convert_sqa_to_llava.py's "Options: (A) x (B) y"
_OPTION = re.compile(r"\(([A-E])\) ")


@dataclass(frozen=True)
class Truth:
    answer: int  # the correct option's index
    choices: int  # how many options the question has


def read_science_qa(path: Path) -> list[dict]:
    """The records of LLaVA's ScienceQA file, each with ``question_id`` (its ``id``) and ``text`` (the human turn)."""
    records = read_json(path)
    if not isinstance(records, list):
        raise EvalError(f"{path}: expected a JSON list of conversation records")
    questions, seen = [], set()
    for number, record in enumerate(records):
        try:
            question_id, text = key(record["id"]), record["conversations"][0]["value"]
        except (KeyError, IndexError, TypeError):
            raise EvalError(f"{path}: record {number} lacks an id or a first conversation turn's value") from None
        if question_id in seen:
            raise EvalError(f"{path}: id {question_id!r} is given twice")
        seen.add(question_id)
        questions.append({**record, "question_id": question_id, "text": text})
    return questions


def prompt(question: dict) -> str:
    text = question["text"].replace(IMAGE_MARKER, "").strip()
    # model_vqa_science.py looks for the key, not its value.
    return f"{image_question(text) if 'image' in question else text}\n{INSTRUCTION}"


def problems_truth(annotations: Path) -> dict[str, Truth]:
    """The truth of ScienceQA's ``problems.json`` ({pid: {answer: index, choices: [...]}}), given as the file or
    the folder holding it."""
    path = annotations / "problems.json" if annotations.is_dir() else annotations
    problems = read_json(path)
    try:
        return {key(pid): Truth(problem["answer"], len(problem["choices"])) for pid, problem in problems.items()}
    except (AttributeError, KeyError, TypeError) as error:
        raise EvalError(f"{path}: not ScienceQA's problems.json ({{pid: {{answer, choices}}}}): {error}") from None


def record_truth(question: dict, path: Path) -> Truth:
    """The truth a record carries: ``answer`` (a letter or an index), else its gpt turn ("The answer is B.");
    the number of options from ``choices`` (a list), else from the "(A) " marks of its "Options:" line."""
    answer = question.get("answer")
    if answer is None:
        turns = question.get("conversations", [])
        found = _GPT_ANSWER.fullmatch(turns[1].get("value", "")) if len(turns) > 1 else None
        answer = found.group(1) if found else None
    if isinstance(answer, str) and answer in SCIENCE_QA_LETTERS:
        answer = SCIENCE_QA_LETTERS.index(answer)
    if not isinstance(answer, int) or isinstance(answer, bool):
        raise EvalError(
            f"{path}: question {question['question_id']!r} has no answer (a letter or an index, or a gpt turn "
            f"'The answer is X.'): give problems.json as annotations"
        )
    choices = question.get("choices")
    if isinstance(choices, list):
        return Truth(answer, len(choices))
    line = _OPTIONS_LINE.search(question["text"])
    if not line or not _OPTION.search(line.group(1)):
        raise EvalError(f"{path}: question {question['question_id']!r} has no 'choices' and no 'Options: (A) ...' line")
    return Truth(answer, len(_OPTION.findall(line.group(1))))


def truth_of(questions: list[dict], context: ScoreContext) -> dict[str, Truth]:
    annotations = context.options.get("annotations")
    if not annotations:
        return {q["question_id"]: record_truth(q, context.questions_path) for q in questions}
    truth = problems_truth(Path(annotations))
    for question in questions:
        if question["question_id"] not in truth:
            raise EvalError(f"{annotations}: no problem {question['question_id']!r} of {context.questions_path}")
    return truth


class ScienceQaImg(JsonlQuestions):
    name = "sqa_img"
    max_new_tokens = 1024  # model_vqa_science.py's budget
    ranks_options = False
    fields = ("question_id", "text")

    def read_questions(self, path: Path) -> list[dict]:
        return read_science_qa(Path(path))

    def asks(self, questions: list[dict], questions_path: Path, settings: dict | None = None) -> list[Ask]:
        require_all(questions, self.fields, questions_path)
        return [Ask(q["question_id"], q.get("image"), ((prompt(q), None),)) for q in questions]

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        require_all(questions, self.fields, context.questions_path)
        truth = truth_of(questions, context)
        official = context.protocol == "official"
        right = img_right = img_total = invalid = 0
        for question in questions:
            prediction = predictions.get(question["question_id"])
            text = answer_text(prediction)
            expected = truth[question["question_id"]]
            chosen = -1 if text is None else science_qa_choice(text, expected.choices)
            invalid += text is not None and chosen == -1
            hit = chosen == expected.answer
            right += hit
            if "image" in question and (prediction is not None or not official):
                img_right += hit
                img_total += 1
        return {
            "accuracy": percent(right, len(questions)),
            "img": percent(img_right, img_total),
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }
