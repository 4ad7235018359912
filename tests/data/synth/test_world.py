"""Scenes: canvases, backgrounds, exact boxes, drawing that fills each box."""

import random
from collections import Counter

import pytest
from PIL import Image, ImageChops

from allseeing.data.synth.world import (
    BACKGROUNDS,
    MAX_SIDE,
    MIN_SIDE,
    SHAPES,
    Background,
    Scene,
    content_range,
    make_item,
    render,
    sample_canvas,
    size_class_of,
)
from allseeing.rec.boxes import decode, iou


def test_canvases_cover_both_orientations_and_both_paddings():
    rng = random.Random(0)
    sizes = [sample_canvas(rng) for _ in range(400)]
    assert all(min(s) >= MIN_SIDE and max(s) <= MAX_SIDE and s[0] != s[1] for s in sizes)
    kinds = Counter((w > h, abs(w - h) % 2) for w, h in sizes)
    assert set(kinds) == {(True, 0), (True, 1), (False, 0), (False, 1)}


def test_all_backgrounds_and_shapes_occur(scenes):
    assert {s.background.kind for s in scenes} == set(BACKGROUNDS)
    assert {i.shape for s in scenes for i in s.items} == set(SHAPES)
    assert {len(s.items) for s in scenes} >= set(range(1, 9))


def test_rec_boxes_decode_exactly_to_the_pixel_boxes(scenes):
    for scene in scenes:
        for item in scene.items:
            assert iou(decode(item.box, scene.size), item.pixel_box) > 0.99
            assert decode(item.box, scene.size) == item.pixel_box


def test_objects_lie_inside_the_image(scenes):
    for scene in scenes:
        for item in scene.items:
            x1, y1, x2, y2 = item.pixel_box
            assert 0 <= x1 < x2 <= scene.width and 0 <= y1 < y2 <= scene.height


@pytest.mark.parametrize("size", [(301, 200), (200, 301), (300, 200)])
def test_content_range_decodes_inside_the_image(size):
    x_lo, y_lo, x_hi, y_hi = content_range(size)
    x1, y1, x2, y2 = decode((x_lo, y_lo, x_hi, y_hi), size)
    assert 0 <= x1 < 1 and 0 <= y1 < 1 and size[0] - 1 < x2 <= size[0] and size[1] - 1 < y2 <= size[1]
    wider = decode((max(x_lo - 1, 0), max(y_lo - 1, 0), min(x_hi + 1, 999), min(y_hi + 1, 999)), size)
    assert wider[0] < 0 or wider[1] < 0 or wider[2] > size[0] or wider[3] > size[1]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_fills_its_box(shape):
    size = (260, 200)
    item = make_item(shape, "red", "large", (200, 300, 700, 800), size)
    scene = Scene("one", *size, Background("plain", ((0, 0, 0),)), (item,))
    image = render(scene)
    drawn = ImageChops.difference(image, Image.new("RGB", size)).convert("L").point(lambda v: 255 if v > 4 else 0)
    left, top, right, bottom = drawn.getbbox()
    x1, y1, x2, y2 = item.pixel_box
    assert abs(left - x1) <= 1 and abs(top - y1) <= 1 and abs(right - x2) <= 1 and abs(bottom - y2) <= 1
    assert image.getpixel((round((x1 + x2) / 2), round(y1 + 0.75 * (y2 - y1)))) == (215, 38, 38)


def test_rendering_is_deterministic(scenes):
    assert render(scenes[5]).tobytes() == render(scenes[5]).tobytes()


def test_size_classes_follow_the_drawn_side():
    size = (300, 150)  # shorter side 150 px; a square999 code is 300 / 999 px
    code = lambda share: round(share * 150 * 999 / 300)  # noqa: E731
    assert [size_class_of(code(s), size) for s in (0.14, 0.25, 0.4)] == ["small", "medium", "large"]
    assert size_class_of(code(0.05), size) == "small"  # shrunk inside another object
    assert size_class_of(code(0.18), size) == "small" and size_class_of(code(0.20), size) == "medium"
    assert size_class_of(code(0.32), size) == "large" and size_class_of(code(0.6), size) == "large"


def test_every_objects_size_word_matches_its_drawn_size(scenes):
    # objects placed inside another are shrunk to fit; their size word follows (never a "large" tiny object)
    for scene in scenes:
        for drawn in scene.items:
            assert size_class_of(drawn.box[2] - drawn.box[0], scene.size) == drawn.size, (scene.scene_id, drawn)
