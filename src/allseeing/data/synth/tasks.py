"""Training samples of every upstream task type, in LLaVA format, from one scene.

Each builder returns the (human, gpt) turns of one sample, or ``None`` when the scene cannot support the task
(say, no object can be referred to unambiguously). The first human turn gets ``<image>\\n`` in front.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from allseeing.data.synth import language as lang
from allseeing.data.synth.relations import PREDICATES, SPECIFIC, Relation, holding, salient_relations
from allseeing.data.synth.world import Scene
from allseeing.data.templates import image_question
from allseeing.rec.graph import SceneGraph, SceneObject, SceneRelation
from allseeing.rec.write import box_list, object_mention

Turns = list[tuple[str, str]]
MAX_DESCRIBED_RELATIONS = 4


def llava_sample(sample_id: str, image: str, turns: Turns) -> dict:
    """``{"id", "image", "conversations"}`` with ``<image>`` leading the first human turn."""
    conversations = []
    for index, (question, answer) in enumerate(turns):
        value = image_question(question) if index == 0 else question
        conversations += [{"from": "human", "value": value}, {"from": "gpt", "value": answer}]
    return {"id": sample_id, "image": image, "conversations": conversations}


def _phrase(scene: Scene, index: int) -> str:
    return lang.refer(scene, index) or scene.items[index].name


def _referable_relations(scene: Scene) -> list[tuple[Relation, str, str]]:
    """Salient relations whose two objects can be named unambiguously, with those names."""
    result = []
    for relation in salient_relations(scene):
        subject, obj = lang.refer(scene, relation.subject), lang.refer(scene, relation.object)
        if subject and obj:
            result.append((relation, subject, obj))
    return result


def false_predicates(scene: Scene, subject: int, obj: int) -> list[str]:
    """Predicates that do not hold for (subject, object): safe distractors."""
    true = set(holding(scene, subject, obj))
    return [name for name in PREDICATES if name not in true]


def caption_turns(scene: Scene, rng: random.Random) -> Turns | None:
    return [(rng.choice(lang.CAPTION_PROMPTS), lang.caption(scene))]


def description_text(scene: Scene, rng: random.Random) -> str:
    """A grounded detailed description: every object with its box, then the telling relations with <pred>."""
    count = len(scene.items)
    sentences = [f"There {'is' if count == 1 else 'are'} {lang.count_phrase(count, 'object')} in the image."]
    phrases = [_phrase(scene, i) for i in range(count)]
    mentions = [
        f"{lang.article(p)} {object_mention(p, [item.box])}" for p, item in zip(phrases, scene.items, strict=True)
    ]
    sentences.append(
        "I can see " + (mentions[0] if count == 1 else ", ".join(mentions[:-1]) + " and " + mentions[-1]) + "."
    )
    relations = salient_relations(scene)
    specific = [r for r in relations if r.predicate in SPECIFIC]
    others = [r for r in relations if r.predicate not in SPECIFIC]
    rng.shuffle(others)
    for relation in (specific + others)[:MAX_DESCRIBED_RELATIONS]:
        sentences.append(
            lang.relation_sentence(
                _phrase(scene, relation.subject),
                scene.items[relation.subject],
                relation.predicate,
                _phrase(scene, relation.object),
                scene.items[relation.object],
            )
        )
    return " ".join(sentences)


def description_turns(scene: Scene, rng: random.Random) -> Turns | None:
    return [(rng.choice(lang.DESCRIPTION_PROMPTS), description_text(scene, rng))]


def region_caption_turns(scene: Scene, rng: random.Random) -> Turns | None:
    item = rng.choice(scene.items)
    prompt = rng.choice(lang.REGION_PROMPTS).format(box_list([item.box]))
    return [(prompt, f"{lang.with_article(lang.size_name(item)).capitalize()}.")]


def _referable_objects(scene: Scene) -> list[tuple[int, str]]:
    """(index, expression) of every object that can be named unambiguously."""
    return [(i, e) for i in range(len(scene.items)) if (e := lang.refer(scene, i))]


def _grounding_turn(scene: Scene, index: int, expression: str, rng: random.Random) -> tuple[str, str]:
    prompt = rng.choice(lang.GROUNDING_PROMPTS).format(expression)
    return prompt, object_mention(expression, [scene.items[index].box]) + "."


def grounding_turns(scene: Scene, rng: random.Random) -> Turns | None:
    referable = _referable_objects(scene)
    if not referable:
        return None
    return [_grounding_turn(scene, *rng.choice(referable), rng)]


def grounding_all_turns(scene: Scene, rng: random.Random) -> Turns | None:
    """One grounding turn for every referable object, in random order (scenes with two or more of them).

    The same image asked about different objects in one sample, as LLaVA-1.5 packs RefCOCO's expressions per image:
    an answer that ignores the question is wrong within the sample, and the image is encoded once for several
    answers (about four in the synthetic world).
    """
    referable = _referable_objects(scene)
    if len(referable) < 2:
        return None
    rng.shuffle(referable)
    return [_grounding_turn(scene, index, expression, rng) for index, expression in referable]


def scene_graph_text(scene: Scene) -> str:
    """The scene graph as ReC: one sentence per salient relation, objects without one listed after."""
    graph = SceneGraph(
        tuple(SceneObject(i, item.name, item.box) for i, item in enumerate(scene.items)),
        tuple(SceneRelation(r.subject, r.predicate, r.object) for r in salient_relations(scene)),
    )
    return graph.to_rec()


def scene_graph_turns(scene: Scene, rng: random.Random) -> Turns | None:
    return [(rng.choice(lang.SCENE_GRAPH_PROMPTS), scene_graph_text(scene))]


def relation_mc_turns(scene: Scene, rng: random.Random) -> Turns | None:
    candidates = _referable_relations(scene)
    if not candidates:
        return None
    relation, subject, obj = rng.choice(candidates)
    distractors = rng.sample(false_predicates(scene, relation.subject, relation.object), 3)
    options, letter = lang.shuffled_options(rng, relation.predicate, distractors)
    return [(lang.options_text(rng.choice(lang.RELATION_MC_QUESTIONS).format(subject, obj), options), letter)]


def pair_question(template: str, scene: Scene, relation: Relation, subject: str, obj: str) -> str:
    """A question about a pair, each object given as a ReC mention with its box."""
    return template.format(
        object_mention(subject, [scene.items[relation.subject].box]),
        object_mention(obj, [scene.items[relation.object].box]),
    )


def predicate_turns(scene: Scene, rng: random.Random) -> Turns | None:
    candidates = _referable_relations(scene)
    if not candidates:
        return None
    relation, subject, obj = rng.choice(candidates)
    return [(pair_question(rng.choice(lang.PREDICATE_PROMPTS), scene, relation, subject, obj), relation.predicate)]


def _count_turn(scene: Scene, rng: random.Random) -> tuple[str, str]:
    shape = rng.choice([item.shape for item in scene.items] + ["circle", "star"])
    boxes = [item.box for item in scene.items if item.shape == shape]
    question = f"How many {lang.plural(shape)} are there?"
    if not boxes:
        return question, f"There are no {lang.plural(shape)}."
    verb = "is" if len(boxes) == 1 else "are"
    noun = shape if len(boxes) == 1 else lang.plural(shape)
    return question, f"There {verb} {lang.NUMBER_WORDS[len(boxes)]} {object_mention(noun, boxes)}."


def conversation_turns(scene: Scene, rng: random.Random) -> Turns | None:
    """Two or three grounded turns: counting, locating an object by its relation, naming a relation."""
    turns = [_count_turn(scene, rng)]
    candidates = _referable_relations(scene)
    rng.shuffle(candidates)
    for relation, subject, obj in candidates[:2]:
        sentence = lang.relation_sentence(
            subject, scene.items[relation.subject], relation.predicate, obj, scene.items[relation.object]
        )
        question = rng.choice([f"Where is the {subject}?", lang.RELATION_QUESTION.format(subject, obj)])
        turns.append((question, sentence))
    rng.shuffle(turns)
    return turns


TASKS: dict[str, Callable[[Scene, random.Random], Turns | None]] = {
    "caption": caption_turns,
    "detailed_description": description_turns,
    "region_caption": region_caption_turns,
    "grounding": grounding_turns,
    "conversation": conversation_turns,
    "scene_graph": scene_graph_turns,
    "relation_mc": relation_mc_turns,
    "predicate": predicate_turns,
    # Last: the builders share one random stream per scene, so a task added here leaves the earlier ones unchanged.
    "grounding_all": grounding_all_turns,
}
