"""Region captioning (``region_caption_eval_square_pad.jsonl`` + ``<category>_coco_format.json``): COCO metrics.

``official``: the raw answers of the answered questions only (upstream scored whatever ids it got, ReC tags
and all). ``fixed``: ReC tags stripped from the answers, and every question scored (an unanswered one as an empty
caption), so a partial run cannot look complete. References are read from the question file's folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from allseeing.eval.metrics.captions import coco_caption_scores
from allseeing.eval.task import EvalError, ScoreContext, answer_text, bookkeeping, key, require_all
from allseeing.eval.tasks.common import SingleTurnTask
from allseeing.rec.parse import parse


def load_references(folder: Path, category: str) -> dict[int, list[str]]:
    path = folder / f"{category}_coco_format.json"
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EvalError(f"cannot read the references {path}: {error}") from None
    annotations = coco.get("annotations") if isinstance(coco, dict) else None
    if not isinstance(annotations, list):
        raise EvalError(f"{path}: expected a COCO caption file, a JSON object with an 'annotations' list")
    references: dict[int, list[str]] = {}
    for number, annotation in enumerate(annotations):
        if not (
            isinstance(annotation, dict) and "image_id" in annotation and isinstance(annotation.get("caption"), str)
        ):
            raise EvalError(f"{path}: annotation {number} needs an 'image_id' and a 'caption' string")
        references.setdefault(annotation["image_id"], []).append(annotation["caption"])
    return references


class RegionCaption(SingleTurnTask):
    name = "region_caption"
    max_new_tokens = 64
    fields = ("question_id", "category", "ann_id")

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        official = context.protocol == "official"
        by_category: dict[str, dict[int, str]] = {}
        require_all(questions, self.fields, context.questions_path)
        for question in questions:
            answer = answer_text(predictions.get(key(question["question_id"])))
            if answer is None and official:
                continue
            caption = answer if official else parse(answer or "", mode="lenient").caption
            by_category.setdefault(question["category"], {})[question["ann_id"]] = caption
        result = {}
        folder = context.questions_path.parent
        for category in sorted({q["category"] for q in questions}):
            references = load_references(folder, category)
            candidates = by_category.get(category, {})
            missing = sorted(set(candidates) - set(references))
            if missing:
                raise EvalError(f"{folder}/{category}_coco_format.json has no reference for ann_id {missing[:5]}")
            result[category] = coco_caption_scores(references, candidates)
        return {**result, **bookkeeping(questions, predictions, 0, context.protocol)}
