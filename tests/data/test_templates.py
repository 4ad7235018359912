"""Templates render exactly upstream's strings (``llava/conversation.py``), character for character."""

import pytest

from allseeing.data.templates import TEMPLATES, Part, get_template, turns_from_llava

SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions."
)


def test_vicuna_v1_training_sample():
    rendered = TEMPLATES["vicuna_v1"].render([("<image>\nWhat is it?", "A <ref>cat</ref><box>[[1, 2, 3, 4]]</box>.")])
    assert rendered == f"{SYSTEM} USER: <image>\nWhat is it? ASSISTANT: A <ref>cat</ref><box>[[1, 2, 3, 4]]</box>.</s>"


def test_vicuna_v1_multi_turn_has_no_space_after_eos():
    rendered = TEMPLATES["vicuna_v1"].render([("q1", "a1"), ("q2", "a2")])
    assert rendered == f"{SYSTEM} USER: q1 ASSISTANT: a1</s>USER: q2 ASSISTANT: a2</s>"


def test_vicuna_v1_generation_prompt_ends_without_a_space():
    rendered = TEMPLATES["vicuna_v1"].render([("q1", "a1"), ("<image>\nq2", None)])
    assert rendered == f"{SYSTEM} USER: q1 ASSISTANT: a1</s>USER: <image>\nq2 ASSISTANT:"


def test_plain_discards_the_instruction():
    assert TEMPLATES["plain"].render([("Describe.", "a red circle")]) == "<image>a red circle\n"
    segments = TEMPLATES["plain"].segments([("Describe.", "a red circle")])
    assert segments == [(Part.PROMPT, "<image>"), (Part.REPLY, "a red circle\n")]


def test_the_reply_owns_the_separating_space():
    segments = TEMPLATES["vicuna_v1"].segments([("q", "a")])
    assert segments[-2:] == [(Part.REPLY, " a"), (Part.EOS, "</s>")]
    assert segments[0][1].endswith("ASSISTANT:")


def test_bad_conversations():
    with pytest.raises(ValueError, match="only the last turn"):
        TEMPLATES["vicuna_v1"].segments([("q", None), ("q2", "a")])
    with pytest.raises(ValueError, match="exactly one turn"):
        TEMPLATES["plain"].segments([("q", "a"), ("q", "a")])
    with pytest.raises(ValueError, match="unknown template"):
        get_template("llava_v0")


def test_turns_from_llava():
    conversation = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}, {"from": "human", "value": "q2"}]
    assert turns_from_llava(conversation, open_last=True) == [("q", "a"), ("q2", None)]
    with pytest.raises(ValueError, match="ends with a human turn"):
        turns_from_llava(conversation)
    with pytest.raises(ValueError, match="must be from 'gpt'"):
        turns_from_llava([{"from": "human", "value": "q"}, {"from": "human", "value": "q"}])
