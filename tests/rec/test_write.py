"""The serializer is the exact inverse of the parser on canonical documents."""

import pytest
from hypothesis import given, settings

from allseeing.rec.parse import parse
from allseeing.rec.write import box_list, object_mention, relation_mention, write
from tests.rec.strategies import canonical_rec_texts


def test_upstream_spacing():
    assert (
        box_list([(290, 260, 835, 781), (1, 583, 238, 744)]) == "<box>[[290, 260, 835, 781], [1, 583, 238, 744]]</box>"
    )
    assert object_mention("bus", [(1, 2, 3, 4)]) == "<ref>bus</ref><box>[[1, 2, 3, 4]]</box>"
    assert relation_mention("on", [(1, 2, 3, 4)], []) == "<pred>on</pred><box>[[1, 2, 3, 4]]</box><box>[]</box>"


@settings(max_examples=300)
@given(canonical_rec_texts())
def test_write_then_parse_is_the_identity(text):
    document = parse(text, mode="strict")
    assert write(document) == text
    assert parse(write(document), mode="strict") == document


def test_compat_documents_cannot_be_written_back():
    with pytest.raises(ValueError, match="compat"):
        write(parse("<ref>a</ref><box>[[1, 2, 3, 4]]</box>", mode="compat"))
