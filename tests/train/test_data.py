"""Training data: bad records counted and left out, never substituted; plans and micro-batches; flips."""

import json

import numpy as np
import pytest
from PIL import Image

from allseeing.data.dataset import DataError, mirror, prepare
from allseeing.data.sampler import MicroBatches, epoch_plan, steps_per_epoch
from allseeing.data.templates import TEMPLATES, turns_from_llava
from allseeing.data.tokenize import SampleTooLongError, SpecialIds, encode_conversation
from allseeing.train.config import DataSource
from allseeing.train.setup import tokenizer_corpus


def encoder(max_length=400):
    """A character-level stand-in tokenizer: enough to measure lengths and apply the length policy."""

    def encode_record(record):
        return encode_conversation(
            turns_from_llava(record["conversations"]),
            TEMPLATES["vicuna_v1"],
            lambda text: [ord(c) % 250 + 4 for c in text],
            SpecialIds(1, 2, 3),
            image_tokens=4,
            max_length=max_length,
        )

    return encode_record


def sample(i, **changes):
    record = {
        "id": f"s{i}",
        "image": "a.png",
        "conversations": [
            {"from": "human", "value": "<image>\nq"},
            {"from": "gpt", "value": "<ref>x</ref><box>[[1, 2, 3, 4]]</box>"},
        ],
    }
    record.update(changes)
    return record


def write_bad_manifest(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    lines = [json.dumps(sample(i)) for i in range(6)]
    lines.append("{broken json")
    lines.append(json.dumps(sample(7, image="missing.png")))
    lines.append(
        json.dumps(
            sample(
                8,
                conversations=[
                    {"from": "human", "value": "<image>\nq"},
                    {"from": "gpt", "value": "<ref>x</ref><box>[[1, 2, 3, 1000]]</box>"},
                ],
            )
        )
    )
    lines.append(
        json.dumps(
            sample(
                9,
                conversations=[
                    {"from": "human", "value": "<image>\nq"},
                    {"from": "gpt", "value": "a very long answer " * 20},
                ],
            )
        )
    )
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_records_are_counted_by_reason_and_left_out(tmp_path):
    path = write_bad_manifest(tmp_path)
    prepared = prepare(
        [DataSource(str(path), str(tmp_path))], encoder(), tmp_path / "cache", max_bad_fraction=0.5, progress=False
    )
    assert prepared.total == 10 and len(prepared) == 6
    assert dict(prepared.bad) == {"unreadable": 1, "image": 1, "rec": 1, "too_long": 1}
    assert [prepared.read(i)["id"] for i in range(len(prepared))] == [f"s{i}" for i in range(6)]
    with pytest.raises(DataError, match=r"4 of 10 records are unusable .* more than max_bad_fraction 0.3"):
        prepare(
            [DataSource(str(path), str(tmp_path))], encoder(), tmp_path / "cache", max_bad_fraction=0.3, progress=False
        )


def test_json_arrays_are_converted_once_and_read_by_offset(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    path = tmp_path / "m.json"
    path.write_text(json.dumps([sample(i) for i in range(5)]))
    prepared = prepare(
        [DataSource(str(path), str(tmp_path))], encoder(), tmp_path / "cache", max_bad_fraction=0.0, progress=False
    )
    assert len(prepared) == 5 and prepared.read(3)["id"] == "s3"
    assert prepared.has_image.all() and (prepared.length > 4).all()


def test_a_source_at_ratio_zero_is_not_read(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    trained = tmp_path / "m.json"
    trained.write_text(json.dumps([sample(i) for i in range(3)]))
    corpus_only = tmp_path / "corpus.jsonl"
    corpus_only.write_text("not json\n" * 50)  # would be 50 unreadable records, over max_bad_fraction
    sources = [DataSource(str(trained), str(tmp_path)), DataSource(str(corpus_only), str(tmp_path), ratio=0)]
    prepared = prepare(sources, encoder(), tmp_path / "cache", max_bad_fraction=0.0, progress=False, index_key="k")
    assert len(prepared) == 3 and prepared.total == 3 and not prepared.bad
    assert (prepared.source == 0).all() and sorted(p.name for p in (tmp_path / "cache").iterdir())[0].startswith("m-")
    assert not any("corpus" in p.name for p in (tmp_path / "cache").iterdir())


def fake_prepared(lengths, has_image, ratios=(1.0,), sources=None):
    from allseeing.data.dataset import Prepared

    n = len(lengths)
    return Prepared(
        ["x"] * len(ratios),
        ["."] * len(ratios),
        list(ratios),
        np.asarray(sources or [0] * n, dtype=np.int32),
        np.arange(n, dtype=np.int64),
        np.asarray(lengths, dtype=np.int32),
        np.asarray(has_image, dtype=bool),
    )


def test_epoch_plan_groups_by_modality_and_length():
    rng = np.random.default_rng(0)
    prepared = fake_prepared(rng.integers(10, 500, 40), [i % 4 != 0 for i in range(40)])
    plan = epoch_plan(prepared, epoch=0, seed=1, global_batch=8, group_by_length=True)
    assert len(plan) == 40 and sorted(plan) == list(range(40))
    for start in range(0, 24, 8):  # the full megabatches come first: one modality each, longest first
        block = plan[start : start + 8]
        assert len(set(prepared.has_image[block])) == 1
        assert list(prepared.length[block]) == sorted(prepared.length[block], reverse=True)
    assert (plan == epoch_plan(prepared, 0, 1, 8, True)).all() and not (
        plan == epoch_plan(prepared, 1, 1, 8, True)
    ).all()


def test_ratios_repeat_and_subsample_sources():
    prepared = fake_prepared([5] * 30, [True] * 30, ratios=(2.0, 0.5), sources=[0] * 10 + [1] * 20)
    plan = epoch_plan(prepared, 0, 0, global_batch=5, group_by_length=False)
    assert steps_per_epoch(prepared, 5) == 6 and len(plan) == 30
    counts = np.bincount(prepared.source[plan], minlength=2)
    assert list(counts) == [20, 10]


def test_a_source_at_ratio_zero_is_not_trained_on_but_feeds_a_fresh_tokenizer(tmp_path):
    prepared = fake_prepared([5] * 30, [True] * 30, ratios=(1.0, 0.0), sources=[0] * 10 + [1] * 20)
    plan = epoch_plan(prepared, 0, 0, global_batch=5, group_by_length=True)
    assert steps_per_epoch(prepared, 5) == 2 and sorted(plan) == list(range(10))
    sources = []
    for name, answer, ratio in (("grounding", "<box>[[1, 2, 3, 4]]</box>", 1.0), ("relation", "(A) left of", 0.0)):
        record = sample(0)
        record["conversations"][1]["value"] = answer
        (tmp_path / f"{name}.json").write_text(json.dumps([record]))
        sources.append(DataSource(str(tmp_path / f"{name}.json"), str(tmp_path), ratio))
    assert tokenizer_corpus(sources) == ["<image>\nq", "<box>[[1, 2, 3, 4]]</box>", "<image>\nq", "(A) left of"]


def test_one_process_with_accumulation_sees_what_two_processes_see():
    prepared = fake_prepared(list(range(10, 42)), [True] * 32)
    plan = {"seed": 0, "global_batch": 8, "per_device_batch": 4, "group_by_length": True, "end_step": 4}
    one = list(MicroBatches(prepared, **plan))
    ranks = [list(MicroBatches(prepared, **plan, rank=r, world=2)) for r in (0, 1)]
    assert one[0::2] == ranks[0] and one[1::2] == ranks[1]
    resumed = list(MicroBatches(prepared, **plan, start_step=2))
    assert resumed == one[4:]


def test_mirroring_flips_boxes_words_and_the_image():
    image = Image.new("RGB", (640, 514))
    image.putpixel((0, 0), (255, 0, 0))
    record = {
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is left of the bus?"},
            {"from": "gpt", "value": "<ref>tree</ref><box>[[43, 207, 234, 613]]</box>"},
        ]
    }
    flipped, mirrored = mirror(record, image)
    assert flipped["conversations"][0]["value"] == "<image>\nWhat is right of the bus?"
    assert flipped["conversations"][1]["value"] == "<ref>tree</ref><box>[[765, 207, 956, 613]]</box>"
    assert mirrored.getpixel((639, 0)) == (255, 0, 0)


def test_too_long_is_counted_not_silently_cut():
    with pytest.raises(SampleTooLongError):
        encoder(max_length=250)(
            sample(0, conversations=[{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "x" * 100}])
        )


def test_a_source_indexed_once_is_read_back_for_the_same_key(tmp_path):
    path = write_bad_manifest(tmp_path)
    calls = []

    def counting(record):
        calls.append(record["id"])
        return encoder()(record)

    sources = [DataSource(str(path), str(tmp_path))]
    first = prepare(sources, counting, tmp_path / "cache", max_bad_fraction=0.5, progress=False, index_key="k1")
    assert len(calls) == 7 and len(list((tmp_path / "cache").glob("*.index.npz"))) == 1
    again = prepare(sources, counting, tmp_path / "cache", max_bad_fraction=0.5, progress=False, index_key="k1")
    assert len(calls) == 7  # nothing checked or tokenised again
    for name in ("source", "offset", "length", "has_image"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert (again.bad, again.total) == (first.bad, first.total)
    assert dict(again.bad) == {"unreadable": 1, "image": 1, "rec": 1, "too_long": 1}
    prepare(
        sources, counting, tmp_path / "cache", max_bad_fraction=0.5, progress=False, index_key="k2"
    )  # another tokenizer
    assert len(calls) == 14
    path.write_text(json.dumps(sample(0)) + "\n")  # the manifest changed
    changed = prepare(sources, counting, tmp_path / "cache", max_bad_fraction=0.5, progress=False, index_key="k1")
    assert (len(changed), changed.total, len(calls)) == (1, 1, 15)


def test_workers_over_byte_ranges_give_the_same_index(tmp_path, monkeypatch):
    import allseeing.data.dataset as dataset

    bad = write_bad_manifest(tmp_path)
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(sample(i)) + "\n" for i in range(40)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    sources = [DataSource(str(p), str(tmp_path)) for p in (bad, empty, good)]
    alone = prepare(sources, encoder(), tmp_path / "cache", max_bad_fraction=0.5, progress=False)
    monkeypatch.setattr(dataset, "RANGE_BYTES", 100)  # a range of about one record: every boundary is exercised
    assert len(dataset._ranges(str(good))) > 20
    spread = prepare(sources, encoder(), tmp_path / "cache", max_bad_fraction=0.5, progress=False, workers=2)
    for name in ("source", "offset", "length", "has_image"):
        assert np.array_equal(getattr(alone, name), getattr(spread, name))
    assert (spread.bad, spread.total) == (alone.bad, alone.total) and spread.total == 50
    assert [spread.read(i)["id"] for i in range(len(spread))][-40:] == [f"s{i}" for i in range(40)]


def test_megabatches_of_several_global_batches_make_each_steps_lengths_alike():
    rng = np.random.default_rng(3)
    lengths = rng.choice([150, 170, 460, 620, 1000], size=400)
    prepared = fake_prepared(lengths, [i % 10 != 0 for i in range(400)])
    upstream = epoch_plan(prepared, 0, 1, 16, True)
    assert (epoch_plan(prepared, 0, 1, 16, True, group_batches=1) == upstream).all()
    wide = epoch_plan(prepared, 0, 1, 16, True, group_batches=8)
    assert sorted(wide) == sorted(upstream) == list(range(400))  # the same records, once each

    def padded_share(plan):
        batches = plan.reshape(-1, 16)
        used = prepared.length[batches]
        return 1 - used.sum() / (used.max(axis=1) * 16).sum()

    for batch in wide.reshape(-1, 16)[:20]:  # the full batches: one modality each
        assert len(set(prepared.has_image[batch])) == 1
    assert padded_share(wide) < padded_share(upstream) / 3
