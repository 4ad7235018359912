"""Evaluation files: upstream field sets, CRPE rotations, true answers, COCO references, rare subset."""

import json
import random
import re

import pytest

from allseeing.data.synth import evalsets
from allseeing.data.synth.evalsets import FIELDS, EvalScene
from allseeing.data.synth.generate import EVAL_FILES, PRED_CLS_OPTIONS, REGION_FILE
from allseeing.data.synth.relations import PREDICATES, holding
from allseeing.data.synth.scenes import triplets_of
from allseeing.data.synth.world import SHAPES
from allseeing.rec.boxes import decode
from allseeing.rec.parse import parse
from tests.data.synth.test_relations import reference

FILE_FIELDS = {
    "crpe/crpe_exist.jsonl": FIELDS["crpe"],
    "crpe/crpe_relation.jsonl": FIELDS["crpe"],
    "grounding/grounding_eval.jsonl": FIELDS["grounding"],
    "region_caption/region_caption_eval_square_pad.jsonl": FIELDS["region_caption"],
    "vcr/VCR_val_square_pad.jsonl": FIELDS["vcr"],
    "psg/psg_eval.jsonl": FIELDS["psg"],
    "psg_pred_cls/psg_pred_cls_full_square_pad.jsonl": FIELDS["psg_pred_cls"],
}


def rows(out, relative):
    return [json.loads(line) for line in (out / "eval" / relative).read_text().splitlines()]


def test_upstream_field_sets(dataset):
    out, _ = dataset
    assert set(FILE_FIELDS) == {relative for relative, _ in EVAL_FILES.values()} | {REGION_FILE}
    assert FIELDS["crpe"] == ("question_id", "image", "text", "correct_option", "category")
    assert FIELDS["psg"] == ("question_id", "image", "text", "width", "height", "relation_tuples")
    for relative, fields in FILE_FIELDS.items():
        found = rows(out, relative)
        assert found, relative
        for row in found:
            assert tuple(row) == fields, relative
            assert (out / row["image"]).is_file()
        assert len({row["question_id"] for row in found}) == len(found)


def test_crpe_groups_are_four_consecutive_rotations(dataset):
    out, _ = dataset
    for relative, categories in (
        ("crpe/crpe_exist.jsonl", {"exist"}),
        ("crpe/crpe_relation.jsonl", {"subject", "predicate", "object"}),
    ):
        found = rows(out, relative)
        assert {row["category"] for row in found} == categories
        assert len(found) % 4 == 0
        for start in range(0, len(found), 4):
            group = found[start : start + 4]
            assert len({row["category"] for row in group}) == 1
            questions = {row["text"].split("\n")[0] for row in group}
            assert len(questions) == 1
            answers = {
                dict(re.findall(r"^([ABCD])\. (.+)$", row["text"], re.MULTILINE))[row["correct_option"]]
                for row in group
            }
            assert len(answers) == 1  # the same correct option, at a rotating letter
            assert [row["correct_option"] for row in group] in (["A", "D", "C", "B"],)


def test_crpe_relation_answers_are_true_and_distractors_false(scenes):
    checked = 0
    for scene in scenes:
        test = EvalScene(scene, "images/test/x.jpg", None)
        built = evalsets.crpe_relation(test, random.Random(0))
        probe = evalsets.probe_relation(test, random.Random(0))
        if not built:
            continue
        relation, _, _ = probe
        s, o = scene.items[relation.subject], scene.items[relation.object]
        for row in built[::4]:  # the first rotation of each question
            options = dict(re.findall(r"^([ABCD])\. (.+)$", row["text"], re.MULTILINE))
            for letter, option in options.items():
                if row["category"] == "predicate":
                    truth = reference(option, s, o)
                elif row["category"] == "subject":
                    truth = any(
                        i.name == option and reference(relation.predicate, i, o) for i in scene.items if i is not o
                    )
                else:
                    truth = any(
                        i.name == option and reference(relation.predicate, s, i) for i in scene.items if i is not s
                    )
                assert truth == (letter == row["correct_option"]), (scene.scene_id, row["text"], letter)
            checked += 1
    assert checked > 300


def test_rare_triplets_are_only_in_the_abnormal_subset(dataset):
    out, stats = dataset
    rare = {tuple(t) for t in stats["rare_triplets"]}
    assert len(rare) == 6
    relation_rows = rows(out, "crpe/crpe_relation.jsonl")
    abnormal = [row for row in relation_rows if row["image"].startswith("abnormal_images/")]
    assert abnormal and all(row["image"].startswith(("images/test/", "abnormal_images/")) for row in relation_rows)
    train_images = {s["image"] for s in json.loads((out / "train" / "caption.json").read_text())}
    assert all(path.startswith("images/train/") for path in train_images)
    assert not train_images & {row["image"] for row in relation_rows}


def test_training_scenes_never_show_a_rare_triplet(scenes):
    from allseeing.data.synth.scenes import choose_rare_triplets, sample_scene

    rare = frozenset(choose_rare_triplets(random.Random(1), 6))
    kept = [s for i in range(150) if (s := sample_scene(random.Random(f"r{i}"), "x", forbidden=rare))]
    assert kept and all(not (triplets_of(s) & rare) for s in kept)
    required = sorted(rare)[0]
    built = [s for i in range(60) if (s := sample_scene(random.Random(f"q{i}"), "y", required=required))]
    assert built and all(required in triplets_of(s) for s in built)


def test_grounding_boxes_are_the_pixel_boxes(scenes):
    for scene in scenes[:100]:
        for row in evalsets.grounding(EvalScene(scene, "x.jpg", None), random.Random(0)):
            index = int(row["question_id"].rsplit("-", 1)[1])
            assert row["bbox"] == [round(v, 2) for v in scene.items[index].pixel_box]
            assert (row["width"], row["height"]) == scene.size
            assert row[
                "text"
            ] == "Please provide the bounding box coordinate of the region this sentence describes: " + (
                evalsets.lang.refer(scene, index)
            )


def test_region_caption_references_follow_coco_format(dataset):
    out, _ = dataset
    found = rows(out, REGION_FILE)
    for category in {row["category"] for row in found}:
        coco = json.loads((out / "eval" / "region_caption" / f"{category}_coco_format.json").read_text())
        ids = {row["ann_id"] for row in found if row["category"] == category}
        assert {image["id"] for image in coco["images"]} == ids
        assert {a["image_id"] for a in coco["annotations"]} == ids
        assert all(isinstance(a["caption"], str) and a["caption"] for a in coco["annotations"])
        assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    for row in found:
        assert parse(row["text"], mode="strict").objects[0].phrase == "region"


def test_vcr_rows_come_in_qa_qar_pairs(dataset):
    out, _ = dataset
    found = rows(out, "vcr/VCR_val_square_pad.jsonl")
    qa = {row["question_id"].removesuffix("-qa"): row for row in found if row["category"] == "qa"}
    qar = {row["question_id"].removesuffix("-qar"): row for row in found if row["category"] == "qar"}
    assert qa and set(qa) == set(qar)
    for key, row in qar.items():
        conversations = row["conversations"]
        assert len(conversations) % 2 == 1 and conversations[-1]["from"] == "human"
        assert conversations[0] == qa[key]["conversations"][0]
        assert conversations[1] == {"from": "gpt", "value": qa[key]["correct_option"]}
        assert conversations[0]["value"].startswith("<image>\n")


def test_psg_tuples_are_pixel_boxes_of_shape_classes(dataset, scenes):
    out, _ = dataset
    for row in rows(out, "psg/psg_eval.jsonl"):
        assert row["relation_tuples"]
        for subject, subject_box, obj, object_box, predicate in row["relation_tuples"]:
            assert subject in SHAPES and obj in SHAPES and predicate in PREDICATES
            assert all(0 <= v <= max(row["width"], row["height"]) for v in subject_box + object_box)


def test_pred_cls_lists_every_true_predicate(dataset, scenes):
    out, _ = dataset
    assert json.loads((out / "eval" / PRED_CLS_OPTIONS).read_text()) == list(PREDICATES)
    for row in rows(out, "psg_pred_cls/psg_pred_cls_full_square_pad.jsonl"):
        assert row["label_format"].endswith("{}") and row["correct_option"]
    for scene in scenes[:100]:
        for row in evalsets.psg_pred_cls(EvalScene(scene, "x.jpg", None), random.Random(0)):
            s, o = int(row["subj"][3:]), int(row["obj"][3:])
            assert row["correct_option"] == holding(scene, s, o)
            boxes = [m.boxes[0] for m in parse(row["text"], mode="strict").objects]
            assert [decode(b, scene.size) for b in boxes] == [scene.items[s].pixel_box, scene.items[o].pixel_box]


@pytest.mark.parametrize("relative", sorted(FILE_FIELDS))
def test_every_prompt_is_strict_rec(dataset, relative):
    out, _ = dataset
    for row in rows(out, relative):
        texts = [turn["value"] for turn in row["conversations"]] if "conversations" in row else [row["text"]]
        for text in texts:
            parse(text, mode="strict")
