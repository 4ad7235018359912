"""Hypothesis strategies for ReC texts and scene graphs, shared by the round-trip tests."""

from hypothesis import strategies as st

from allseeing.rec.graph import SceneGraph, SceneObject, SceneRelation
from allseeing.rec.write import object_mention, relation_mention

# Free text never holds "<" unless it is a non-ReC tag such as "<image>".
plain_text = st.one_of(
    st.text(st.characters(blacklist_characters="<", blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(["<image>\n", "</s>", "<b>x</b>", " ", "\n"]),
)
phrases = st.text(
    st.characters(blacklist_characters="<", blacklist_categories=("Cs",)), min_size=1, max_size=10
).filter(str.strip)


@st.composite
def canonical_boxes(draw):
    x1, x2 = sorted(draw(st.lists(st.integers(0, 999), min_size=2, max_size=2)))
    y1, y2 = sorted(draw(st.lists(st.integers(0, 999), min_size=2, max_size=2)))
    return (x1, y1, x2, y2)


@st.composite
def canonical_rec_texts(draw):
    """Strictly valid ReC text: objects with 1-3 boxes, relations between listed boxes, free text around."""
    objects = draw(
        st.lists(st.tuples(phrases, st.lists(canonical_boxes(), min_size=1, max_size=3)), min_size=1, max_size=6)
    )
    mentions = [object_mention(phrase, boxes) for phrase, boxes in objects]
    for _ in range(draw(st.integers(0, 4))):
        subject = draw(st.sampled_from(objects))[1]
        obj = draw(st.sampled_from(objects))[1]
        mentions.append(relation_mention(draw(phrases), [draw(st.sampled_from(subject))], obj))
    mentions = draw(st.permutations(mentions))
    pieces = [draw(plain_text)]
    for mention in mentions:
        pieces += [mention, draw(plain_text)]
    return "".join(pieces)


@st.composite
def scene_graphs(draw):
    """Graphs with distinct boxes, named objects and distinct relations."""
    boxes = draw(st.lists(canonical_boxes(), min_size=1, max_size=8, unique_by=lambda b: b))
    names = draw(st.lists(phrases, min_size=len(boxes), max_size=len(boxes)))
    objects = tuple(SceneObject(i, name, box) for i, (name, box) in enumerate(zip(names, boxes, strict=True)))
    triples = draw(
        st.lists(
            st.tuples(st.integers(0, len(objects) - 1), phrases, st.integers(0, len(objects) - 1)),
            max_size=8,
            unique=True,
        )
    )
    return SceneGraph(objects, tuple(SceneRelation(s, p, o) for s, p, o in triples))
