"""Box frames: hand-computed values (the worked example of docs/upstream.md) and round-trip properties."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allseeing.rec import boxes
from allseeing.rec.boxes import FRAMES, BoxError, convert, decode, encode, flip, iou, pad_offset, validate

EXAMPLE = (640, 514)  # the bus photo: landscape, S - H = 126 (even), dy = 63


@pytest.mark.parametrize(
    ("size", "offset"),
    [((640, 514), (0, 63)), ((514, 640), (63, 0)), ((640, 513), (0, 63)), ((513, 640), (63, 0)), ((7, 7), (0, 0))],
)
def test_pad_offset_is_floor_centred(size, offset):
    assert pad_offset(*size) == offset


@pytest.mark.parametrize(
    ("rec_box", "pixels"),
    [
        ((290, 260, 835, 781), (185600 / 999, 166400 / 999 - 63, 534400 / 999, 499840 / 999 - 63)),  # bus
        ((0, 583, 984, 900), (0.0, 373120 / 999 - 63, 629760 / 999, 576000 / 999 - 63)),  # road
        ((682, 98, 999, 510), (436480 / 999, 62720 / 999 - 63, 640.0, 326400 / 999 - 63)),  # sky: y1 < 0
    ],
)
def test_worked_example_decodes_to_hand_computed_pixels(rec_box, pixels):
    assert decode(rec_box, EXAMPLE) == pytest.approx(pixels, abs=1e-9)


def test_worked_example_values_rounded():
    assert [round(v, 2) for v in decode((290, 260, 835, 781), EXAMPLE)] == [185.79, 103.57, 534.93, 437.34]
    assert decode((682, 98, 999, 510), EXAMPLE)[2] == 640.0  # 999 is the far edge: divisor 999, not 1000


def test_encode_truncates_like_upstream():
    # x: 100/640*999 = 156.09; y: (50+63)/640*999 = 176.38; x2: 468.28; y2: (200+63)/640*999 = 410.53
    assert encode((100, 50, 300, 200), EXAMPLE) == (156, 176, 468, 410)


def test_convert_hand_computed():
    # pixels (185.79, 103.57, 534.93, 437.34) / (640, 514) * 1000, truncated
    assert convert((290, 260, 835, 781), EXAMPLE, "square999", "raw1000") == (290, 201, 835, 850)
    assert convert((0.5, 0.5, 1.0, 1.0), (200, 100), "unit", "pixel") == (100.0, 50.0, 200.0, 100.0)
    assert convert((100, 50, 200, 100), (200, 100), "pixel", "raw100") == (50, 50, 100, 100)


@pytest.mark.parametrize(
    ("box", "size", "frame", "flipped"),
    [
        ((290, 260, 835, 781), (640, 514), "square999", (164, 260, 709, 781)),  # landscape: K = 999
        ((100, 5, 300, 9), (513, 640), "square999", (697, 5, 897, 9)),  # portrait, odd pad: K = 999*639//640 = 997
        ((100, 5, 300, 9), (514, 640), "square999", (699, 5, 899, 9)),  # portrait, even pad: 2*63 + 514 = S, K = 999
        ((10, 0, 30, 5), (640, 514), "raw1000", (970, 0, 990, 5)),
        ((10.0, 0, 30.5, 5), (64, 51), "pixel", (33.5, 0, 54.0, 5)),
    ],
)
def test_flip_hand_computed(box, size, frame, flipped):
    assert flip(box, size, frame) == flipped


def test_flip_odd_padding_matches_mirroring_the_original_image():
    # x = 100 on a 513x640 image is pixel 100/999*640 - 63 = 1.064; mirrored 511.936 -> int(574.936/640*999) = 897
    mirrored = 513 - decode((100, 5, 300, 9), (513, 640))[0]
    assert int((mirrored + 63) / 640 * 999) == flip((100, 5, 300, 9), (513, 640))[2] == 897


def test_flip_refuses_a_box_that_would_leave_the_frame():
    with pytest.raises(BoxError, match="flipping"):
        flip((990, 0, 999, 10), (513, 640))  # x2 = 999 lies in the right pad, beyond K = 997


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (5, 5, 15, 15), 25 / 175),
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),
        ((0, 0, 10, 10), (0, 0, 10, 5), 0.5),
        ((3, 3, 3, 3), (3, 3, 3, 3), 0.0),
    ],
)
def test_iou_hand_computed(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("box", "frame", "message"),
    [
        ([1, 2, 3], "square999", "must be 4 numbers"),
        ([1, 2, 3, "4"], "square999", "not a finite number"),
        ([1, 2, 3, math.nan], "square999", "not a finite number"),
        ([1, 2, 3, True], "square999", "not a finite number"),
        ([5, 2, 3, 4], "square999", "x1 > x2"),
        ([1, 2, 3, 1000], "square999", "outside the square999 range 0..999"),
        ([-1, 2, 3, 4], "raw1000", "outside the raw1000 range"),
        ([0, 0, 1.5, 1], "unit", "outside the unit range 0..1"),
    ],
)
def test_validate_names_the_problem(box, frame, message):
    with pytest.raises(BoxError, match=message):
        validate(box, frame)


def test_unknown_frame_and_bad_size():
    with pytest.raises(BoxError, match="unknown box frame 'raw10'"):
        decode((1, 2, 3, 4), (10, 10), "raw10")
    with pytest.raises(BoxError, match="positive integers"):
        decode((1, 2, 3, 4), (0, 10))


def test_drawable_clamps_and_orders_only_for_drawing():
    assert boxes.drawable((999, 98, 682, 1200), EXAMPLE) == pytest.approx((436480 / 999, 0.0, 640.0, 514.0))


# --- properties -------------------------------------------------------------------------------------------------

sizes = st.tuples(st.integers(1, 2000), st.integers(1, 2000))


@st.composite
def pixel_boxes(draw):
    """An image size (both orientations, odd and even differences) and a pixel box inside it."""
    width, height = draw(sizes)
    xs = sorted(draw(st.floats(0, width, allow_nan=False)) for _ in range(2))
    ys = sorted(draw(st.floats(0, height, allow_nan=False)) for _ in range(2))
    return (width, height), (xs[0], ys[0], xs[1], ys[1])


def unit_in_pixels(frame: str, size: tuple[int, int]) -> tuple[float, float]:
    """The pixel width and height of one unit of ``frame`` (0 for exact frames)."""
    spec = FRAMES[frame]
    if not spec.integer:
        return 0.0, 0.0
    side_x, side_y = (max(size), max(size)) if spec.padded else size
    return side_x / spec.scale, side_y / spec.scale


def close(a, b, tolerance_x, tolerance_y):
    eps = 1e-6 * (1 + max(map(abs, (*a, *b))))
    return all(
        abs(u - v) <= (tolerance_x if i % 2 == 0 else tolerance_y) + eps
        for i, (u, v) in enumerate(zip(a, b, strict=True))
    )


@given(pixel_boxes(), st.sampled_from(list(FRAMES)), st.sampled_from(list(FRAMES)))
def test_encode_then_decode_within_one_unit_for_every_pair_of_frames(case, source, target):
    size, pixels = case
    encoded = encode(pixels, size, source)
    ux, uy = unit_in_pixels(source, size)
    assert close(decode(encoded, size, source), pixels, ux, uy)
    converted = convert(encoded, size, source, target)
    vx, vy = unit_in_pixels(target, size)
    assert close(decode(converted, size, target), pixels, ux + vx, uy + vy)


@given(pixel_boxes(), st.sampled_from(list(FRAMES)))
def test_flipping_twice_is_the_identity(case, frame):
    size, pixels = case
    box = encode(pixels, size, frame)
    twice = flip(flip(box, size, frame), size, frame)
    if FRAMES[frame].integer:
        assert twice == box
    else:
        assert twice == pytest.approx(box)


@given(pixel_boxes(), st.sampled_from(list(FRAMES)))
def test_flip_mirrors_the_original_image_within_one_unit(case, frame):
    size, pixels = case
    flipped = decode(flip(encode(pixels, size, frame), size, frame), size, frame)
    mirrored = (size[0] - pixels[2], pixels[1], size[0] - pixels[0], pixels[3])
    ux, uy = unit_in_pixels(frame, size)
    assert close(flipped, mirrored, 2 * ux, uy)
