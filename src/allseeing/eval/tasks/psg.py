"""Open-ended scene-graph generation on PSG (``psg_eval.jsonl``): recall, mean recall, tuples per image.

See :mod:`allseeing.eval.metrics.scene_graph` for the two protocols. ``invalid`` counts answers whose box lists
were malformed (odd or mismatched), the complement of ``correct_format_ratio``; ``lemmatizer`` names the
lemmatiser used (spaCy's pipeline gives upstream's number; the approximation may not). ``official`` scores the
answered questions only (upstream's denominators); ``fixed`` counts an unanswered question's tuples as missed.
"""

from __future__ import annotations

from functools import partial

from allseeing.eval.metrics import scene_graph
from allseeing.eval.metrics.boxformat import to_pixels
from allseeing.eval.metrics.float32 import pixels32
from allseeing.eval.metrics.lemma import get_lemmatizer, load_synonyms
from allseeing.eval.task import (
    ScoreContext,
    answer_text,
    bookkeeping,
    percent,
    predicate_recalls,
    require_all,
    scored_rows,
)
from allseeing.eval.tasks.common import SingleTurnTask


class Psg(SingleTurnTask):
    name = "psg"
    max_new_tokens = 1536
    fields = ("question_id", "width", "height", "relation_tuples")

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        official = context.protocol == "official"
        vocabulary = scene_graph.Vocabulary(
            get_lemmatizer(context.options.get("lemmatizer", "auto")),
            load_synonyms(context.options.get("synonyms"), context.protocol),
        )
        read = scene_graph.official_predictions if official else scene_graph.fixed_predictions

        def pixels(box, size):
            if official:  # unchecked, in float32, as upstream
                return pixels32(box, size, context.box_format)
            return to_pixels(box, size, context.box_format, check_range=True)

        # Per predicate (in order of first appearance, as upstream sums them), whether each ground truth was recalled.
        recalls: dict[str, list[bool]] = {}
        tuples = formats = answered = 0
        require_all(questions, self.fields, context.questions_path)
        for question, prediction in scored_rows(questions, predictions, official):
            size = (question["width"], question["height"])
            truths = scene_graph.ground_truth(question["relation_tuples"], not official, vocabulary)
            answer = answer_text(prediction)
            predicted: list = []
            if answer is not None:
                predicted, correct_format = read(answer, partial(pixels, size=size), vocabulary)
                answered += 1
                tuples += len(predicted)
                formats += correct_format
            for truth, recalled in zip(truths, scene_graph.recalled(predicted, truths, official), strict=True):
                recalls.setdefault(truth.predicate, []).append(recalled)
        summary = predicate_recalls(recalls, exact=not official)
        return {
            "recall": summary["recall"],
            "mean_recall": summary["mean_recall"],
            "num_pred_tuples": round(tuples / answered, 2) if answered else None,
            "correct_format_ratio": percent(formats, answered),
            "per_predicate": summary["per_predicate"],
            "lemmatizer": vocabulary.lemmatizer.name,
            **bookkeeping(questions, predictions, answered - formats, context.protocol),
        }
