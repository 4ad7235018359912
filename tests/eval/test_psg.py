"""PSG scene-graph recall by hand, under upstream's protocol and the fixed one, and where they differ."""

from allseeing.eval.metrics.lemma import get_lemmatizer, load_synonyms
from allseeing.eval.metrics.scene_graph import Vocabulary
from allseeing.rec.boxes import encode
from allseeing.rec.write import object_mention, relation_mention
from tests.eval.helpers import score

SIZE = (200, 100)  # S = 200, dy = 50
PERSON, TABLE, SKY = (20.0, 0.0, 60.0, 50.0), (0.0, 40.0, 200.0, 100.0), (0.0, 0.0, 200.0, 30.0)
P, T, S = (encode(b, SIZE) for b in (PERSON, TABLE, SKY))


def question(tuples, qid="img1"):
    return {
        "question_id": qid,
        "image": "x.jpg",
        "text": "Answer the question with scene graph.",
        "width": 200,
        "height": 100,
        "relation_tuples": tuples,
    }


def sentence(subject, s_box, predicate, obj, o_box):
    return f"The {object_mention(subject, [s_box])} is {relation_mention(predicate, [s_box], [o_box])} the {object_mention(obj, [o_box])}."


GROUND_TRUTH = [
    ["person", list(PERSON), "dining table", list(TABLE), "sitting at"],
    ["sky-other-merged", list(SKY), "person", list(PERSON), "above"],
]
ANSWER = sentence("man", P, "sitting at", "table", T) + " " + sentence("sky", S, "above", "man", P)


def test_upstream_categories_are_every_token_through_the_synonyms():
    vocabulary = Vocabulary(get_lemmatizer("spacy"), load_synonyms(protocol="official"))
    assert vocabulary.official_categories(("man", "man")) == ["person", "person"]
    assert vocabulary.official_categories(("the sky",)) == ["the", "sky"]
    assert vocabulary.official_categories(()) == ["Unknown"]
    assert vocabulary.official_categories(("tables",)) == ["dining table"]
    assert vocabulary.official_categories(("the building", "Dog")) == ["the", "building", "Dog"]


def test_fixed_categories_are_the_head_word_through_our_synonyms():
    vocabulary = Vocabulary(get_lemmatizer("spacy"), load_synonyms(protocol="fixed"))
    assert vocabulary.head_category("the two wooden tables") == "dining table"
    assert vocabulary.head_category("potted plant") == "potted plant"
    assert vocabulary.head_category("the Dog") == "dog"


def test_both_protocols_recall_a_correct_answer(tmp_path):
    official = score(tmp_path, "psg", [question(GROUND_TRUTH)], {"img1": ANSWER})
    fixed = score(tmp_path, "psg", [question(GROUND_TRUTH)], {"img1": ANSWER}, protocol="fixed")
    assert (official["recall"], official["mean_recall"], official["correct_format_ratio"]) == (100.0, 100.0, 100.0)
    assert (fixed["recall"], fixed["mean_recall"]) == (100.0, 100.0)
    # upstream merges "man" over its two mentions: phrase list ['man', 'man'] -> 2 tuples per relation
    assert (official["num_pred_tuples"], fixed["num_pred_tuples"]) == (4.0, 2.0)
    assert official["per_predicate"] == {"above": 100.0, "sitting at": 100.0}


def test_where_the_protocols_differ(tmp_path):
    truth = [
        [
            "person",
            list(PERSON),
            "table-merged",
            list(TABLE),
            "sitting at",
        ],  # unreachable upstream: table -> dining table
        ["sky-other-merged", list(SKY), "person", list(PERSON), "above"],
        [
            "sky-other-merged",
            list(SKY),
            "person",
            list(PERSON),
            "above",
        ],  # a duplicate: one prediction recalls both upstream
    ]
    answer = sentence("man", P, "sitting at", "table", T) + " " + sentence("the sky", S, "Above", "man", P)
    official = score(tmp_path, "psg", [question(truth)], {"img1": answer})
    fixed = score(tmp_path, "psg", [question(truth)], {"img1": answer}, protocol="fixed")
    assert official["recall"] == 0.0  # table-merged never matches; "Above" != "above" verbatim
    assert fixed["recall"] == round(100 * 2 / 3, 2)  # table matched, Above normalised, one-to-one: one "above" left
    assert official["num_pred_tuples"] == 6.0  # "the sky" -> "the", "sky": 2 x 2 tuples, plus 2 for the man
    assert fixed["per_predicate"] == {"above": 50.0, "sitting at": 100.0}


def test_malformed_answers_lower_the_format_ratio(tmp_path):
    odd = f"<ref>man</ref><box>[[{', '.join(map(str, P))}]]</box> <pred>above</pred><box>[[{', '.join(map(str, P))}]]</box>"
    questions = [question(GROUND_TRUTH, "a"), question(GROUND_TRUTH, "b"), question(GROUND_TRUTH, "c")]
    result = score(tmp_path, "psg", questions, {"a": ANSWER, "b": odd})
    assert (result["correct_format_ratio"], result["invalid"], result["coverage"]) == (50.0, 1, round(200 / 3, 2))
    assert result["recall"] == 50.0  # only "a" recalls; upstream scores the answered "a" and "b" only
    fixed = score(tmp_path, "psg", questions, {"a": ANSWER, "b": odd}, protocol="fixed")
    assert fixed["recall"] == round(100 * 2 / 6, 2)  # the unanswered "c" counts as missed


def test_mean_recall_averages_unrounded_recalls(tmp_path):
    sitting = ["person", list(PERSON), "dining table", list(TABLE), "sitting at"]
    above = ["sky-other-merged", list(SKY), "person", list(PERSON), "above"]
    questions = [question([sitting], "a"), question([above], "b"), question([above, above], "c")]
    answers = {"a": "nothing", "b": sentence("sky", S, "above", "man", P), "c": "nothing"}
    result = score(tmp_path, "psg", questions, answers)
    assert result["per_predicate"] == {"above": 33.33, "sitting at": 0.0}
    assert result["mean_recall"] == 16.67  # (1/3 + 0) / 2; averaging the rounded values would give 16.66


def test_official_reads_boxes_as_upstreams_tensors_do(tmp_path):
    # A nested box of four numbers is one box upstream (tensor(...).view(-1, 4)); a predicate's string "box list"
    # keeps its place in the pairing, so the pairs after it are unchanged.
    nested = f"[[[{P[0]}, {P[1]}], [{P[2]}, {P[3]}]]]"
    flat_t = f"[[{', '.join(map(str, T))}]]"
    answer = (
        f"<ref>man</ref><box>{nested}</box> <pred>sitting at</pred><box>{nested}</box><box>{flat_t}</box> "
        f'<ref>table</ref><box>{flat_t}</box> <pred>above</pred><box>"ab"</box><box>"cd"</box> '
        f"<pred>above</pred><box>{nested}</box><box>{flat_t}</box>"
    )
    truth = [["person", list(PERSON), "dining table", list(TABLE), "sitting at"]]
    result = score(tmp_path, "psg", [question(truth)], {"img1": answer})
    assert (result["recall"], result["correct_format_ratio"]) == (100.0, 100.0)
    # Upstream prints recall 0.00 and format 0.00 here: the string takes the first slot of "above", so the sky's
    # box pairs with it and the man's box is left over (an odd count).
    s_box, p_box = (f"[[{', '.join(map(str, b))}]]" for b in (S, P))
    shifted = (
        f'<ref>sky</ref><box>{s_box}</box> <pred>above</pred><box>"ab"</box><box>{s_box}</box> '
        f"<pred>above</pred><box>{p_box}</box> <ref>man</ref><box>{p_box}</box>"
    )
    above = [["sky-other-merged", list(SKY), "person", list(PERSON), "above"]]
    result = score(tmp_path, "psg", [question(above)], {"img1": shifted})
    assert (result["recall"], result["correct_format_ratio"]) == (0.0, 0.0)
