"""Evaluation rows from test scenes, in exactly the upstream file formats and field names (docs/synthetic.md lists
them).

Each builder takes one test scene and returns the rows it contributes to one file. Pixel boxes are rounded to
1/100 pixel. Scenes of the rare ("abnormal") subset live under ``abnormal_images/``, as in CRPE.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from allseeing.data.synth import language as lang
from allseeing.data.synth.relations import PREDICATES, Relation, holding, salient_relations
from allseeing.data.synth.scenes import Triplet
from allseeing.data.synth.tasks import false_predicates, pair_question
from allseeing.data.synth.world import COLOURS, SHAPES, Scene
from allseeing.data.templates import image_question
from allseeing.rec.write import box_list

ALL_NAMES = tuple(f"{colour} {shape}" for colour in COLOURS for shape in SHAPES)
FIELDS = {
    "crpe": ("question_id", "image", "text", "correct_option", "category"),
    "grounding": ("question_id", "image", "text", "bbox", "width", "height", "category"),
    "region_caption": ("question_id", "image", "text", "category", "ann_id"),
    "vcr": ("question_id", "image", "conversations", "correct_option", "category"),
    "psg": ("question_id", "image", "text", "width", "height", "relation_tuples"),
    "psg_pred_cls": ("question_id", "image", "text", "label_format", "correct_option", "subj", "obj"),
}
PRED_CLS_LABEL_FORMAT = "{}"
MAX_GROUNDING_PER_SCENE = 3
MAX_REGIONS_PER_SCENE = 2
MAX_PAIRS_PER_SCENE = 6


@dataclass(frozen=True)
class EvalScene:
    scene: Scene
    image: str
    rare: Triplet | None  # the rare triplet an abnormal scene was built around

    @property
    def split(self) -> str:
        return "synth_abnormal" if self.rare else "synth_test"


def _pixels(box: tuple[float, ...]) -> list[float]:
    return [round(v, 2) for v in box]


def probe_relation(test: EvalScene, rng: random.Random) -> tuple[Relation, str, str] | None:
    """The relation an evaluation question asks about, with unambiguous names for its two objects.

    Abnormal scenes ask about their rare triplet (object 1 relates to object 0 by construction).
    """
    scene = test.scene
    if test.rare:
        candidates = [Relation(1, test.rare[1], 0)]
    else:
        candidates = salient_relations(scene)
        rng.shuffle(candidates)
    for relation in candidates:
        subject, obj = lang.refer(scene, relation.subject), lang.refer(scene, relation.object)
        if subject and obj:
            return relation, subject, obj
    return None


def _name_distractors(rng: random.Random, scene: Scene, satisfies, exclude: set[str]) -> list[str]:
    """Three object names for which the probed statement is false, none of them in ``exclude``.

    Names of objects in the image come first (the harder distractors), then names absent from it.
    """
    right = {item.name for i, item in enumerate(scene.items) if satisfies(i)}
    seen = sorted({item.name for item in scene.items} - right - exclude)
    unseen = sorted(set(ALL_NAMES) - {item.name for item in scene.items} - exclude)
    rng.shuffle(seen)
    rng.shuffle(unseen)
    return (seen + unseen)[:3]


def _crpe_rows(
    test: EvalScene, key: str, category: str, question: str, correct: str, distractors: list[str]
) -> list[dict]:
    """The four circular rotations of one question, on consecutive rows."""
    return [
        {
            "question_id": f"{test.scene.scene_id}-{key}-{k}",
            "image": test.image,
            "text": lang.options_text(question, options),
            "correct_option": letter,
            "category": category,
        }
        for k, (options, letter) in enumerate(lang.rotations(correct, distractors))
    ]


def crpe_exist(test: EvalScene, rng: random.Random) -> list[dict]:
    scene = test.scene
    present = rng.choice(scene.items).name
    absent = sorted(set(ALL_NAMES) - {item.name for item in scene.items})
    return _crpe_rows(test, "exist", "exist", lang.EXIST_QUESTION, present, rng.sample(absent, 3))


def crpe_relation(test: EvalScene, rng: random.Random) -> list[dict]:
    """Subject, predicate and object questions about one relation of the scene."""
    probe = probe_relation(test, rng)
    if probe is None:
        return []
    relation, subject, obj = probe
    scene, holds = test.scene, PREDICATES[relation.predicate].holds
    items, s, o = scene.items, relation.subject, relation.object
    rows = _crpe_rows(
        test,
        "subject",
        "subject",
        lang.SUBJECT_QUESTION.format(relation.predicate, obj),
        items[s].name,
        _name_distractors(rng, scene, lambda i: i != o and holds(items[i], items[o]), {items[s].name, items[o].name}),
    )
    rows += _crpe_rows(
        test,
        "predicate",
        "predicate",
        lang.RELATION_QUESTION.format(subject, obj),
        relation.predicate,
        rng.sample(false_predicates(scene, s, o), 3),
    )
    rows += _crpe_rows(
        test,
        "object",
        "object",
        lang.OBJECT_QUESTION.format(subject, relation.predicate),
        items[o].name,
        _name_distractors(rng, scene, lambda i: i != s and holds(items[s], items[i]), {items[s].name, items[o].name}),
    )
    return rows


def grounding(test: EvalScene, rng: random.Random) -> list[dict]:
    scene = test.scene
    referable = [(i, e) for i in range(len(scene.items)) if (e := lang.refer(scene, i))]
    rng.shuffle(referable)
    rows = []
    for index, expression in sorted(referable[:MAX_GROUNDING_PER_SCENE]):
        kind = (
            "name"
            if expression == scene.items[index].name
            else "size"
            if expression.startswith(scene.items[index].size)
            else "position"
        )
        rows.append(
            {
                "question_id": f"{scene.scene_id}-ground-{index}",
                "image": test.image,
                "text": lang.GROUNDING_PROMPT.format(expression),
                "bbox": _pixels(scene.items[index].pixel_box),
                "width": scene.width,
                "height": scene.height,
                "category": f"synth_{kind}",
            }
        )
    return rows


def region_captions(test: EvalScene, rng: random.Random) -> list[tuple[dict, list[str]]]:
    """Rows of region_caption_eval_square_pad.jsonl, each with its reference captions (``ann_id`` set later)."""
    scene = test.scene
    indices = sorted(rng.sample(range(len(scene.items)), min(MAX_REGIONS_PER_SCENE, len(scene.items))))
    result = []
    for index in indices:
        item = scene.items[index]
        row = {
            "question_id": f"{scene.scene_id}-region-{index}",
            "image": test.image,
            "text": lang.REGION_PROMPT.format(box_list([item.box])),
            "category": test.split,
        }
        references = [
            lang.with_article(lang.size_name(item)),
            lang.with_article(item.name),
            f"the {item.size} {item.shape} is {item.colour}",
            f"{lang.with_article(item.colour)} {item.shape}",
        ]
        result.append((row, references))
    return result


def vcr(test: EvalScene, rng: random.Random) -> list[dict]:
    """A question-answer row (qa) and its rationale row (qar), both about one relation."""
    probe = probe_relation(test, rng)
    if probe is None:
        return []
    relation, subject, obj = probe
    scene = test.scene
    wrong = rng.sample(false_predicates(scene, relation.subject, relation.object), 3)
    question = pair_question(lang.RELATION_QUESTION, scene, relation, subject, obj)
    options, letter = lang.shuffled_options(rng, relation.predicate, wrong)
    first_turn = {"from": "human", "value": image_question(lang.options_text(question, options))}
    reasons = [lang.RATIONALES[p].format(s=subject, o=obj) for p in [relation.predicate, *wrong]]
    reason_options, reason_letter = lang.shuffled_options(rng, reasons[0], reasons[1:])
    base = {"image": test.image}
    return [
        {
            "question_id": f"{scene.scene_id}-vcr-qa",
            **base,
            "conversations": [first_turn],
            "correct_option": letter,
            "category": "qa",
        },
        {
            "question_id": f"{scene.scene_id}-vcr-qar",
            **base,
            "conversations": [
                first_turn,
                {"from": "gpt", "value": letter},
                {"from": "human", "value": lang.options_text(lang.RATIONALE_QUESTION, reason_options)},
            ],
            "correct_option": reason_letter,
            "category": "qar",
        },
    ]


def psg(test: EvalScene, rng: random.Random) -> list[dict]:
    """One row per scene with relations; the ground truth is the salient relations, with shapes as classes."""
    scene = test.scene
    tuples = [
        [
            scene.items[r.subject].shape,
            _pixels(scene.items[r.subject].pixel_box),
            scene.items[r.object].shape,
            _pixels(scene.items[r.object].pixel_box),
            r.predicate,
        ]
        for r in salient_relations(scene)
    ]
    if not tuples:
        return []  # a single object: no relation to find
    return [
        {
            "question_id": f"{scene.scene_id}-psg",
            "image": test.image,
            "text": lang.PSG_PROMPT,
            "width": scene.width,
            "height": scene.height,
            "relation_tuples": tuples,
        }
    ]


def psg_pred_cls(test: EvalScene, rng: random.Random) -> list[dict]:
    scene = test.scene
    rows = []
    for relation in salient_relations(scene)[:MAX_PAIRS_PER_SCENE]:
        subject, obj = lang.refer(scene, relation.subject), lang.refer(scene, relation.object)
        if not (subject and obj):
            continue
        rows.append(
            {
                "question_id": f"{scene.scene_id}-pair-{relation.subject}-{relation.object}",
                "image": test.image,
                "text": pair_question(lang.RELATION_QUESTION, scene, relation, subject, obj),
                "label_format": PRED_CLS_LABEL_FORMAT,
                "correct_option": holding(scene, relation.subject, relation.object),
                "subj": f"obj{relation.subject}",
                "obj": f"obj{relation.object}",
            }
        )
    return rows
