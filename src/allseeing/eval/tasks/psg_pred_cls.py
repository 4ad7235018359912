"""PSG predicate classification (``psg_pred_cls_full_square_pad.jsonl`` + ``psg_pred_cls_options.json``).

The model ranks every option for each (subject, object) pair by likelihood (``infer.rank``); a prediction line
holds ``text`` (the options, best first) and ``scores`` (upstream's length-normalised scores, same order), plus
``sum_logprobs``. ``official`` ranks by ``scores`` as upstream does (answered questions only; a ``scores`` list
of another length than ``text`` is cut to the shorter of the two, and counted in ``invalid``); ``fixed`` ranks by
``sum_logprobs`` (the reply and ``</s>``: no prefix bias), counts an unanswered pair's predicates as missed and
drops a line whose lists differ in length (invalid). Both read at most 1,000 options a line (upstream's
``topk_each_query``). See :mod:`allseeing.eval.metrics.pred_cls` for the ranking.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from pathlib import Path

from allseeing.eval.metrics.pred_cls import KS, ImageGraph, recall_at_k
from allseeing.eval.task import (
    Ask,
    EvalError,
    ScoreContext,
    bookkeeping,
    key,
    predicate_recalls,
    require,
    require_all,
    scored_rows,
)
from allseeing.eval.tasks.common import JsonlQuestions, single_turn_asks

OPTIONS_FILE = "psg_pred_cls_options.json"
OPTIONS_PER_QUESTION = 1000  # upstream's topk_each_query: options past it are ignored


def read_options(questions_path: Path, explicit: str | Path | None = None) -> list[str]:
    path = Path(explicit) if explicit else questions_path.parent / OPTIONS_FILE
    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EvalError(f"cannot read the options {path}: {error}") from None
    if not (isinstance(options, list) and options and all(isinstance(o, str) for o in options)):
        raise EvalError(f"{path}: expected a JSON list of predicate strings")
    return options


def _all_numbers(values: object) -> bool:
    return isinstance(values, list) and all(isinstance(v, int | float) for v in values)


def _pair(question: dict) -> Hashable:
    """The (subject, object) of a question, compared as upstream compares them (by value)."""
    pair = (question["subj"], question["obj"])
    try:
        hash(pair)
    except TypeError:  # a list or dict: compare its JSON text
        return json.dumps(pair, sort_keys=True)
    return pair


class PsgPredCls(JsonlQuestions):
    name = "psg_pred_cls"
    max_new_tokens = 0
    ranks_options = True
    fields = ("question_id", "image", "correct_option", "subj", "obj")

    def asks(self, questions: list[dict], questions_path: Path, settings: dict | None = None) -> list[Ask]:
        options = tuple(read_options(questions_path, (settings or {}).get("options_file")))
        asks = []
        for question, ask in zip(questions, single_turn_asks(questions, questions_path), strict=True):
            require(question, ("label_format",), questions_path)
            asks.append(Ask(ask.question_id, ask.image, ask.turns, options, question["label_format"]))
        return asks

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        official = context.protocol == "official"
        images: dict[str, ImageGraph] = {}
        invalid = 0
        require_all(questions, self.fields, context.questions_path)
        for question, prediction in scored_rows(questions, predictions, official):
            graph = images.setdefault(question["image"], ImageGraph())
            pair = _pair(question)
            graph.truth.extend((pair, p) for p in question["correct_option"])
            if prediction is None:
                continue
            ranked = prediction.get("text")
            scores = prediction.get("scores") if official else prediction.get("sum_logprobs", prediction.get("scores"))
            if not (isinstance(ranked, list) and _all_numbers(scores)):
                invalid += 1
                continue
            if len(ranked) != len(scores):
                invalid += 1
                if not official:
                    continue
            question_id = key(question["question_id"])
            # zip stops at the shorter list, as upstream's does.
            graph.candidates.extend(
                (float(s), question_id, pair, option)
                for option, s in zip(ranked[:OPTIONS_PER_QUESTION], scores, strict=False)
            )
        result: dict = {}
        for k in KS:
            summary = predicate_recalls(recall_at_k(images, k, official), exact=not official)
            result[f"recall@{k}"] = summary["recall"]
            result[f"mean_recall@{k}"] = summary["mean_recall"]
        result[f"per_predicate@{KS[-1]}"] = summary["per_predicate"]
        return {**result, **bookkeeping(questions, predictions, invalid, context.protocol, text_answers=False)}
