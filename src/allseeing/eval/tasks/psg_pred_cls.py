"""PSG predicate classification (``psg_pred_cls_full_square_pad.jsonl`` + ``psg_pred_cls_options.json``).

The model ranks every option for each (subject, object) pair by likelihood (``infer.rank``); a prediction line
holds ``text`` (the options, best first) and ``scores`` (upstream's length-normalised scores, same order), plus
``sum_logprobs``. ``official`` ranks by ``scores`` with upstream's top-(K-1) cut; ``fixed`` ranks by
``sum_logprobs`` (the reply and ``</s>``: no prefix bias) and keeps the top K.
"""

from __future__ import annotations

import json
from pathlib import Path

from allseeing.eval.metrics.pred_cls import KS, recall_at_k
from allseeing.eval.task import Ask, EvalError, ScoreContext, bookkeeping, key, require
from allseeing.eval.tasks.common import single_turn_asks

OPTIONS_FILE = "psg_pred_cls_options.json"


def read_options(questions_path: Path, explicit: str | Path | None = None) -> list[str]:
    path = Path(explicit) if explicit else questions_path.parent / OPTIONS_FILE
    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EvalError(f"cannot read the options {path}: {error}") from None
    if not (isinstance(options, list) and options and all(isinstance(o, str) for o in options)):
        raise EvalError(f"{path}: expected a JSON list of predicate strings")
    return options


class PsgPredCls:
    name = "psg_pred_cls"
    max_new_tokens = 0
    ranks_options = True

    def asks(self, questions: list[dict], questions_path: Path, settings: dict | None = None) -> list[Ask]:
        options = tuple(read_options(questions_path, (settings or {}).get("options_file")))
        asks = []
        for question, ask in zip(questions, single_turn_asks(questions, questions_path), strict=True):
            require(question, ("label_format",), questions_path)
            asks.append(Ask(ask.question_id, ask.image, ask.turns, options, question["label_format"]))
        return asks

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        official = context.protocol == "official"
        images: dict[str, tuple[list, set]] = {}
        invalid = 0
        for question in questions:
            require(question, ("question_id", "image", "correct_option", "subj", "obj"), context.questions_path)
            candidates, truth = images.setdefault(question["image"], ([], set()))
            pair = f"{question['subj']}|{question['obj']}"
            truth.update((pair, p) for p in question["correct_option"])
            prediction = predictions.get(key(question["question_id"]))
            if prediction is None:
                continue
            ranked = prediction.get("text")
            scores = prediction.get("scores") if official else prediction.get("sum_logprobs", prediction.get("scores"))
            if not (isinstance(ranked, list) and isinstance(scores, list) and len(ranked) == len(scores)):
                invalid += 1
                continue
            candidates.extend((float(s), pair, option) for option, s in zip(ranked, scores, strict=True))
        result: dict = {}
        for k in KS:
            recall, mean, _ = recall_at_k(images, k, official)
            result[f"recall@{k}"] = recall
            result[f"mean_recall@{k}"] = mean
        result["per_predicate@100"] = recall_at_k(images, KS[-1], official)[2]
        return {**result, **bookkeeping(questions, predictions, invalid, context.protocol)}
