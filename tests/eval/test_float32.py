"""``official`` box arithmetic is upstream's float32 torch arithmetic, bit for bit."""

import random

import torch

from allseeing.eval.metrics.float32 import box32, iou32, pixels32
from tests.eval.helpers import score


def upstream_pixels(box, width, height):
    """Upstream's eval_grounding.parse_box + postprocess (square pad, scale 999), as torch ops."""
    t = torch.tensor(box, dtype=torch.float32).view(-1, 4) / 999
    t[:, 0::2] *= max(width, height)
    t[:, 1::2] *= max(width, height)
    if height < width:
        t[:, 1] -= (width - height) // 2
        t[:, 3] -= (width - height) // 2
    elif width < height:
        t[:, 0] -= (height - width) // 2
        t[:, 2] -= (height - width) // 2
    return t


def torchvision_iou(a, b):
    """torchvision.ops.box_iou's formula, in torch float32."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[:, :2])
    rb = torch.min(a[:, None, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    return inter / (area_a[:, None] + area_b - inter)


def test_decoding_and_iou_match_torch_float32_bit_for_bit():
    rng = random.Random(0)
    for _ in range(3000):
        width, height = rng.randint(1, 2000), rng.randint(1, 2000)
        box = [rng.randint(-50, 1100) for _ in range(4)]
        truth = [round(rng.uniform(-10, 2000), rng.choice([0, 1, 2])) for _ in range(4)]
        expected = upstream_pixels(box, width, height)
        ours = pixels32(box, (width, height), "square999")
        assert ours == tuple(expected[0].tolist())
        want = torchvision_iou(expected, torch.tensor(truth, dtype=torch.float32).view(-1, 4)).item()
        got = iou32(ours, box32(truth))
        assert got == want or (want != want and got == 0.0)  # NaN (0 / 0) reads as 0


def test_an_iou_of_exactly_half_in_float32_is_upstreams_verdict(tmp_path):
    # In float64 this IoU is 0.5000000000000002 (a hit at > 0.5); in upstream's float32 it is 0.5 (a miss).
    question = {"question_id": "a", "image": "x.jpg", "text": "?", "bbox": [27.3, 324, 35.3, 332]}
    question |= {"width": 232, "height": 444, "category": "refcoco_val"}
    answers = {"a": "[[300, 729, 309, 747]]"}
    assert score(tmp_path, "grounding", [question], answers)["refcoco_val"] == 0.0
    assert score(tmp_path, "grounding", [question], answers, protocol="fixed")["refcoco_val"] == 100.0


def test_psg_counts_an_iou_at_half_as_upstreams_float32_does(tmp_path):
    box = [64, 190, 144, 212]
    question = {"question_id": "a", "image": "x.jpg", "text": "?", "width": 874, "height": 999}
    question["relation_tuples"] = [["person", box, "person", box, "beside"]]
    code = "<box>[[126, 190, 166, 212]]</box>"
    answer = f"<ref>person</ref>{code} is <pred>beside</pred>{code}{code}."
    assert score(tmp_path, "psg", [question], {"a": answer})["recall"] == 100.0  # upstream prints 100.00
