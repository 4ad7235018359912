"""Flipping ReC text: boxes mirrored in the original frame, lateral words swapped with their case."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allseeing.rec.flip import flip_text, swap_lateral_words
from allseeing.rec.parse import ReCParseError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the man on the left", "the man on the right"),
        ("Left of the RIGHT one", "Right of the LEFT one"),
        ("the leftmost cup and the rightmost cup", "the rightmost cup and the leftmost cup"),
        ("his left-hand glove, moving leftwards", "his right-hand glove, moving rightwards"),
        ("leftover food, copyright", "leftover food, copyright"),
    ],
)
def test_swap_lateral_words(text, expected):
    assert swap_lateral_words(text) == expected


def test_flip_text_mirrors_boxes_and_words_and_keeps_the_rest():
    text = "<image>\nthe <ref>dog on the left</ref><box>[[0, 583, 100, 900], [290, 260, 835, 781]]</box> </s>"
    assert flip_text(text, (640, 514)) == (
        "<image>\nthe <ref>dog on the right</ref><box>[[899, 583, 999, 900], [164, 260, 709, 781]]</box> </s>"
    )


def test_flip_text_uses_the_original_frame_on_odd_padding():
    assert (
        flip_text("<ref>x</ref><box>[[100, 5, 300, 9]]</box>", (513, 640))
        == "<ref>x</ref><box>[[697, 5, 897, 9]]</box>"
    )


def test_flip_text_rejects_bad_boxes_with_their_offset():
    with pytest.raises(ReCParseError, match="^offset 12: box list"):
        flip_text("<ref>x</ref><box>[[1, 2</box>", (10, 10))
    with pytest.raises(ReCParseError, match="^offset 12: .*not closed"):
        flip_text("<ref>x</ref><box>[[1, 2, 3, 4]]", (10, 10))


words = st.lists(st.sampled_from(["left", "Right", "LEFTMOST", "rightwards", "the", "cup", "left-hand", " ", ","]))


@settings(max_examples=200)
@given(words, st.integers(1, 900), st.integers(1, 900))
def test_flipping_text_twice_is_the_identity(tokens, width, height):
    text = " ".join(tokens) + "<ref>a</ref><box>[[0, 0, 0, 0]]</box>"
    assert flip_text(flip_text(text, (width, height)), (width, height)) == text
