"""Option ranking: the shared-prefix scores equal a full recomputation per option, in float32."""

import pytest
from PIL import Image

from allseeing.infer.rank import full_recompute_scores, option_sequences, rank_options

OPTIONS = ["left of", "right of", "on", "on top of", "same colour as", "inside"]
TURNS = [
    ("<image>\nWhat is the relation between the <ref>red circle</ref><box>[[1, 2, 30, 40]]</box> and the star?", None)
]


@pytest.mark.parametrize("label_format", ["{}", "The relation is {}", "{} it"])
def test_shared_prefix_equals_full_recomputation(tiny_model, label_format):
    model, processor = tiny_model
    image = Image.new("RGB", (60, 40), (30, 160, 60))
    ranked = rank_options(model, processor, image, TURNS, OPTIONS, label_format)
    reference = full_recompute_scores(model, processor, image, TURNS, OPTIONS, label_format)
    assert [s.option for s in ranked] == OPTIONS
    assert [s.sum_logprob for s in ranked] == pytest.approx(reference, rel=1e-5, abs=1e-4)
    for score in ranked:
        assert score.mean_logprob == pytest.approx(score.sum_logprob / score.tokens)


def test_scores_count_the_reply_and_eos(tiny_model):
    _, processor = tiny_model
    sequences, prompt_length = option_sequences(processor, TURNS, ["on", "on top of"], "{}")
    assert sequences[0][-1] == sequences[1][-1] == processor.special.eos
    assert sequences[0][:prompt_length] == sequences[1][:prompt_length]
    assert processor.tokenizer.decode(sequences[1][prompt_length:], skip_special_tokens=False) == " on top of</s>"


def test_text_only_and_multi_turn(tiny_model):
    model, processor = tiny_model
    turns = [("<image>\nq", "a red circle"), ("Which relation?", None)]
    ranked = rank_options(model, processor, Image.new("RGB", (8, 8)), turns, OPTIONS[:3])
    reference = full_recompute_scores(model, processor, Image.new("RGB", (8, 8)), turns, OPTIONS[:3])
    assert [s.sum_logprob for s in ranked] == pytest.approx(reference, rel=1e-5, abs=1e-4)
    plain = rank_options(model, processor, None, [("Which word?", None)], ["yes", "no"])
    assert [s.sum_logprob for s in plain] == pytest.approx(
        full_recompute_scores(model, processor, None, [("Which word?", None)], ["yes", "no"]), rel=1e-5, abs=1e-4
    )
    assert rank_options(model, processor, None, [("q", None)], []) == []


def test_a_converted_checkpoint_scores_options_as_upstream_did(upstream_converted):
    """Upstream's option losses (its vocab-rank loader and model, 400-row vocabulary): the padded output rows of
    the converted model (448) are left out of the normalisation, else every score moves."""
    from dataclasses import replace

    from allseeing.data.image import load_image
    from allseeing.model.build import load
    from allseeing.model.processor import Processor
    from tests import upstream

    model, processor = load(upstream_converted("false"))
    assert model.config.text_config.vocab_size == 448 and processor.config.scored_vocab == 400
    question, expected = upstream.question("rank"), upstream.case("false", "rank")
    turns = [(f"<image>\n{question['text']}", None)]
    image = load_image(upstream.FIXTURES / "images" / "wide.png")
    sequences, _ = option_sequences(processor, turns, expected["options"], question["label_format"])
    assert sequences == [upstream.expand(ids, processor.special.image) for ids in expected["input_ids"]]
    scores = rank_options(model, processor, image, turns, expected["options"], question["label_format"])
    assert [s.upstream_score for s in scores] == pytest.approx([-loss for loss in expected["losses"]], abs=1e-4)

    padded = Processor(processor.tokenizer, replace(processor.config, scored_vocab=None))
    unmasked = rank_options(model, padded, image, turns, expected["options"], question["label_format"])
    assert all(abs(s.upstream_score + loss) > 1e-3 for s, loss in zip(unmasked, expected["losses"], strict=True))
