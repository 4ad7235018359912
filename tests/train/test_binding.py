"""The binding loss: boxes found in the trained tokens, the patches inside a box, the head's attention recomputed."""

import json

import pytest
import torch

from allseeing.data.image import load_image
from allseeing.model.build import load, new_model
from allseeing.train.binding import (
    BindingLoss,
    box_anchors,
    cross_fitted_unexplained,
    name_anchors,
    patch_mask,
    relay_anchors,
)
from allseeing.train.binding_terms import BindingTerm, parse_terms, terms_from_keys
from allseeing.train.config import load_config
from allseeing.train.loss import loss_units
from allseeing.train.recipe import train
from tests.train.conftest import overrides

IGNORE = -100


def binding_loss(model, processor, terms: str, readout_weight: float = 0.0) -> BindingLoss:
    return BindingLoss(model, processor.tokenizer, weight=1.0, terms=parse_terms(terms), readout_weight=readout_weight)


def test_box_anchors_are_the_positions_predicting_each_trained_boxes_digits():
    strings = ["<s>", "Q: [", "5, 6, 7, 8]", " A:", " <ref>a</ref><box>[[", "12", ", ", "3", "4, 56", ", 7", "8", "]]"]
    ids = list(range(len(strings)))
    labels = [IGNORE] * 4 + ids[4:]  # the question's box is not trained: no anchors there
    # digits "12, 34, 56, 78" span tokens 5-10; the positions predicting them are 4-9
    assert box_anchors(ids, labels, strings) == [([4, 5, 6, 7, 8, 9], ((12, 34, 56, 78),))]


def test_box_anchors_read_every_box_of_a_list_and_skip_untrained_tokens():
    strings = ["[[1, 2, 3, 4], [5, 6, 7, 8]]"]
    assert box_anchors([0, 0], [IGNORE, 0], strings) == [([0], ((1, 2, 3, 4),)), ([0], ((5, 6, 7, 8),))]
    assert box_anchors([0, 0], [IGNORE, IGNORE], strings) == []


def test_name_anchors_are_each_written_names_last_token_with_all_its_boxes():
    strings = ["<s>", " <ref>", "red", " star", "</ref><box>[[", "1, 2, 3, 4], [5, 6, 7, 8]]</box>", " <pred>", "on"]
    strings += ["</pred><box>[[9, 9, 99, 99]]</box>", " <ref>x</ref><box>[[0, 0, 1, 1]]</box>"]
    ids = list(range(len(strings)))
    labels = [*ids[:-1], IGNORE]  # the last name is not trained
    assert name_anchors(ids, labels, strings) == [
        ([3], ((1, 2, 3, 4), (5, 6, 7, 8))),
        ([7], ((9, 9, 99, 99),)),
    ]


def test_relay_anchors_pair_each_named_boxs_first_digit_with_its_name():
    strings = ["<s>", " <ref>", "red", " star", "</ref><box>[[", "1", ", 2, 3, 4], [5, 6, 7, 8]]</box>"]
    strings += [" <ref>x</ref><box>[[", "0, 0, 1, 1]]</box>", " <pred>on</pred><box>[[", "9", ", 9, 99, 99]]</box>"]
    ids = list(range(len(strings)))
    labels = [*ids[:-2], IGNORE, IGNORE]  # the last box's digits are not trained
    # " star" (3) is the name, "1" (5) the first digit, predicted at 4, and the others in 6, predicted at 5; "x" shares
    # its token with "[[" (7), so the position predicting the digit is the name's own and there is nothing to relay
    assert relay_anchors(ids, labels, strings) == [([4, 5], 3)]


def test_patch_mask_takes_the_patches_whose_centres_lie_in_the_box():
    # a 4 x 4 grid on 0..999: patch centres at 124.9, 374.6, 624.4, 874.1
    assert patch_mask((0, 0, 499, 499), 4).nonzero().flatten().tolist() == [0, 1, 4, 5]
    assert patch_mask((380, 0, 999, 130), 4).nonzero().flatten().tolist() == [2, 3]
    # smaller than a patch and between centres: the patch under the box's centre
    assert patch_mask((500, 500, 560, 560), 4).nonzero().flatten().tolist() == [10]


@pytest.fixture(scope="module")
def tiny(train_data):
    records = json.loads((train_data / "train" / "grounding.json").read_text())
    corpus = [turn["value"] for record in records for turn in record["conversations"]]
    model, processor = new_model("tiny", corpus, seed=3)
    return model, processor, records


def encoded_batch(processor, records: list[dict], image_root):
    """The records' encodings, and their ids and labels padded on the right (the anchors never see the padding),
    and pixels."""
    encoded = []
    for record in records:
        values = [turn["value"] for turn in record["conversations"]]
        encoded.append(processor.encode(list(zip(values[::2], values[1::2], strict=True))))
    length = max(len(e.input_ids) for e in encoded)
    pad = processor.tokenizer.pad_token_id
    ids = torch.tensor([e.input_ids + [pad] * (length - len(e.input_ids)) for e in encoded])
    labels = torch.tensor([e.labels + [IGNORE] * (length - len(e.labels)) for e in encoded])
    pixels = processor.pixel_values([load_image(image_root / record["image"]) for record in records])
    return encoded, ids, labels, pixels


def eager_pass(model, processor, records: list[dict], image_root):
    """The records' encodings, ids, labels and forward pass with every layer's attention (eager) and hidden states."""
    encoded, ids, labels, pixels = encoded_batch(processor, records, image_root)
    model.config._attn_implementation = "eager"
    model.model.language_model.config._attn_implementation = "eager"
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=pixels, output_hidden_states=True, output_attentions=True)
    return encoded, ids, labels, out


def several_questions(train_data) -> dict:
    """A record asking about several objects of one image, one name each."""
    records = json.loads((train_data / "train" / "grounding_all.json").read_text())
    return next(record for record in records if len(record["conversations"]) > 4)


def test_the_loss_is_minus_log_of_the_heads_attention_on_the_box(tiny, train_data):
    """The recomputed head equals the layer's own attention (eager, output_attentions), row by row."""
    model, processor, records = tiny
    (encoded,), ids, labels, out = eager_pass(model, processor, records[:1], train_data)
    layers = model.config.text_config.num_hidden_layers
    binding = binding_loss(model, processor, "all@-1:1->box")
    anchors = box_anchors(encoded.input_ids, encoded.labels, binding.strings)
    assert anchors, "a grounding answer holds a box"
    image_positions = (ids[0] == model.config.image_token_id).nonzero().flatten()
    expected = []  # (the anchor's loss, whether it predicts its box's first token)
    for positions, (box,) in anchors:
        inside = image_positions[patch_mask(box, binding.grid)]
        for position in positions:
            expected.append(
                (-torch.log(out.attentions[layers - 1][0, 1, position, inside].sum()), position == positions[0])
            )
    batch = {"input_ids": ids, "labels": labels}
    with torch.no_grad():
        total = binding.summed(batch, out.hidden_states, "token")
        mean = binding.summed(batch, out.hidden_states, "sample")
        first = binding_loss(model, processor, "first@-1:1->box")
        first_total = first.summed(batch, out.hidden_states, "token")
    assert len(expected) > len(anchors)
    assert float(total) == pytest.approx(float(sum(loss for loss, _ in expected)), rel=1e-5)
    assert float(mean) == pytest.approx(float(sum(loss for loss, _ in expected) / len(expected)), rel=1e-5)
    assert float(first_total) == pytest.approx(float(sum(loss for loss, is_first in expected if is_first)), rel=1e-5)


def test_the_relay_is_the_digits_attention_on_their_name(tiny, train_data):
    """A relay: -log of the layer's own attention from the first (or every) digit's predictor to its name."""
    model, processor, _ = tiny
    (encoded,), ids, labels, out = eager_pass(model, processor, [several_questions(train_data)], train_data)
    relay = binding_loss(model, processor, "first@1:1->name")
    pairs = relay_anchors(encoded.input_ids, encoded.labels, relay.strings)
    assert len(pairs) > 1, "several questions, each answered with a named box"
    expected = [-torch.log(out.attentions[1][0, 1, anchors[0], name]) for anchors, name in pairs]
    every = [-torch.log(out.attentions[1][0, 1, anchor, name]) for anchors, name in pairs for anchor in anchors]
    with torch.no_grad():
        total = relay.summed({"input_ids": ids, "labels": labels}, out.hidden_states, "token")
        every_total = binding_loss(model, processor, "all@1:1->name").summed(
            {"input_ids": ids, "labels": labels}, out.hidden_states, "token"
        )
    assert float(total) == pytest.approx(float(sum(expected)), rel=1e-5)
    assert len(every) > len(expected) and float(every_total) == pytest.approx(float(sum(every)), rel=1e-5)


def test_a_batch_scores_each_row_as_it_would_alone(tiny, train_data):
    """Rows with different numbers of anchors (padded inside the batch) and a row without boxes."""
    model, processor, records = tiny
    _, ids, labels, pixels = encoded_batch(processor, [records[0], several_questions(train_data)], train_data)
    labels_none = torch.cat([labels, torch.full_like(labels[:1], IGNORE)])  # a third row trains nothing
    binding = binding_loss(model, processor, "name@0:0->box")

    def each_alone(loss: BindingLoss) -> list[torch.Tensor]:
        rows = ({"input_ids": ids[i : i + 1], "labels": labels[i : i + 1]} for i in range(2))
        return [loss.summed(row, [h[i : i + 1] for h in out.hidden_states], "sample") for i, row in enumerate(rows)]

    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=pixels, output_hidden_states=True)
        alone = each_alone(binding)
        batch = binding.summed({"input_ids": ids, "labels": labels}, out.hidden_states, "sample")
        hidden = [torch.cat([h, h[:1]]) for h in out.hidden_states]
        with_none = binding.summed({"input_ids": torch.cat([ids, ids[:1]]), "labels": labels_none}, hidden, "sample")
    assert float(batch) == pytest.approx(float(alone[0] + alone[1]), rel=1e-5)
    assert float(with_none) == pytest.approx(float(batch), rel=1e-5)

    # the same gradients, finite: padded anchors add nothing
    def gradient(rows):
        hidden = [h.detach().clone().requires_grad_() for h in out.hidden_states]
        total = sum(
            binding.summed({"input_ids": ids[r], "labels": labels[r]}, [h[r] for h in hidden], "sample") for r in rows
        )
        total.backward()
        return hidden[0].grad

    batched, separate = gradient([slice(0, 2)]), gradient([slice(0, 1), slice(1, 2)])
    assert torch.isfinite(batched).all() and batched.abs().sum() > 0
    assert torch.allclose(batched, separate, atol=1e-6)

    # two terms: the name's plus the first digit's one layer later
    both = binding_loss(model, processor, "name@0:0->box, first@1:0->box")
    first = binding_loss(model, processor, "first@1:0->box")
    with torch.no_grad():
        combined = both.summed({"input_ids": ids, "labels": labels}, out.hidden_states, "sample")
        first_alone = first.summed({"input_ids": ids, "labels": labels}, out.hidden_states, "sample")
    assert float(first_alone) > 0
    assert float(combined) == pytest.approx(float(batch + first_alone), rel=1e-5)

    # the relay pads the rows' names (one name against several): each row as alone
    relay = binding_loss(model, processor, "first@1:0->name")
    with torch.no_grad():
        relay_alone = each_alone(relay)
        relay_batch = relay.summed({"input_ids": ids, "labels": labels}, out.hidden_states, "sample")
    assert all(float(loss) > 0 for loss in relay_alone)
    assert float(relay_batch) == pytest.approx(float(sum(relay_alone)), rel=1e-5)


def test_the_readout_is_zero_for_features_holding_the_targets_and_about_one_for_noise():
    generator = torch.Generator().manual_seed(0)
    targets = torch.rand(200, 4, generator=generator)
    halves = torch.arange(200) % 2 == 0
    mixed = targets @ torch.randn(4, 16, generator=generator) + 0.3  # a linear image of the targets, offset
    assert float(cross_fitted_unexplained(mixed, targets, halves)) < 0.01
    features = torch.randn(200, 16, generator=generator).requires_grad_()
    noise = cross_fitted_unexplained(features, targets, halves)
    assert 0.9 < float(noise.detach()) < 1.5
    # one half whose rows share one box: finite, the variance being pooled over both halves
    same = targets.clone()
    same[halves] = same[halves][0]
    assert float(cross_fitted_unexplained(mixed, same, halves)) < 10
    noise.backward()  # the gradient reaches the features
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0


def test_the_readout_reads_the_heads_output_at_its_anchors(tiny, train_data):
    """readout_weight adds weight x units x the cross-fitted readout of the head's output at each anchor (its eager
    attention times its values), the rows alternating between the halves; fewer rows than two halves need add
    nothing."""
    model, processor, records = tiny
    chosen = [*records[:7], several_questions(train_data)]
    encoded, ids, labels, out = eager_pass(model, processor, chosen, train_data)
    plain = binding_loss(model, processor, "all@-1:1->box")
    read = binding_loss(model, processor, "all@-1:1->box", readout_weight=0.5)
    at = plain.terms[0].layer
    layer = model.model.language_model.layers[at]
    dim = layer.self_attn.head_dim  # the tiny model has a key-value head per head
    with torch.no_grad():
        values = layer.self_attn.v_proj(layer.input_layernorm(out.hidden_states[at]))
    values = values[..., 1 * dim : 2 * dim]
    outputs, boxes, halves = [], [], []
    for row, row_encoded in enumerate(encoded):
        anchors = box_anchors(row_encoded.input_ids, row_encoded.labels, plain.strings)
        assert anchors, "every chosen row has a trained box"
        for positions, (box,) in anchors:
            for position in positions:
                outputs.append(out.attentions[at][row, 1, position] @ values[row])
                boxes.append(torch.tensor(box, dtype=torch.float32) / 999)
                halves.append(row % 2 == 0)
    readout = cross_fitted_unexplained(torch.stack(outputs), torch.stack(boxes), torch.tensor(halves))
    batch = {"input_ids": ids, "labels": labels}
    with torch.no_grad():
        added = read.summed(batch, out.hidden_states, "token") - plain.summed(batch, out.hidden_states, "token")
        few = {"input_ids": ids[:6], "labels": labels[:6]}
        hidden = [h[:6] for h in out.hidden_states]
        added_few = read.summed(few, hidden, "token") - plain.summed(few, hidden, "token")
    assert 0 < float(readout) < 3  # an untrained head's output holds little of the boxes, and nothing blows up
    assert float(added) == pytest.approx(0.5 * loss_units(labels, "token") * float(readout), rel=1e-4)
    assert float(added_few) == 0.0  # three rows a half: too few to fit on
    # a relay's head reads a name: no readout asked of it
    relay, read_relay = (binding_loss(model, processor, "all@-1:1->name", readout_weight=w) for w in (0.0, 0.5))
    with torch.no_grad():
        relay_added = read_relay.summed(batch, out.hidden_states, "token") - relay.summed(
            batch, out.hidden_states, "token"
        )
    assert float(relay_added) == 0.0


def test_a_layer_or_head_the_model_lacks_is_refused(tiny):
    model, processor, _ = tiny
    with pytest.raises(ValueError, match="binding term all@9:0->box: layer 9 is not a layer of a 2-layer model"):
        binding_loss(model, processor, "all@9:0->box")
    with pytest.raises(ValueError, match="head 7 is not a head of a 2-head layer"):
        binding_loss(model, processor, "name@0:0->box, first@1:7->box")
    with pytest.raises(ValueError, match="at least one term"):
        BindingLoss(model, processor.tokenizer, weight=1.0, terms=[])
    with pytest.raises(ValueError, match="repeat a term of a 2-layer model"):  # -1 is layer 1
        binding_loss(model, processor, "name@-1:0->box, name@1:0->box")


def test_terms_are_parsed_and_the_shorter_keys_describe_the_same_terms():
    assert parse_terms("name@1:0->box, first@0:2->name,first@-1:3->box") == [
        BindingTerm("name", 1, 0),
        BindingTerm("first", 0, 2, "name"),
        BindingTerm("first", -1, 3, "box"),
    ]
    assert str(BindingTerm("first", 0, 2, "name")) == "first@0:2->name"
    assert terms_from_keys("all", -2, 1, "box") == [BindingTerm("all", -2, 1)]
    assert terms_from_keys("first", 2, 0, "name") == [BindingTerm("first", 2, 0, "name")]
    assert terms_from_keys("name+first", 1, 0, "name") == [
        BindingTerm("name", 1, 0),
        BindingTerm("first", 2, 0, "name"),
    ]
    assert terms_from_keys("name+first", -3, 0, "box") == [BindingTerm("name", -3, 0), BindingTerm("first", -2, 0)]
    for text, message in [
        ("name@1->box", "'name@1->box' is not ANCHOR@LAYER:HEAD->TARGET"),
        ("name@1:0->box,\n  digit@1:0->box", "binding term 'digit@1:0->box': binding anchor must be one of all, first"),
        ("name@1:0->patch", "target must be one of box, name, got 'patch'"),
        ("name@1:0->name", "the name target is a relay from a box's digits, got anchor 'name'"),
        ("name@1:0->box,name@1:0->box", "repeat a term"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_terms(text)
    with pytest.raises(ValueError, match="needs a layer after binding_layer -1"):  # none for the first digit
        terms_from_keys("name+first", -1, 0, "box")
    with pytest.raises(ValueError, match="binding_first_target name needs first or name\\+first"):
        terms_from_keys("all", 0, 0, "name")


def test_a_run_with_the_binding_loss_logs_it_and_saves_a_stock_model(train_data, tmp_path):
    out = tmp_path / "bound"
    config = load_config(
        "configs/train/small-synth.yaml",
        overrides(
            train_data,
            out,
            "max_steps=3",
            "binding_weight=0.5",
            "binding_readout_weight=1",
            "binding_terms=all@-1:0->box, first@0:1->name",
            f'data=[{{"path": "{train_data}/train/grounding.json", "image_root": "{train_data}"}}]',
            "per_device_batch=8",  # 8 rows, each with a box: the readout is fitted
        ),
    )
    train(config, progress=False)
    entries = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(entry["binding_loss"] > 0 and entry["binding_readout"] > 0 for entry in entries)
    model, _ = load(out / "final")
    assert type(model).__name__ == "LlavaForConditionalGeneration"
