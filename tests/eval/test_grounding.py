"""Grounding by hand: upstream's box reading and decoding, IoU > 0.5, box formats, empty categories."""

import pytest

from allseeing.eval.metrics.boxformat import smart_resize, to_pixels
from allseeing.eval.metrics.grounding import fixed_box, official_box
from allseeing.rec.boxes import encode
from tests.eval.helpers import score

# 640 x 514 photo: S = 640, dy = 63. Ground truth = the bus box of the worked example, decoded.
BUS = [185.79, 103.57, 534.93, 437.34]


def question(qid, category="refcoco_val", bbox=BUS):
    return {
        "question_id": qid,
        "image": "x.jpg",
        "text": "Please provide ...: the bus",
        "bbox": bbox,
        "width": 640,
        "height": 514,
        "category": category,
    }


def test_official_reading_takes_the_first_double_bracket_anywhere():
    assert official_box("<ref>bus</ref><box>[[290, 260, 835, 781]]</box>") == ((290, 260, 835, 781), False)
    assert official_box("echo [[1, 2, 3, 4]] then [[5, 6, 7, 8]]") == ((1, 2, 3, 4), False)
    assert official_box("no box") == ((0, 0, 0, 0), True)
    assert official_box("[[1, 2, 3]]") == ((0, 0, 0, 0), True)
    assert official_box("[[1, 2,\n3, 4]]") == ((0, 0, 0, 0), True)  # the pattern cannot cross a newline
    assert fixed_box("[[9, 9, 9, 9]] and <ref>bus</ref><box>[[1, 2, 3, 4]]</box>") == ((1, 2, 3, 4), False)
    assert fixed_box("nothing") == (None, True)


def test_acc_at_half_per_category_and_average(tmp_path):
    questions = [question("a"), question("b"), question("c", "refcoco_testA"), question("d", "refcoco_testA")]
    answers = {
        "a": "<ref>bus</ref><box>[[290, 260, 835, 781]]</box>",  # IoU 1
        "b": "[[290, 260, 562, 781]]",  # half the width: IoU just under 0.5 -> wrong
        "c": "[[290, 260, 835, 781]]",
        "d": "I cannot see it.",  # invalid: the zero box
    }
    result = score(tmp_path, "grounding", questions, answers)
    assert (result["refcoco_val"], result["refcoco_testA"], result["average"]) == (50.0, 50.0, 50.0)
    assert result["invalid"] == 1


def test_iou_exactly_half_is_a_miss(tmp_path):
    questions = [question("a", bbox=[0, 0, 100, 100]), question("b", bbox=[0, 0, 100, 100])]
    answers = {"a": "[[0, 0, 100, 50]]", "b": "[[0, 0, 100, 51]]"}  # pixel frame: IoU 0.5 and 0.51
    result = score(tmp_path, "grounding", questions, answers, box_format="pixel")
    assert result["refcoco_val"] == 50.0


def test_official_decodes_out_of_range_boxes_fixed_refuses_them(tmp_path):
    questions = [question("a", bbox=[600.0, 0.0, 660.0, 100.0])]
    answers = {"a": "[[937, 98, 1031, 254]]"}  # x2 = 1031 > 999: upstream decodes it beyond the image
    assert score(tmp_path, "grounding", questions, answers)["refcoco_val"] == 100.0
    fixed = score(tmp_path, "grounding", questions, answers, protocol="fixed")
    assert (fixed["refcoco_val"], fixed["invalid"]) == (0.0, 1)


def test_box_formats_of_other_models(tmp_path):
    assert to_pixels((290, 201, 835, 850), (640, 514), "raw1000") == pytest.approx((185.6, 103.314, 534.4, 436.9))
    assert smart_resize(640, 514) == (644, 504)
    assert to_pixels((0, 0, 644, 504), (640, 514), "qwen2.5-vl") == pytest.approx((0, 0, 640, 514))
    questions = [question("a")]
    result = score(tmp_path, "grounding", questions, {"a": "[[290, 201, 835, 850]]"}, box_format="raw1000")
    assert result["refcoco_val"] == 100.0


def test_fixed_reads_other_model_families_boxes_as_they_write_them(tmp_path):
    qwen2 = "<|object_ref_start|>the bus<|object_ref_end|><|box_start|>(290,201),(835,850)<|box_end|>"
    qwen25 = '```json\n[{"bbox_2d": [185, 104, 535, 437], "label": "bus"}]\n```'
    flat = "The bus is at [0.29, 0.2, 0.84, 0.85]."
    kosmos = "<phrase>the bus</phrase><object><patch_index_0169><patch_index_0890></object>"
    assert fixed_box(qwen2) == ((290, 201, 835, 850), False)
    assert fixed_box(qwen25) == ((185, 104, 535, 437), False)
    assert fixed_box(flat) == ((0.29, 0.2, 0.84, 0.85), False)
    # cells (9, 5) and (26, 27) of the 32 x 32 grid, their centres: (9.5 / 32, 5.5 / 32, 26.5 / 32, 27.5 / 32)
    assert fixed_box(kosmos) == ((0.296875, 0.171875, 0.828125, 0.859375), False)
    assert fixed_box("<patch_index_0033><patch_index_0040>") == ((1 / 32, 1 / 32, 9 / 32, 2 / 32), False)  # a row
    for answer in (qwen2, qwen25, flat, kosmos):
        assert official_box(answer) == ((0, 0, 0, 0), True)  # upstream reads [[...]] only
    for answer, box_format in ((qwen2, "raw1000"), (qwen25, "pixel"), (flat, "unit"), (kosmos, "unit")):
        result = score(tmp_path, "grounding", [question("a")], {"a": answer}, box_format=box_format, protocol="fixed")
        assert result["refcoco_val"] == 100.0, (answer, box_format)


def counts(check):
    return {key: value for key, value in check.items() if key != "nearer_asked"}


def test_query_check_counts_images_answered_with_one_box_whatever_the_expression(tmp_path):
    def on(image, qid, bbox):
        return {**question(qid, bbox=bbox), "image": image}

    left, right = [0, 0, 100, 100], [300, 0, 400, 100]
    questions = [
        on("one.jpg", "a", left),
        on("one.jpg", "b", right),  # two objects, the same box twice: counted
        on("two.jpg", "c", left),
        on("two.jpg", "d", right),  # two objects, two boxes: not counted
        on("same.jpg", "e", left),
        on("same.jpg", "f", left),  # one object asked twice: not an image to check
        on("alone.jpg", "g", right),
    ]
    box = "<ref>it</ref><box>[[10, 20, 30, 40]]</box>"
    answers = {"a": box, "b": box, "c": box, "d": "[[50, 60, 70, 80]]", "e": box, "f": box, "g": box}
    check = counts(score(tmp_path, "grounding", questions, answers)["query_check"])
    assert check == {"images": 2, "one_box": 1, "questions": 4, "other_object": 0}


def test_query_check_counts_answers_that_hit_another_object_of_the_image(tmp_path):
    def on(qid, bbox):
        return {**question(qid, bbox=bbox), "image": "one.jpg", "width": 1000, "height": 1000}

    left, right, bottom = [0, 0, 100, 100], [300, 0, 400, 100], [0, 800, 100, 900]
    questions = [on("a", left), on("b", right), on("c", bottom)]
    at = {"left": "[[0, 0, 100, 100]]", "right": "[[300, 0, 400, 100]]", "nowhere": "[[500, 500, 600, 600]]"}
    # a: the right object; b: the left one (another object's); c: no object's place
    answers = {"a": at["left"], "b": at["left"], "c": at["nowhere"]}
    for protocol in ("official", "fixed"):
        result = score(tmp_path, "grounding", questions, answers, protocol=protocol)
        assert counts(result["query_check"]) == {"images": 1, "one_box": 0, "questions": 3, "other_object": 1}, protocol
    # an unanswered question: official scores the answered rows only, fixed counts every question asked
    del answers["c"]
    official, fixed = (
        counts(score(tmp_path, "grounding", questions, answers, protocol=p)["query_check"])
        for p in ("official", "fixed")
    )
    assert official == {"images": 1, "one_box": 1, "questions": 2, "other_object": 1}
    assert fixed == {"images": 1, "one_box": 0, "questions": 3, "other_object": 1}


def test_official_scores_the_answered_questions_only_fixed_counts_missing_as_wrong(tmp_path):
    questions = [question(q) for q in "abcd"] + [question("e", "refcoco_testA")]
    answers = {"a": "[[290, 260, 835, 781]]", "b": "[[290, 260, 835, 781]]"}  # c, d and e unanswered
    official = score(tmp_path, "grounding", questions, answers)
    fixed = score(tmp_path, "grounding", questions, answers, protocol="fixed")
    assert (official["refcoco_val"], official["refcoco_testA"], official["average"]) == (100.0, None, 100.0)
    assert (fixed["refcoco_val"], fixed["refcoco_testA"], fixed["average"]) == (50.0, 0.0, 25.0)
    assert official["coverage"] == fixed["coverage"] == 40.0
    assert score(tmp_path, "grounding", questions[::-1], dict(reversed(answers.items())), protocol="fixed") == fixed


def test_query_check_counts_coordinates_nearer_the_asked_object_than_the_others(tmp_path):
    def on(qid, bbox):
        return {**question(qid, bbox=bbox), "image": "one.jpg", "width": 1000, "height": 1000}

    # three objects, no coordinate shared; square999 on a 1000 px square: pixel = value / 999 * 1000
    a, b, c = [100, 100, 200, 200], [600, 600, 800, 800], [350, 700, 450, 900]
    questions = [on("a", a), on("b", b), on("c", c), {**on("lone", a), "image": "lone.jpg"}]
    answers = {
        "a": "[[100, 100, 200, 200]]",  # a's box: every coordinate nearer a's
        "b": "[[600, 100, 800, 200]]",  # b's x, a's y: x1 and x2 nearer b's
        "c": "[[350, 100, 450, 200]]",  # c's x, a's y: x1 and x2 nearer c's
        "lone": "[[600, 600, 800, 800]]",  # an image asked about one object: not counted
    }
    expected = {"answers": 3, "x1": 100.0, "y1": 33.33, "x2": 100.0, "y2": 33.33, "all": 33.33, "chance": 33.33}
    for protocol in ("official", "fixed"):
        result = score(tmp_path, "grounding", questions, answers, protocol=protocol)
        assert result["query_check"]["nearer_asked"] == expected, protocol
    # fixed: an answer off the image is not placed, so it counts for no coordinate and not among the answers
    answers["c"] = "[[350, 100, 450, 2000]]"
    fixed = score(tmp_path, "grounding", questions, answers, protocol="fixed")["query_check"]["nearer_asked"]
    # chance: of the two answers left, pointing at one object every time gets one
    assert fixed == {"answers": 2, "x1": 100.0, "y1": 50.0, "x2": 100.0, "y2": 50.0, "all": 50.0, "chance": 50.0}


def test_nearer_asked_reads_boxes_on_the_padded_square_and_leaves_out_unreadable_answers(tmp_path):
    # 640 x 320: the square is 640, padded by 160 above. Written for a's top (pixel y1 = 10, 265 on the square), the
    # answer's y1 is nearer b's top (100) only if read without the padding.
    def on(qid, bbox):
        return {**question(qid, bbox=bbox), "image": "wide.jpg", "width": 640, "height": 320}

    a, b = [10, 10, 60, 60], [300, 100, 400, 200]
    questions = [on("a", a), on("b", b), on("a2", a)]
    answers = {"a": f"[{list(encode(tuple(a), (640, 320)))}]", "b": "no box at all", "a2": "[[1, 2, 3, 4]]"}
    for protocol in ("official", "fixed"):
        nearer = score(tmp_path, "grounding", questions, answers, protocol=protocol)["query_check"]["nearer_asked"]
        # b's unreadable answer counts for nothing; a is asked twice, so always pointing at a gets every answer
        assert nearer == {
            "answers": 2,
            "x1": 100.0,
            "y1": 100.0,
            "x2": 100.0,
            "y2": 100.0,
            "all": 100.0,
            "chance": 100.0,
        }
