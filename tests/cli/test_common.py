"""CLI helpers: the JSON printer keeps the value exactly."""

import json

from hypothesis import given
from hypothesis import strategies as st

from allseeing.cli.common import format_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
)


@given(json_values)
def test_format_json_round_trips(value):
    assert json.loads(format_json(value)) == value


def test_boxes_stay_on_one_line():
    assert format_json({"boxes": [[1, 2, 3, 4], [5, 6, 7, 8]]}) == '{\n  "boxes": [[1, 2, 3, 4], [5, 6, 7, 8]]\n}'
