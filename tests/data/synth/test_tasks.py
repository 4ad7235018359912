"""Every training sample tells the truth: its ReC parses strictly, every box is a drawn object's box, every stated
relation holds by definition, every multiple-choice answer is the one true option."""

import random
import re

import pytest

from allseeing.data.synth import language as lang
from allseeing.data.synth.tasks import TASKS, llava_sample
from allseeing.data.synth.world import SHAPES
from allseeing.rec import tags
from allseeing.rec.boxes import decode, iou
from allseeing.rec.parse import parse
from tests.data.synth.test_relations import reference


def item_index(scene, box) -> int:
    """The object whose box this is; fails when the box belongs to no drawn object."""
    matches = [i for i, item in enumerate(scene.items) if item.box == tuple(box)]
    assert len(matches) == 1, f"box {box} is not exactly one object's box in {scene.scene_id}"
    assert iou(decode(box, scene.size), scene.items[matches[0]].pixel_box) > 0.99
    return matches[0]


def samples(scenes):
    for scene in scenes:
        rng = random.Random(scene.scene_id)
        for task, builder in TASKS.items():
            turns = builder(scene, rng)
            if turns is not None:
                yield task, scene, turns


@pytest.fixture(scope="module")
def all_samples(scenes):
    return list(samples(scenes))


def test_every_task_produces_samples(all_samples):
    assert {task for task, _, _ in all_samples} == set(TASKS)


def test_every_turn_parses_strictly_and_every_box_is_a_drawn_object(all_samples):
    for _, scene, turns in all_samples:
        for question, answer in turns:
            for text in (question, answer):
                document = parse(text, mode="strict")
                for mention in document.objects:
                    for box in mention.boxes:
                        index = item_index(scene, box)
                        if len(mention.boxes) == 1 and mention.phrase != "region":
                            assert scene.items[index].shape in mention.phrase
                for relation in document.relations:
                    for box in (*relation.subjects, *relation.objects):
                        item_index(scene, box)


def test_every_stated_relation_holds(all_samples):
    stated = 0
    for _, scene, turns in all_samples:
        for _, answer in turns:
            for triplet in parse(answer, mode="strict").triplets:
                s, o = item_index(scene, triplet.subject_box), item_index(scene, triplet.object_box)
                assert reference(triplet.predicate, scene.items[s], scene.items[o]), (scene.scene_id, triplet)
                stated += 1
    assert stated > 1000


def test_multiple_choice_answers_are_the_only_true_option(all_samples):
    checked = 0
    for task, scene, turns in all_samples:
        if task != "relation_mc":
            continue
        ((question, answer),) = turns
        first_line = question.split("\n")[0]
        subject, obj = next(
            match.groups()
            for template in lang.RELATION_MC_QUESTIONS
            if (match := re.fullmatch(re.escape(template).replace(r"\{\}", "(.+)"), first_line))
        )
        s = next(i for i in range(len(scene.items)) if lang.refer(scene, i) == subject)
        o = next(i for i in range(len(scene.items)) if lang.refer(scene, i) == obj)
        options = dict(re.findall(r"^([ABCD])\. (.+)$", question, re.MULTILINE))
        assert set(options) == set("ABCD") and answer in options
        for letter, predicate in options.items():
            assert reference(predicate, scene.items[s], scene.items[o]) == (letter == answer)
        checked += 1
    assert checked > 100


def test_grounding_expressions_are_unambiguous(all_samples):
    for task, scene, turns in all_samples:
        if task == "grounding":
            assert len(turns) == 1
        if task in ("grounding", "grounding_all"):
            for question, answer in turns:
                (mention,) = parse(answer, mode="strict").objects
                assert lang.refer(scene, item_index(scene, mention.boxes[0])) == mention.phrase
                assert mention.phrase in question


def test_grounding_all_asks_for_every_referable_object_once(all_samples):
    asked = 0
    for task, scene, turns in all_samples:
        if task == "grounding_all":
            boxes = [parse(answer, mode="strict").objects[0].boxes[0] for _, answer in turns]
            referable = [item.box for i, item in enumerate(scene.items) if lang.refer(scene, i)]
            assert sorted(map(tuple, boxes)) == sorted(referable) and len(boxes) >= 2
            asked += len(boxes)
    assert asked > 100


def test_counting_answers_are_right(all_samples):
    questions = {f"How many {lang.plural(shape)} are there?": shape for shape in SHAPES}
    counted = 0
    for task, scene, turns in all_samples:
        for question, answer in turns if task == "conversation" else []:
            if question in questions:
                shape = questions[question]
                count = sum(item.shape == shape for item in scene.items)
                assert answer.startswith(f"There {'is' if count == 1 else 'are'} {lang.NUMBER_WORDS[count]}")
                boxes = [b for m in parse(answer, mode="strict").objects for b in m.boxes]
                assert sorted(boxes) == sorted(item.box for item in scene.items if item.shape == shape)
                counted += 1
    assert counted > 100


def test_description_prompts_vary_over_samples_and_each_is_used(scenes):
    from allseeing.data.synth.tasks import description_turns

    rng = random.Random(0)
    asked = [description_turns(scene, rng)[0][0] for scene in scenes for _ in range(3)]
    assert set(asked) == set(lang.DESCRIPTION_PROMPTS)


def test_llava_sample_shape():
    sample = llava_sample("x", "images/a.jpg", [("q1", "a1"), ("q2", "a2")])
    assert sample == {
        "id": "x",
        "image": "images/a.jpg",
        "conversations": [
            {"from": "human", "value": f"{tags.IMAGE}\nq1"},
            {"from": "gpt", "value": "a1"},
            {"from": "human", "value": "q2"},
            {"from": "gpt", "value": "a2"},
        ],
    }
