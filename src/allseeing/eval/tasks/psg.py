"""Open-ended scene-graph generation on PSG (``psg_eval.jsonl``): recall, mean recall, tuples per image.

See :mod:`allseeing.eval.metrics.scene_graph` for the two protocols. ``invalid`` counts answers whose box lists
were malformed (odd or mismatched), the complement of ``correct_format_ratio``.
"""

from __future__ import annotations

from collections import defaultdict

from allseeing.eval.metrics import scene_graph
from allseeing.eval.metrics.boxformat import to_pixels
from allseeing.eval.metrics.lemma import load_synonyms
from allseeing.eval.task import ScoreContext, answer_text, bookkeeping, key, percent, require
from allseeing.eval.tasks.common import SingleTurnTask


class Psg(SingleTurnTask):
    name = "psg"
    max_new_tokens = 1536

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        official = context.protocol == "official"
        synonyms = load_synonyms(context.options.get("synonyms"))
        read = scene_graph.official_predictions if official else scene_graph.fixed_predictions
        hits: dict[str, int] = defaultdict(int)
        totals: dict[str, int] = defaultdict(int)
        tuples = formats = answered = 0
        for question in questions:
            require(question, ("question_id", "width", "height", "relation_tuples"), context.questions_path)
            size = (question["width"], question["height"])
            truths = scene_graph.ground_truth(question["relation_tuples"], not official, synonyms)
            answer = answer_text(predictions.get(key(question["question_id"])))
            predicted: list = []
            if answer is not None:

                def pixels(box, size=size):
                    return to_pixels(box, size, context.box_format, check_range=not official)

                predicted, correct_format = read(answer, pixels, synonyms)
                answered += 1
                tuples += len(predicted)
                formats += correct_format
            for truth, recalled in zip(
                truths, scene_graph.recalled(predicted, truths, one_to_one=not official), strict=True
            ):
                totals[truth.predicate] += 1
                hits[truth.predicate] += recalled
        per_predicate = {p: percent(hits[p], totals[p]) for p in sorted(totals)}
        return {
            "recall": percent(sum(hits.values()), sum(totals.values())),
            "mean_recall": round(sum(per_predicate.values()) / len(per_predicate), 2) if per_predicate else None,
            "num_pred_tuples": round(tuples / answered, 2) if answered else None,
            "correct_format_ratio": percent(formats, answered),
            "per_predicate": per_predicate,
            **bookkeeping(questions, predictions, answered - formats, context.protocol),
        }
