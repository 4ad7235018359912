"""Dense per-patch targets, checked on a hand-made scene whose coverage is known to the pixel."""

import numpy as np
import pytest

from allseeing.data.synth.dense import SHAPE_CLASSES, SIZE_CLASSES, dense_targets, padded_object_map, visible_items
from allseeing.data.synth.world import COLOURS, Background, Scene, make_item, object_map, render

SIZE = (200, 100)  # padded to a 200 px square with the image at y = 50; a 4 x 4 grid has 50 px patches


def item(shape, colour, size, box):
    return make_item(shape, colour, size, box, SIZE)


@pytest.fixture
def scene():
    # square999 codes on the 200 px square: 250 -> 50.05 px, 500 -> 100.1 px, 749 -> 149.95 px
    a = item("square", "red", "large", (0, 250, 500, 749))  # patches (1, 0), (1, 1), (2, 0), (2, 1)
    b = item("square", "blue", "medium", (250, 250, 500, 499))  # on top of a, all of patch (1, 1)
    c = item("circle", "green", "small", (760, 760, 780, 780))  # 4 px: covers no quarter of a patch
    d = item("square", "yellow", "small", (250, 500, 385, 635))  # on top of a, 29% of patch (2, 1)
    e = item("square", "pink", "small", (600, 250, 666, 316))  # x 120.1-133.3, y 50.05-63.3: 7% of patch (1, 2)
    return Scene("hand", *SIZE, Background("plain", ((0, 0, 0),)), (a, b, c, d, e))


def patch(targets, row, column, name):
    return getattr(targets, name)[row * 4 + column]


def test_each_patch_takes_the_top_most_object_covering_a_quarter_of_it(scene):
    targets = dense_targets(scene, 4)
    labels = targets.item.reshape(4, 4)
    assert labels.tolist() == [
        [-1, -1, -1, -1],  # padding
        [0, 1, -1, -1],
        [0, 3, -1, -1],  # d covers 29% of (2, 1), a the other 71%: the top-most wins
        [-1, -1, -1, -1],  # padding; c is too small to label a patch
    ]
    assert visible_items(targets, 5).tolist() == [True, True, False, True, False]
    assert SHAPE_CLASSES[patch(targets, 1, 1, "shape")] == "square"
    assert SIZE_CLASSES[patch(targets, 1, 0, "size")] == "large"
    assert patch(targets, 2, 1, "colour") == 4  # background, red, green, blue, yellow
    assert patch(targets, 0, 0, "shape") == patch(targets, 0, 0, "colour") == patch(targets, 0, 0, "size") == 0


def test_box_and_centre_are_the_objects_on_the_padded_square(scene):
    targets = dense_targets(scene, 4)
    np.testing.assert_allclose(patch(targets, 1, 0, "box"), np.array([0, 250, 500, 749]) / 999, rtol=1e-6)
    # a's centre is at (0.2503, 0.5) of the square: 1.001 and 2.0 patches; patch (1, 0)'s centre is at (0.5, 1.5)
    np.testing.assert_allclose(patch(targets, 1, 0, "centre"), [250 / 999 * 4 - 0.5, 499.5 / 999 * 4 - 1.5], rtol=1e-5)
    assert not patch(targets, 0, 0, "box").any() and not patch(targets, 0, 0, "centre").any()


def test_cells_draw_the_outline_inside_a_patch(scene):
    targets = dense_targets(scene, 4)  # 4 x 4 cells of 12.5 px in each 50 px patch
    assert patch(targets, 1, 0, "cells").tolist() == [1] * 16
    assert patch(targets, 0, 0, "cells").tolist() == [0] * 16
    # (1, 2), x 100-150, y 50-100: e's pixels (x 120-132, y 50-62) fill the first cell row and 8 of the 13 pixel
    # columns of cell 2 (62%), 5 of 12 of cell 1 (42%); a reaches 0.1 px in; the 4 px circle covers under half a cell
    assert patch(targets, 1, 2, "cells").tolist() == [0, 0, 1, 0] + [0] * 12
    assert patch(targets, 1, 2, "item") == -1  # e covers 6% of the patch: too little to label it
    assert patch(targets, 3, 3, "cells").tolist() == [0] * 16


def test_the_object_map_marks_the_pixels_render_paints(scene):
    ids = np.asarray(object_map(scene))
    pixels = np.asarray(render(scene)).astype(int)
    for index, drawn in enumerate(scene.items):
        where = ids == index + 1
        assert where.any() or drawn.shape == "circle"
        if where.any():
            colour = COLOURS[drawn.colour]
            assert np.abs(pixels[where] - colour).max() <= 128  # at least half-covered pixels of that colour
    square = padded_object_map(scene)
    assert square.shape == (200, 200) and not square[:50].any() and (square[50:150] == ids).all()
