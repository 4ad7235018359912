"""Region captions through pycocoevalcap (Java): upstream scores raw answered text; fixed strips tags, counts all."""

import json

import pytest

from allseeing.eval.task import EvalError
from tests.eval.helpers import score

CAPTIONS = {0: ["a large red circle", "a red circle"], 1: ["a small blue star", "a blue star"], 2: ["a green square"]}


def questions(tmp_path):
    coco = {
        "images": [{"id": i} for i in CAPTIONS],
        "annotations": [
            {"image_id": i, "id": n, "caption": c} for n, (i, cs) in enumerate(CAPTIONS.items()) for c in cs
        ],
    }
    (tmp_path / "vg_test_coco_format.json").write_text(json.dumps(coco))
    return [
        {
            "question_id": f"r{i}",
            "image": "x.jpg",
            "text": "What is in this region?",
            "category": "vg_test",
            "ann_id": i,
        }
        for i in CAPTIONS
    ]


@pytest.mark.slow
def test_identical_captions_score_full_marks(tmp_path):
    result = score(tmp_path, "region_caption", questions(tmp_path), {f"r{i}": c[0] for i, c in CAPTIONS.items()})
    assert (
        result["vg_test"]["BLEU_4"] > 99 and result["vg_test"]["METEOR"] > 90 and result["vg_test"]["ROUGE_L"] == 100.0
    )


@pytest.mark.slow
def test_protocols_differ_on_tags_and_on_partial_runs(tmp_path):
    answers = {
        "r0": "a large <ref>red circle</ref><box>[[1, 2, 3, 4]]</box>",
        "r1": "a small blue star",
    }  # r2 unanswered
    official = score(tmp_path, "region_caption", questions(tmp_path), answers)
    fixed = score(tmp_path, "region_caption", questions(tmp_path), answers, protocol="fixed")
    assert official["coverage"] == fixed["coverage"] == round(200 / 3, 2)
    clean = score(
        tmp_path, "region_caption", questions(tmp_path), {"r0": "a large red circle", "r1": "a small blue star"}
    )
    assert official["vg_test"]["ROUGE_L"] < clean["vg_test"]["ROUGE_L"]  # the tags count as words upstream
    assert fixed["vg_test"]["ROUGE_L"] < clean["vg_test"]["ROUGE_L"]  # the missing region counts as an empty caption


def test_missing_java_is_a_clear_error(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(EvalError, match="need Java on PATH"):
        score(tmp_path, "region_caption", questions(tmp_path), {"r0": "x"})


@pytest.mark.parametrize(
    ("references", "problem"),
    [
        ([{"image_id": 0, "caption": "x"}], "a JSON object with an 'annotations' list"),
        ({"annotations": [{}]}, "annotation 0"),
    ],
)
def test_a_reference_file_of_another_shape_is_a_clear_error(tmp_path, references, problem):
    asked = questions(tmp_path)
    (tmp_path / "vg_test_coco_format.json").write_text(json.dumps(references))
    with pytest.raises(EvalError, match=problem):
        score(tmp_path, "region_caption", asked, {"r0": "x"})
