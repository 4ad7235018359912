"""Every edge case of upstream's parser (docs/upstream.md, "PSG extraction"), in strict, lenient and compat mode,
with the expected output written out."""

import pytest

from allseeing.rec.parse import ReCParseError, parse


def summary(text: str, mode: str) -> dict:
    doc = parse(text, mode=mode)
    return {
        "caption": doc.caption,
        "objects": [(o.phrase, [list(b) for b in o.boxes]) for o in doc.objects],
        "triplets": [(t.subject, list(t.subject_box), t.predicate, t.object, list(t.object_box)) for t in doc.triplets],
        "errors": [(e.offset, e.message) for e in doc.errors],
    }


def strict_error(text: str) -> tuple[int, str]:
    with pytest.raises(ReCParseError) as info:
        parse(text, mode="strict")
    return info.value.offset, info.value.message


MAN, CUP1, CUP2, TABLE = [10, 10, 50, 90], [60, 40, 70, 50], [80, 40, 90, 50], [0, 50, 99, 99]


# Row 1: well-formed 1 -> N, the subject is broadcast.
ONE_TO_N = (
    "a <ref>man</ref><box>[[10, 10, 50, 90]]</box> <pred>holding</pred><box>[[10, 10, 50, 90]]</box>"
    "<box>[[60, 40, 70, 50], [80, 40, 90, 50]]</box> two <ref>cups</ref><box>[[60, 40, 70, 50], [80, 40, 90, 50]]</box>"
)


@pytest.mark.parametrize("mode", ["strict", "lenient", "compat"])
def test_one_to_n_broadcasts_the_subject(mode):
    assert summary(ONE_TO_N, mode) == {
        "caption": "a man holding two cups",
        "objects": [("man", [MAN]), ("cups", [CUP1, CUP2])],
        "triplets": [("man", MAN, "holding", "cups", CUP1), ("man", MAN, "holding", "cups", CUP2)],
        "errors": [],
    }


# Row 2: N -> 1, the object is broadcast.
N_TO_ONE = (
    "<ref>cups</ref><box>[[60, 40, 70, 50], [80, 40, 90, 50]]</box> <pred>on</pred>"
    "<box>[[60, 40, 70, 50], [80, 40, 90, 50]]</box><box>[[0, 50, 99, 99]]</box> the <ref>table</ref>"
    "<box>[[0, 50, 99, 99]]</box>"
)


@pytest.mark.parametrize("mode", ["strict", "lenient", "compat"])
def test_n_to_one_broadcasts_the_object(mode):
    assert summary(N_TO_ONE, mode) == {
        "caption": "cups on the table",
        "objects": [("cups", [CUP1, CUP2]), ("table", [TABLE])],
        "triplets": [("cups", CUP1, "on", "table", TABLE), ("cups", CUP2, "on", "table", TABLE)],
        "errors": [],
    }


# Row 3: 2 subjects vs 3 objects.
TWO_VS_THREE = (
    "<ref>a</ref><box>[[1, 1, 2, 2], [3, 3, 4, 4]]</box> <pred>near</pred><box>[[1, 1, 2, 2], [3, 3, 4, 4]]</box>"
    "<box>[[5, 5, 6, 6], [7, 7, 8, 8], [9, 9, 10, 10]]</box> <ref>b</ref><box>[[5, 5, 6, 6], [7, 7, 8, 8], [9, 9, 10, 10]]</box>"
)


def test_two_vs_three_strict_fails_at_the_predicate():
    offset, message = strict_error(TWO_VS_THREE)
    assert offset == TWO_VS_THREE.index("<pred>")
    assert (
        message
        == "<pred>near</pred>: 2 subject boxes cannot pair with 3 object boxes (counts must be equal or one of them 1)"
    )


def test_two_vs_three_lenient_pairs_the_first_two_and_reports():
    result = summary(TWO_VS_THREE, "lenient")
    assert result["triplets"] == [
        ("a", [1, 1, 2, 2], "near", "b", [5, 5, 6, 6]),
        ("a", [3, 3, 4, 4], "near", "b", [7, 7, 8, 8]),
    ]
    assert result["errors"] == [
        (
            TWO_VS_THREE.index("<pred>"),
            "<pred>near</pred>: 2 subject boxes cannot pair with 3 object boxes (counts must be equal or one of them 1)",
        )
    ]


def test_two_vs_three_compat_truncates_and_flags_the_format():
    from allseeing.rec.compat import extract

    extraction = extract(TWO_VS_THREE)
    assert extraction.correct_format is False
    assert [
        (t.subject_phrases, list(t.subject_box), t.object_phrases, list(t.object_box)) for t in extraction.tuples
    ] == [
        (("a",), [1, 1, 2, 2], ("b",), [5, 5, 6, 6]),
        (("a",), [3, 3, 4, 4], ("b",), [7, 7, 8, 8]),
    ]


# Row 4: <pred> followed by a single <box>.
ONE_BOX_PRED = "<ref>man</ref><box>[[10, 10, 50, 90]]</box> is <pred>walking</pred><box>[[10, 10, 50, 90]]</box> fast"


def test_single_box_pred_strict():
    assert strict_error(ONE_BOX_PRED) == (
        ONE_BOX_PRED.index("<pred>"),
        "<pred> needs two box lists (subjects, objects), found 1",
    )


def test_single_box_pred_lenient_keeps_the_relation_without_triplets():
    doc = parse(ONE_BOX_PRED, mode="lenient")
    assert doc.caption == "man is walking fast"
    assert [(r.predicate, r.subjects, r.objects) for r in doc.relations] == [("walking", ((10, 10, 50, 90),), ())]
    assert doc.triplets == ()
    assert [(e.offset, e.message) for e in doc.errors] == [
        (ONE_BOX_PRED.index("<pred>"), "<pred> needs two box lists (subjects, objects), found 1")
    ]


def test_single_box_pred_compat_drops_the_odd_list():
    from allseeing.rec.compat import extract

    extraction = extract(ONE_BOX_PRED)
    assert extraction.correct_format is False
    assert extraction.tuples == []
    assert extraction.relations == {"walking": [[MAN]]}


# Row 5: <box> before any tag.
LEADING_BOX = "<box>[[1, 2, 3, 4]]</box> then a <ref>dog</ref><box>[[5, 6, 7, 8]]</box>"


def test_leading_box_strict():
    assert strict_error(LEADING_BOX) == (0, "<box> must follow a </ref> or </pred>")


def test_leading_box_lenient_reports_and_drops_it():
    assert summary(LEADING_BOX, "lenient") == {
        "caption": " then a dog",
        "objects": [("dog", [[5, 6, 7, 8]])],
        "triplets": [],
        "errors": [(0, "<box> must follow a </ref> or </pred>")],
    }


def test_leading_box_compat_is_object_unknown():
    assert summary(LEADING_BOX, "compat") == {
        "caption": " then a dog",
        "objects": [("Unknown", [[1, 2, 3, 4]]), ("dog", [[5, 6, 7, 8]])],
        "triplets": [],
        "errors": [(0, "box before any tag is given to object 'Unknown'")],
    }


# Row 6: malformed box JSON.
BAD_JSON = "a <ref>dog</ref><box>[[1,2,3,4]</box> runs"


def test_bad_json_strict():
    assert strict_error(BAD_JSON) == (BAD_JSON.index("<box>"), "box list '[[1,2,3,4]' is not valid JSON")


def test_bad_json_lenient():
    assert summary(BAD_JSON, "lenient") == {
        "caption": "a dog runs",
        "objects": [("dog", [])],
        "triplets": [],
        "errors": [(BAD_JSON.index("<box>"), "box list '[[1,2,3,4]' is not valid JSON")],
    }


def test_bad_json_compat_skips_the_box():
    assert summary(BAD_JSON, "compat") == {
        "caption": "a dog runs",
        "objects": [],
        "triplets": [],
        "errors": [(BAD_JSON.index("<box>"), "box list '[[1,2,3,4]' is not valid JSON (skipped)")],
    }


# Row 7: <pred> with boxes never given in a <ref>.
UNLISTED = "something <pred>above</pred><box>[[1, 1, 5, 5]]</box><box>[[1, 6, 5, 9]]</box> something else"


def test_unlisted_pred_boxes_strict():
    assert strict_error(UNLISTED) == (10, "box [1, 1, 5, 5] of <pred>above</pred> is listed by no <ref>")


def test_unlisted_pred_boxes_lenient_gives_null_names():
    assert summary(UNLISTED, "lenient") == {
        "caption": "something above something else",
        "objects": [],
        "triplets": [(None, [1, 1, 5, 5], "above", None, [1, 6, 5, 9])],
        "errors": [
            (10, "box [1, 1, 5, 5] of <pred>above</pred> is listed by no <ref>"),
            (10, "box [1, 6, 5, 9] of <pred>above</pred> is listed by no <ref>"),
        ],
    }


def test_unlisted_pred_boxes_compat_gives_empty_phrase_lists():
    from allseeing.rec.compat import extract

    (only,) = extract(UNLISTED).tuples
    assert (only.subject_phrases, only.object_phrases) == ((), ())
    assert summary(UNLISTED, "compat")["triplets"] == [(None, [1, 1, 5, 5], "above", None, [1, 6, 5, 9])]


# Row 8: <box>[]</box> as the object list.
EMPTY_OBJECTS = (
    "<ref>man</ref><box>[[10, 10, 50, 90]]</box> <pred>holding</pred><box>[[10, 10, 50, 90]]</box><box>[]</box>"
)


@pytest.mark.parametrize("mode", ["strict", "lenient", "compat"])
def test_empty_object_list_gives_zero_triplets_and_no_error(mode):
    assert summary(EMPTY_OBJECTS, mode) == {
        "caption": "man holding",
        "objects": [("man", [MAN])],
        "triplets": [],
        "errors": [],
    }


# Row 9: <image>\n at the start.
IMAGE_NEWLINE = "<image>\nthe <ref>cat</ref><box>[[1, 2, 3, 4]]</box> sleeps"


@pytest.mark.parametrize("mode", ["strict", "lenient", "compat"])
def test_image_then_newline_is_fine(mode):
    assert summary(IMAGE_NEWLINE, mode) == {
        "caption": "<image>\nthe cat sleeps",
        "objects": [("cat", [[1, 2, 3, 4]])],
        "triplets": [],
        "errors": [],
    }


# Row 10: <image> on the same line as the first mention.
IMAGE_SAME_LINE = "<image> the <ref>cat</ref><box>[[1, 2, 3, 4]]</box> sleeps"


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_image_on_the_same_line_is_plain_text(mode):
    assert summary(IMAGE_SAME_LINE, mode) == {
        "caption": "<image> the cat sleeps",
        "objects": [("cat", [[1, 2, 3, 4]])],
        "triplets": [],
        "errors": [],
    }


def test_image_on_the_same_line_compat_reproduces_the_silent_corruption():
    from allseeing.rec.compat import extract

    extraction = extract(IMAGE_SAME_LINE)
    assert extraction.objects == {}
    assert extraction.relations == {}
    assert extraction.caption == "<image> the cat<box>[[1, 2, 3, 4]]</box> sleeps"


# Row 11: other HTML-like tags.
HTML = "<b>big</b> <ref>dog</ref><box>[[1, 2, 3, 4]]</box>"


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_html_tags_are_text(mode):
    assert summary(HTML, mode) == {
        "caption": "<b>big</b> dog",
        "objects": [("dog", [[1, 2, 3, 4]])],
        "triplets": [],
        "errors": [],
    }


def test_html_tags_compat_are_predicate_names_but_harmless_here():
    from allseeing.rec.compat import extract

    extraction = extract(HTML)
    assert extraction.objects == {"dog": [[1, 2, 3, 4]]}
    assert extraction.relations == {}
    # and a box right after one is taken as that "predicate"'s list
    assert extract("<b>big</b><box>[[1, 2, 3, 4]]</box>").relations == {"big": [[[1, 2, 3, 4]]]}


# Row 12: newline inside a phrase.
NEWLINE_PHRASE = "a <ref>red\ncar</ref><box>[[1, 2, 3, 4]]</box> parks"


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_newline_inside_a_phrase_is_kept(mode):
    assert summary(NEWLINE_PHRASE, mode) == {
        "caption": "a red\ncar parks",
        "objects": [("red\ncar", [[1, 2, 3, 4]])],
        "triplets": [],
        "errors": [],
    }


def test_newline_inside_a_phrase_compat_loses_the_mention():
    assert summary(NEWLINE_PHRASE, "compat") == {
        "caption": "a red\ncar<box>[[1, 2, 3, 4]]</box> parks",
        "objects": [],
        "triplets": [],
        "errors": [],
    }


# Row 13: the same phrase mentioned twice with the same box.
ROAD = [0, 583, 984, 900]
SAME_PHRASE_TWICE = (
    "a <ref>road</ref><box>[[0, 583, 984, 900]]</box>; the <ref>bus</ref><box>[[290, 260, 835, 781]]</box> "
    "<pred>on</pred><box>[[290, 260, 835, 781]]</box><box>[[0, 583, 984, 900]]</box> the "
    "<ref>road</ref><box>[[0, 583, 984, 900]]</box>"
)


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_same_phrase_twice_stays_two_mentions(mode):
    result = summary(SAME_PHRASE_TWICE, mode)
    assert result["objects"] == [("road", [ROAD]), ("bus", [[290, 260, 835, 781]]), ("road", [ROAD])]
    assert result["triplets"] == [("bus", [290, 260, 835, 781], "on", "road", ROAD)]
    assert result["errors"] == []


def test_same_phrase_twice_compat_merges_and_duplicates():
    from allseeing.rec.compat import extract

    extraction = extract(SAME_PHRASE_TWICE)
    assert extraction.objects == {"road": [ROAD, ROAD], "bus": [[290, 260, 835, 781]]}
    (only,) = extraction.tuples
    assert only.object_phrases == ("road", "road")
    assert summary(SAME_PHRASE_TWICE, "compat")["objects"] == [("road", [ROAD, ROAD]), ("bus", [[290, 260, 835, 781]])]


# Row 14: the same predicate twice, the first with 1 box list, the second with 3.
A, B, C, D = "[[1, 1, 2, 2]]", "[[3, 3, 4, 4]]", "[[5, 5, 6, 6]]", "[[7, 7, 8, 8]]"
SAME_PRED_TWICE = (
    f"<ref>a</ref><box>{A}</box> <pred>near</pred><box>{A}</box>, and <ref>b</ref><box>{B}</box> "
    f"<pred>near</pred><box>{B}</box><box>{C}</box><box>{D}</box> <ref>c</ref><box>{C}</box> <ref>d</ref><box>{D}</box>"
)


def test_same_pred_twice_strict_fails_at_the_short_mention():
    assert strict_error(SAME_PRED_TWICE) == (
        SAME_PRED_TWICE.index("<pred>"),
        "<pred> needs two box lists (subjects, objects), found 1",
    )


def test_same_pred_twice_lenient_never_pairs_across_mentions():
    result = summary(SAME_PRED_TWICE, "lenient")
    assert result["triplets"] == [("b", [3, 3, 4, 4], "near", "c", [5, 5, 6, 6])]
    second_pred = SAME_PRED_TWICE.index("<pred>", SAME_PRED_TWICE.index("<pred>") + 1)
    stray = SAME_PRED_TWICE.index(f"<box>{D}", second_pred)
    assert result["errors"] == [
        (SAME_PRED_TWICE.index("<pred>"), "<pred> needs two box lists (subjects, objects), found 1"),
        (stray, "<box> must follow a </ref> or </pred>"),
    ]


def test_same_pred_twice_compat_pairs_across_mentions_silently():
    assert summary(SAME_PRED_TWICE, "compat")["triplets"] == [
        ("a", [1, 1, 2, 2], "near", "b", [3, 3, 4, 4]),
        ("c", [5, 5, 6, 6], "near", "d", [7, 7, 8, 8]),
    ]
    from allseeing.rec.compat import extract

    assert extract(SAME_PRED_TWICE).correct_format is True  # upstream sees an even count: no warning


# Row 15: float coordinates in a <ref>, integers in the <pred>.
FLOAT_VS_INT = (
    "<ref>dog</ref><box>[[1.0, 2.0, 3.0, 4.0]]</box> <pred>on</pred><box>[[1, 2, 3, 4]]</box><box>[[5, 6, 7, 8]]</box> "
    "a <ref>mat</ref><box>[[5, 6, 7, 8]]</box>"
)


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_float_vs_int_matches_numerically(mode):
    assert summary(FLOAT_VS_INT, mode)["triplets"] == [("dog", [1, 2, 3, 4], "on", "mat", [5, 6, 7, 8])]


def test_float_vs_int_compat_matches_by_json_text():
    assert summary(FLOAT_VS_INT, "compat")["triplets"] == [(None, [1, 2, 3, 4], "on", "mat", [5, 6, 7, 8])]
