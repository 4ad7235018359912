"""The parser beyond the upstream table: offsets, recovery in lenient mode, strictness, pairing, JSON view."""

import pytest

from allseeing.rec.document import to_json
from allseeing.rec.parse import ReCParseError, TokenKind, pair_boxes, parse, tokenize

BUS = (
    "a tall red <ref>bus</ref><box>[[290, 260, 835, 781]]</box> is <pred>driving on</pred>"
    "<box>[[290, 260, 835, 781]]</box><box>[[0, 583, 984, 900]]</box> a <ref>road</ref><box>[[0, 583, 984, 900]]</box>"
)


def test_offsets_cover_each_whole_mention():
    doc = parse(BUS, mode="strict")
    bus, road = doc.objects
    assert BUS[bus.start : bus.end] == "<ref>bus</ref><box>[[290, 260, 835, 781]]</box>"
    assert BUS[road.start : road.end] == "<ref>road</ref><box>[[0, 583, 984, 900]]</box>"
    (relation,) = doc.relations
    assert BUS[relation.start : relation.end] == (
        "<pred>driving on</pred><box>[[290, 260, 835, 781]]</box><box>[[0, 583, 984, 900]]</box>"
    )
    assert doc.caption == "a tall red bus is driving on a road"
    assert doc.caption[bus.caption_start : bus.caption_start + 3] == "bus"


def test_json_view_has_the_contract_keys_and_pixel_boxes():
    result = to_json(parse(BUS), size=(640, 514))
    assert list(result) == ["caption", "objects", "relations", "triplets", "errors"]
    assert list(result["objects"][0]) == ["phrase", "boxes", "pixel_boxes", "start", "end"]
    assert result["objects"][0]["pixel_boxes"] == [[185.79, 103.57, 534.93, 437.34]]
    assert list(result["triplets"][0])[:5] == ["subject", "subject_box", "predicate", "object", "object_box"]
    assert "pixel_boxes" not in to_json(parse(BUS))["objects"][0]


def test_tokenizer_keeps_unknown_tags_as_text():
    text = "<image> x <ref>y</ref><box>[]</box></s>"
    kinds = [(t.kind, text[t.start : t.end]) for t in tokenize(text)]
    assert kinds == [
        (TokenKind.TEXT, "<image> x "),
        (TokenKind.REF_OPEN, "<ref>"),
        (TokenKind.TEXT, "y"),
        (TokenKind.REF_CLOSE, "</ref>"),
        (TokenKind.BOX_OPEN, "<box>"),
        (TokenKind.TEXT, "[]"),
        (TokenKind.BOX_CLOSE, "</box>"),
        (TokenKind.TEXT, "</s>"),
    ]


@pytest.mark.parametrize(
    ("subjects", "objects", "expected", "problem"),
    [
        ([1], [2, 3], [(1, 2), (1, 3)], False),
        ([1, 2], [3], [(1, 3), (2, 3)], False),
        ([1, 2], [3, 4], [(1, 3), (2, 4)], False),
        ([1], [], [], False),
        ([], [1], [], False),
        ([1, 2], [3, 4, 5], [(1, 3), (2, 4)], True),
        ([], [1, 2], [], True),
    ],
)
def test_pairing_rules(subjects, objects, expected, problem):
    pairs, message = pair_boxes(tuple(subjects), tuple(objects))
    assert pairs == expected
    assert (message is not None) == problem


def test_triplet_names_prefer_the_nearest_mention_before_then_after():
    text = (
        "<ref>man</ref><box>[[1, 1, 2, 2]]</box> or <ref>person</ref><box>[[1, 1, 2, 2]]</box> "
        "<pred>holds</pred><box>[[1, 1, 2, 2]]</box><box>[[3, 3, 4, 4]]</box> a <ref>cup</ref><box>[[3, 3, 4, 4]]</box>"
        " and a <ref>mug</ref><box>[[3, 3, 4, 4]]</box>"
    )
    (triplet,) = parse(text, mode="strict").triplets
    assert (triplet.subject, triplet.object) == ("person", "cup")


class TestStrict:
    def test_requires_the_box_right_after_the_phrase(self):
        text = "<ref>dog</ref> <box>[[1, 2, 3, 4]]</box>"
        with pytest.raises(ReCParseError, match=r"^offset 8: expected <box> right after </ref>$"):
            parse(text, mode="strict")

    def test_rejects_out_of_range_and_inverted_boxes(self):
        with pytest.raises(ReCParseError, match="outside the square999 range 0..999"):
            parse("<ref>dog</ref><box>[[1, 2, 3, 1000]]</box>", mode="strict")
        with pytest.raises(ReCParseError, match="x1 > x2"):
            parse("<ref>dog</ref><box>[[5, 2, 3, 4]]</box>", mode="strict")

    def test_frame_sets_the_range(self):
        assert parse("<ref>dog</ref><box>[[0, 0, 1000, 1000]]</box>", mode="strict", frame="raw1000").objects
        with pytest.raises(ReCParseError, match="raw100 range"):
            parse("<ref>dog</ref><box>[[0, 0, 101, 5]]</box>", mode="strict", frame="raw100")

    def test_rejects_empty_phrases_and_unclosed_tags(self):
        with pytest.raises(ReCParseError, match="^offset 0: empty phrase in <ref>$"):
            parse("<ref> </ref><box>[[1, 2, 3, 4]]</box>", mode="strict")
        with pytest.raises(ReCParseError, match="^offset 2: <ref> is not closed by </ref>$"):
            parse("a <ref>dog<box>[[1, 2, 3, 4]]</box>", mode="strict")
        with pytest.raises(ReCParseError, match="^offset 14: <box> is not closed by </box>$"):
            parse("<ref>dog</ref><box>[[1, 2, 3, 4]] runs", mode="strict")
        with pytest.raises(ReCParseError, match="^offset 4: unexpected </ref> without its opening tag$"):
            parse("dog </ref>", mode="strict")


class TestLenient:
    def test_accepts_whitespace_between_phrase_and_boxes(self):
        doc = parse("a <ref>dog</ref> <box>[[1, 2, 3, 4]]</box> runs")
        assert doc.errors == ()
        assert doc.caption == "a dog runs"
        assert doc.objects[0].boxes == ((1, 2, 3, 4),)

    def test_reads_a_flat_box_and_says_so(self):
        doc = parse("<ref>dog</ref><box>[1, 2, 3, 4]</box>")
        assert doc.objects[0].boxes == ((1, 2, 3, 4),)
        assert [e.message for e in doc.errors] == ["box list '[1, 2, 3, 4]' is a single box, not a list of boxes"]

    def test_accepts_a_ref_closed_by_pred_as_in_the_upstream_prompt_example(self):
        doc = parse("two <ref>remotes</pred><box>[]</box> lie there")
        assert [(o.phrase, o.boxes) for o in doc.objects] == [("remotes", ())]
        assert [e.message for e in doc.errors] == ["<ref> closed by </pred>"]

    def test_recovers_the_box_list_of_an_unclosed_box(self):
        doc = parse("<ref>dog</ref><box>[[1, 2, 3, 4]] runs")
        assert doc.objects[0].boxes == ((1, 2, 3, 4),)
        assert doc.caption == "dog runs"
        assert [(e.offset, e.message) for e in doc.errors] == [(14, "<box> is not closed by </box>")]

    def test_unclosed_ref_keeps_its_text(self):
        doc = parse("a <ref>dog and a <ref>cat</ref><box>[[1, 2, 3, 4]]</box>")
        assert doc.caption == "a dog and a cat"
        assert [(o.phrase, o.boxes) for o in doc.objects] == [("cat", ((1, 2, 3, 4),))]
        assert [(e.offset, e.message) for e in doc.errors] == [(2, "<ref> is not closed by </ref>")]

    def test_reports_out_of_range_boxes_without_clamping(self):
        doc = parse("<ref>dog</ref><box>[[1, 2, 3, 1200]]</box>")
        assert doc.objects[0].boxes == ((1, 2, 3, 1200),)
        assert [e.message for e in doc.errors] == ["box [1, 2, 3, 1200] is outside the square999 range 0..999"]

    def test_drops_non_boxes_with_an_error(self):
        doc = parse('<ref>dog</ref><box>[[1, 2, 3], [1, 2, 3, 4], ["a", 1, 2, 3]]</box>')
        assert doc.objects[0].boxes == ((1, 2, 3, 4),)
        assert len(doc.errors) == 2

    def test_strips_nothing_but_markup_from_the_caption(self):
        doc = parse("<image>\nUSER: hi </s><ref>x</ref><box>[[1, 2, 3, 4]]</box>  end")
        assert doc.caption == "<image>\nUSER: hi </s>x  end"

    def test_never_raises_on_garbage(self):
        for text in ["<box>", "</box>", "<pred>", "<ref></ref></ref><box><box>]]", "<pred>x</pred><box>[[", ""]:
            doc = parse(text)
            assert all(0 <= e.offset < max(len(text), 1) for e in doc.errors)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="unknown parse mode"):
        parse("x", mode="loose")
