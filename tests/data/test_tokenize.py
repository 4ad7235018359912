"""Label masking by spans: over many random conversations, exactly the replies and their EOS are trained."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allseeing.data.templates import TEMPLATES
from allseeing.data.tokenize import IGNORE_INDEX, SampleTooLongError, encode_conversation

text = st.text(st.characters(blacklist_characters="<", blacklist_categories=("Cs",)), min_size=0, max_size=40)
replies = st.text(st.characters(blacklist_characters="<", blacklist_categories=("Cs",)), min_size=1, max_size=40)


@pytest.fixture(scope="module")
def processor(tiny_model):
    return tiny_model[1]


def encode(processor, turns, template="vicuna_v1", **kwargs):
    return encode_conversation(
        turns, TEMPLATES[template], processor.encode_text, processor.special, processor.config.image_tokens, **kwargs
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(text, replies), min_size=1, max_size=4), st.booleans())
def test_vicuna_trains_exactly_the_replies_and_eos(processor, turns, with_image):
    if with_image:
        turns[0] = (f"<image>\n{turns[0][0]}", turns[0][1])
    encoded = encode(processor, turns)
    assert len(encoded.input_ids) == len(encoded.labels)
    trained = processor.tokenizer.decode(encoded.trained_ids, skip_special_tokens=False)
    assert trained == "".join(f" {reply}</s>" for _, reply in turns)
    assert encoded.input_ids[0] == processor.special.bos and encoded.labels[0] == IGNORE_INDEX
    images = encoded.input_ids.count(processor.special.image)
    assert images == (processor.config.image_tokens if with_image else 0)
    assert all(
        label == IGNORE_INDEX
        for i, label in zip(encoded.input_ids, encoded.labels, strict=True)
        if i == processor.special.image
    )
    everything = processor.tokenizer.decode(
        [i for i in encoded.input_ids if i != processor.special.image], skip_special_tokens=False
    )
    rendered = TEMPLATES["vicuna_v1"].render(turns).replace("<image>", "")
    assert everything == "<s>" + rendered


@settings(max_examples=100, deadline=None)
@given(text, replies)
def test_plain_trains_the_caption_and_newline_without_eos(processor, instruction, caption):
    encoded = encode(processor, [(instruction, caption)], template="plain")
    assert processor.tokenizer.decode(encoded.trained_ids, skip_special_tokens=False) == f"{caption}\n"
    assert processor.special.eos not in encoded.input_ids
    assert (
        encoded.input_ids[: 1 + processor.config.image_tokens]
        == [processor.special.bos] + [processor.special.image] * processor.config.image_tokens
    )


def test_open_turn_has_no_labels(processor):
    encoded = encode(processor, [("<image>\nq", None)])
    assert encoded.trained_ids == []


def test_over_long_samples_follow_the_policy(processor):
    turns = [("<image>\nq", "a long answer " * 20)]
    full = encode(processor, turns)
    limit = len(full.input_ids) - 5
    with pytest.raises(
        SampleTooLongError, match=f"{len(full.input_ids)} tokens .* exceed the limit of {limit}: dropped"
    ):
        encode(processor, turns, max_length=limit)
    cut = encode(processor, turns, max_length=limit, policy="truncate")
    assert cut.truncated and cut.input_ids == full.input_ids[:limit] and cut.labels == full.labels[:limit]
    with pytest.raises(SampleTooLongError, match="no trained token"):
        encode(processor, turns, max_length=10 + processor.config.image_tokens, policy="truncate")
    late_image = [("q", "a"), ("<image>\nq2", "b")]
    image_start = encode(processor, late_image).input_ids.index(processor.special.image)
    with pytest.raises(SampleTooLongError, match="cut the image tokens"):
        encode(processor, late_image, max_length=image_start + 3, policy="truncate")
    assert encode(processor, turns, max_length=len(full.input_ids)) == full


def test_one_image_per_sample(processor):
    with pytest.raises(ValueError, match="one image"):
        encode(processor, [("<image>\nq", "a"), ("<image> again", "b")])
    with pytest.raises(ValueError, match="unknown length policy"):
        encode(processor, [("q", "a")], max_length=3, policy="wrap")


@pytest.mark.parametrize("legacy", ["false", "true", "absent"])
@pytest.mark.parametrize("name", ["train", "train_single"])
def test_training_ids_and_labels_are_upstreams(upstream_converted, legacy, name):
    """A LLaVA training record through the training data path gives the ids and labels that upstream's
    preprocess_multimodal + preprocess_v1 made (multi-turn, the image marker moved to the front)."""
    from allseeing.data.dataset import encoder_for
    from allseeing.model.processor import Processor
    from tests import upstream

    processor = Processor.load(upstream_converted(legacy))
    encoded = encoder_for(processor, max_length=2048, policy="drop")(upstream.training_record(name))
    expected = upstream.case(legacy, name)
    assert encoded.input_ids == upstream.expand(expected["input_ids"], processor.special.image)
    assert encoded.labels == upstream.expand_labels(expected["labels"], expected["input_ids"])
