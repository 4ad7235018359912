"""Does a model read the grounding question? A teacher-forced probe, far more sensitive than Acc@0.5.

For every question of a grounding file whose image is asked about two or more different boxes, it scores two
answers under the same question: the asked object's ``<ref>expression</ref><box>[[...]]</box>.`` and the same
with the box of another object of the image (the next one asked about). It reports the mean negative
log-likelihood (nats per token) of the box digits, and of the leading digit of each coordinate (the coarse place),
for both. ``gap`` = other - asked: zero for a model that ignores the expression (it points at one object whatever
is asked), positive once names are bound to places. It moves long before greedy answers hit IoU > 0.5. The box's
first digit is where the model picks its object (both answers share all before it; later digits can follow the
ones written, the other object's included): ``first_digit`` gives, over the pairs whose first digits differ
(``differ``), that digit's gap alone and how often the asked object's is the likelier (``asked_likelier``, 0.5 by
chance).

    python scripts/grounding_probe.py --model runs/x/checkpoint-1000 \
        --questions heldout/eval/grounding/grounding_eval.jsonl --image-root heldout [--limit 200]

Prints one JSON object. Questions must use upstream's grounding prompt (synthetic and RefCOCO files do).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from allseeing.data.dataset import collate
from allseeing.data.image import load_image
from allseeing.data.synth.language import GROUNDING_PROMPT
from allseeing.data.tokenize import IGNORE_INDEX
from allseeing.model.build import load
from allseeing.rec.boxes import encode
from allseeing.rec.write import object_mention

PREFIX = GROUNDING_PROMPT.format("")


def pairs(questions: list[dict]) -> list[tuple[dict, dict]]:
    """(asked, other) per question whose image has another asked-about box; other = the next such question."""
    by_image: dict[str, list[dict]] = {}
    for question in questions:
        by_image.setdefault(question["image"], []).append(question)
    result = []
    for items in by_image.values():
        for index, asked in enumerate(items):
            others = [q for q in items[index + 1 :] + items[:index] if q["bbox"] != asked["bbox"]]
            if others:
                result.append((asked, others[0]))
    return result


def answer(expression: str, question: dict) -> str:
    """The trained grounding answer (data/synth/tasks.py) for ``question``'s ground-truth box."""
    box = encode(tuple(question["bbox"]), (question["width"], question["height"]))
    return object_mention(expression, [box]) + "."


def box_nll(model, processor, image_root: Path, rows: list[tuple[dict, str]]) -> list[tuple[float, float, float, int]]:
    """(mean NLL of the box digits, of the leading digits, the first digit's NLL, the first digit) of each (question,
    answer) row."""
    images = {name: load_image(image_root / name) for name in {question["image"] for question, _ in rows}}
    samples = []
    for question, text in rows:
        encoded = processor.encode([("<image>\n" + question["text"], text)])
        samples.append({"input_ids": encoded.input_ids, "labels": encoded.labels, "image": images[question["image"]]})
    batch = collate(samples, processor.pad_id, processor.pixel_values)
    labels = batch.pop("labels")
    with torch.no_grad():
        logits = model(**batch).logits[:, :-1].float()
    targets = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0), reduction="none")
    result = []
    for row in range(len(rows)):
        positions = (targets[row] != IGNORE_INDEX).nonzero().flatten().tolist()
        digits = [p for p in positions if processor.tokenizer.convert_ids_to_tokens(int(targets[row, p])).isdigit()]
        leading = [p for p in digits if p - 1 not in digits]
        first = digits[0]
        means = nll[row, digits].mean().item(), nll[row, leading].mean().item()
        result.append((*means, nll[row, first].item(), int(targets[row, first])))
    return result


def probe(model_dir: str, questions_path: Path, image_root: Path, limit: int | None, batch_size: int) -> dict:
    model, processor = load(model_dir)
    model.eval()
    questions = [json.loads(line) for line in questions_path.read_text(encoding="utf-8").splitlines() if line]
    for number, question in enumerate(questions, 1):
        if not question["text"].startswith(PREFIX):
            raise ValueError(f"{questions_path}: line {number} does not use the grounding prompt {PREFIX!r}")
    chosen = pairs(questions)[:limit]
    rows = [
        (asked, answer(asked["text"][len(PREFIX) :], target)) for asked, other in chosen for target in (asked, other)
    ]
    scores = []
    for start in range(0, len(rows), batch_size):
        scores += box_nll(model, processor, image_root, rows[start : start + batch_size])
    asked, other = scores[0::2], scores[1::2]

    def summary(column: int) -> dict:
        right = sum(s[column] for s in asked) / len(asked)
        wrong = sum(s[column] for s in other) / len(other)
        return {"asked": round(right, 4), "other": round(wrong, 4), "gap": round(wrong - right, 4)}

    # both answers share everything before the box's first digit, so that digit is the model's choice between the two
    # objects: where their first digits differ, how often the asked one's is the likelier (0.5 by chance)
    # (pairs whose first digits are the same token score the same, so the first digit's gap is over the others)
    differ = [(a[2], o[2]) for a, o in zip(asked, other, strict=True) if a[3] != o[3]]
    first = {"differ": len(differ), "asked_likelier": None}
    if differ:
        right, wrong = (sum(column) / len(differ) for column in zip(*differ, strict=True))
        first |= {"asked": round(right, 4), "other": round(wrong, 4), "gap": round(wrong - right, 4)}
        first["asked_likelier"] = round(sum(a < o for a, o in differ) / len(differ), 3)
    return {
        "model": model_dir,
        "questions": len(chosen),
        "box_digits": summary(0),
        "leading_digits": summary(1),
        "first_digit": first,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--questions", type=Path, required=True, help="grounding_eval.jsonl")
    parser.add_argument("--image-root", type=Path, required=True)
    parser.add_argument("--limit", type=int, help="probe only the first N questions that have another box")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    result = probe(args.model, args.questions, args.image_root, args.limit, args.batch_size)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
