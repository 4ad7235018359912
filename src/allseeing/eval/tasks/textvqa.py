"""TextVQA (``llava_textvqa_val_v051_ocr.jsonl``): consensus accuracy as ``llava/eval/eval_textvqa.py`` computes it.

Questions: ``{question_id, image, text}``, the text ``question\\nReference OCR token: ...\\n<instruction>`` (or
``question\\n<instruction>``), asked as ``<image>\\n`` + text. LLaVA's file writes TextVQA's *image* id as
``question_id``, so an image asked twice has one id on two lines: :meth:`TextVqa.read_questions` numbers such
records ``<id>#1``, ``<id>#2`` in the order of their text (any line order gives the same ids) and keeps the written
id in ``source_question_id``; :meth:`TextVqa.read_predictions` numbers the answers of LLaVA's answer file (the
image id repeated, the question's text in ``prompt``) the same way.

Truth: ``--annotations TextVQA_0.5.1_val.json`` (``data: [{image_id, question, answers}]``), else the ``answers``
(ten strings) of each record. Both sides go through ``EvalAIAnswerProcessor``
(:func:`~allseeing.eval.metrics.vqa.textvqa_accuracy`). Key: ``accuracy``.

``official``: upstream's pairing, by (the written ``question_id`` taken as the image id, the question read from
the text and lower-cased); when several annotations share that pair the last one in the file answers for all;
the answered questions only, added in the prediction file's order. ``fixed``: pairs by (image file name without
extension, question), gives annotations sharing a pair to the questions holding it one each (in question id
order), counts an unanswered question as wrong and adds exactly.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

from allseeing.eval.metrics.vqa import evalai_answer, ordered_sum, textvqa_accuracy
from allseeing.eval.task import (
    EvalError,
    ScoreContext,
    answer_text,
    bookkeeping,
    index_predictions,
    key,
    percent,
    read_json,
    read_jsonl,
    require_all,
    scored_rows,
)
from allseeing.eval.tasks.common import SingleTurnTask
from allseeing.eval.tasks.vqa import annotations_of, human_answers, in_record

_OCR_PROMPT = re.compile(r"Question: (.*?) Short answer:", re.DOTALL)
_REFERENCE = "Reference OCR token:"

Pair = tuple[str, str]  # (image id, lower-cased question)


def question_of(text: str) -> str | None:
    """The lower-cased question inside a prompt, read as upstream's ``prompt_processor`` does; None where it
    asserts (a prompt of another shape)."""
    if text.startswith("OCR tokens: "):
        match = _OCR_PROMPT.search(text)
        return match.group(1).lower() if match else None
    lines = text.split("\n")
    if _REFERENCE + " " in text and len(lines) == 3:
        return (lines[1] if text.startswith(_REFERENCE) else lines[0]).lower()
    if len(lines) == 2:
        return lines[0].lower()
    return None


def unique_ids(records: list[dict], text_field: str, path: Path) -> list[dict]:
    """``records`` with each repeated ``question_id`` made ``<id>#<n>``, n counting in the order of the records'
    ``text_field`` (a question's ``text``, an answer's ``prompt``: the same string), the written id kept in
    ``source_question_id``."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[key(record["question_id"])].append(record)
    for question_id, group in groups.items():
        if len(group) == 1:
            continue
        if not all(isinstance(record.get(text_field), str) for record in group):
            raise EvalError(f"{path}: question_id {question_id!r} repeats and a line of it has no {text_field!r}")
        for number, record in enumerate(sorted(group, key=lambda r: r[text_field]), start=1):
            unique = f"{question_id}#{number}"
            if unique in groups:
                raise EvalError(f"{path}: question_id {question_id!r} repeats and {unique!r} is taken as well")
            record["source_question_id"] = record["question_id"]
            record["question_id"] = unique
    return records


class TextVqa(SingleTurnTask):
    name = "textvqa"
    max_new_tokens = 128  # model_vqa_loader's default; upstream's script passes none
    fields = ("question_id", "text")

    def read_questions(self, path: Path) -> list[dict]:
        return unique_ids(read_jsonl(path), "text", path)

    def read_predictions(self, path: Path) -> dict[str, dict]:
        """Answers by question id; LLaVA's (an image's id on each of its answers) numbered as the questions are."""
        return index_predictions(unique_ids(read_jsonl(path), "prompt", path), path)

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        require_all(questions, self.fields, context.questions_path)
        official = context.protocol == "official"
        rows = scored_rows(questions, predictions, official)
        truth = self.truth([question for question, _ in rows], context, official)
        values, invalid = [], 0
        for question, prediction in rows:
            answer = answer_text(prediction)
            value = 0.0
            if answer is not None:
                value = textvqa_accuracy(answer, truth[key(question["question_id"])])
                invalid += not evalai_answer(answer)  # nothing left to compare ("", ".", "the")
            values.append(value)
        total = ordered_sum(values) if official else math.fsum(values)
        return {
            "accuracy": percent(total, len(values)),
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }

    def truth(self, questions: list[dict], context: ScoreContext, official: bool) -> dict[str, tuple[str, ...]]:
        """The human answers of each of ``questions``, by question id."""
        path = annotations_of(context)
        if path is None:
            return {qid: humans.answers for qid, humans in in_record(questions, context.questions_path).items()}
        data = read_json(path, "the TextVQA annotations")
        records = data.get("data") if isinstance(data, dict) else None
        if not isinstance(records, list):
            raise EvalError(f"{path}: expected TextVQA's annotations, a JSON object with a 'data' list")
        shared: dict[Pair, list[tuple[str, ...]]] = defaultdict(list)
        for number, record in enumerate(records):
            if not (isinstance(record, dict) and "image_id" in record and isinstance(record.get("question"), str)):
                raise EvalError(f"{path}: annotation {number} needs an 'image_id' and a 'question'")
            where = f"{path}: annotation {number}"
            shared[(key(record["image_id"]), record["question"].lower())].append(
                human_answers(record.get("answers"), where)
            )
        holders: dict[Pair, list[str]] = defaultdict(list)
        for question in questions:
            holders[self.pair(question, context.questions_path, official)].append(key(question["question_id"]))
        truth = {}
        for pair, question_ids in holders.items():
            if pair not in shared:
                raise EvalError(
                    f"{path}: no annotation with image_id {pair[0]!r} and question {pair[1]!r} "
                    f"(question {question_ids[0]!r})"
                )
            found = shared[pair]
            for number, question_id in enumerate(sorted(question_ids)):
                # upstream's dict keeps the last annotation of a pair; fixed gives each its own while they last
                truth[question_id] = found[-1] if official else found[min(number, len(found) - 1)]
        return truth

    @staticmethod
    def pair(question: dict, path: Path, official: bool) -> Pair:
        """(image id, question) pairing ``question`` with its annotation: upstream takes the written question id
        as the image id; fixed the image file's name."""
        question_id = question.get("source_question_id", question["question_id"])
        asked = question_of(question["text"])
        if asked is None:
            raise EvalError(
                f"{path}: question {question['question_id']!r}: no question in its text as eval_textvqa reads it "
                f"('question\\nReference OCR token: ...\\ninstruction' or 'question\\ninstruction')"
            )
        if official or not isinstance(question.get("image"), str):
            return key(question_id), asked
        return Path(question["image"]).stem, asked
