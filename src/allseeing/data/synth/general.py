"""Small versions of the twelve general benchmarks, built from the synthetic world's test scenes in each
benchmark's own file format, so that ``allseeing eval run --suite configs/eval/general.yaml`` runs offline.

Every question carries its true answer (the field each task reads when no annotation file is given), so scoring
needs nothing else. Layout under ``OUT/eval/general/`` (image paths relative to ``OUT``, as every synthetic file)::

    vqav2/llava_vqav2_synth.jsonl       counting and colour questions, ten identical human ``answers``
    gqa/llava_gqa_synth.jsonl           existence and colour questions, ``answer``
    vizwiz/llava_vizwiz_synth.jsonl     counting and unanswerable questions, ``answers``
    textvqa/llava_textvqa_synth.jsonl   the word written on a copy of the image (images/textvqa/), ``answers``
    pope/llava_pope_synth.jsonl         yes/no existence, random/popular/adversarial absent objects, ``label``
    mme/llava_mme_synth.jsonl           a yes and a no question per image for existence/count/color/position
    mmbench/mmbench_synth.tsv           colour questions, four circular copies each, base64 images inline
    mmbench_cn/mmbench_cn_synth.tsv     the same in Chinese
    seed/llava_seed_synth.jsonl         counting and colour multiple choice, ``answer`` letter
    sqa/llava_sqa_synth.json            ScienceQA-style context, question and options, ``answer`` index
    llava_wild/questions.jsonl          description and colour questions, ``caption`` and reference ``answer``
    mmvet/llava_mmvet_synth.jsonl       colour and counting questions, ``answer`` and ``capability``
"""

from __future__ import annotations

import base64
import csv
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from allseeing.data.synth import facts
from allseeing.data.synth import language as lang
from allseeing.data.synth.evalsets import EvalScene
from allseeing.data.templates import MMBENCH_CIRCULAR_STEP, SHORT_ANSWER

VIZWIZ_UNANSWERABLE = "When the provided information is insufficient, respond with 'Unanswerable'."
YES_NO = "Please answer yes or no."
HUMANS = 10  # VQA-style benchmarks collect ten answers per question
TEXT_WORDS = ("STOP", "OPEN", "EXIT", "SALE", "PARK", "TAXI", "CAFE", "BANK")
COLOURS_CN = {
    "red": "红色",
    "green": "绿色",
    "blue": "蓝色",
    "yellow": "黄色",
    "orange": "橙色",
    "purple": "紫色",
    "pink": "粉色",
    "cyan": "青色",
}
SHAPES_CN = {
    "circle": "圆形",
    "square": "正方形",
    "triangle": "三角形",
    "diamond": "菱形",
    "star": "星形",
    "hexagon": "六边形",
    "cross": "十字形",
}
MMBENCH_COLUMNS = ("index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "image")
GENERAL_FILES = {
    "vqav2": "vqav2/llava_vqav2_synth.jsonl",
    "gqa": "gqa/llava_gqa_synth.jsonl",
    "vizwiz": "vizwiz/llava_vizwiz_synth.jsonl",
    "textvqa": "textvqa/llava_textvqa_synth.jsonl",
    "pope": "pope/llava_pope_synth.jsonl",
    "mme": "mme/llava_mme_synth.jsonl",
    "mmbench": "mmbench/mmbench_synth.tsv",
    "mmbench_cn": "mmbench_cn/mmbench_cn_synth.tsv",
    "seed": "seed/llava_seed_synth.jsonl",
    "sqa_img": "sqa/llava_sqa_synth.json",
    "llava_wild": "llava_wild/questions.jsonl",
    "mmvet": "mmvet/llava_mmvet_synth.jsonl",
}


def true_answer(task: str, question: dict) -> str:
    """What a perfect model answers to a synthetic question of ``task``, written as a model writes it (the check
    that a file and its scorer agree: the true answers score full marks)."""
    if "answers" in question:
        return question["answers"][0]
    if task == "pope":
        return question["label"].capitalize() + "."
    if task == "sqa_img":
        return lang.LETTERS[question["answer"]]
    return question["answer"]


def short(question: str) -> str:
    return f"{question}\n{SHORT_ANSWER}"


def general_rows(test: EvalScene, rng: random.Random) -> dict[str, list[dict]]:
    """Each general benchmark's questions about one test scene."""
    scene, image, sid = test.scene, test.image, test.scene.scene_id
    colour = facts.colour(scene, rng)
    count = facts.count(scene, rng)
    rows: dict[str, list[dict]] = {name: [] for name in GENERAL_FILES}

    def vqa(name: str, fact: facts.Fact, text: str, k: int) -> None:
        answers = [fact.answer] * HUMANS
        rows[name].append({"question_id": f"{sid}-{name}-{k}", "image": image, "text": text, "answers": answers})

    vqa("vqav2", count, short(count.question), 0)
    if colour:
        vqa("vqav2", colour, short(colour.question), 1)
    for k, fact in enumerate(
        f for f in (facts.existence(scene, rng, present=rng.random() < 0.5), colour) if f is not None
    ):
        rows["gqa"].append(
            {"question_id": f"{sid}-gqa-{k}", "image": image, "text": short(fact.question), "answer": fact.answer}
        )
    unanswerable = facts.Fact(f"What is written on the {rng.choice(scene.items).shape}?", "unanswerable", "text")
    for k, fact in enumerate((count, unanswerable)):
        vqa("vizwiz", fact, f"{fact.question}\n{VIZWIZ_UNANSWERABLE}\n{SHORT_ANSWER}", k)
    word = rng.choice(TEXT_WORDS)
    rows["textvqa"].append(
        {
            "question_id": f"{sid}-textvqa-0",
            "image": textvqa_image(image),
            "text": f"What word is written in the image?\nReference OCR token: {word}\n{SHORT_ANSWER}",
            "answers": [word.lower()] * HUMANS,
            "word": word,  # what the writer draws on the copy of the image
        }
    )
    for strategy in facts.EXISTENCE_STRATEGIES:
        for present in (True, False):
            fact = facts.existence(scene, rng, present, strategy)
            rows["pope"].append(
                {
                    "question_id": f"{sid}-pope-{strategy}-{fact.answer}",
                    "image": image,
                    "text": short(fact.question),
                    "category": strategy,
                    "label": fact.answer,
                }
            )
    rows["mme"] += mme_rows(test, rng)
    choice = facts.colour_choice(scene, rng)
    if choice:
        rows["mmbench"] += mmbench_rows(test, *choice, chinese=False)
        rows["mmbench_cn"] += mmbench_rows(test, *choice, chinese=True)
    seed_facts = [(count, [str(n) for n in rng.sample([n for n in range(1, 7) if str(n) != count.answer], 3)])]
    if choice:
        seed_facts.append(choice)
    for k, (fact, distractors) in enumerate(seed_facts):
        options, letter = lang.shuffled_options(rng, fact.answer, distractors)
        rows["seed"].append(
            {
                "question_id": f"{sid}-seed-{k}",
                "image": image,
                "text": lang.options_text(fact.question, options),
                "answer": letter,
                "category": {"count": "Instances Counting", "color": "Instance Attributes"}[fact.kind],
            }
        )
    if choice:
        rows["sqa_img"].append(sqa_record(test, *choice, rng))
    rows["llava_wild"] += wild_rows(test, colour)
    for k, (fact, capability) in enumerate(((count, ["rec"]), (colour, ["rec"]))):
        if fact is not None:
            rows["mmvet"].append(
                {
                    "question_id": f"{sid}-mmvet-{k}",
                    "image": image,
                    "text": fact.question,
                    "answer": fact.answer,
                    "capability": capability,
                }
            )
    return rows


def textvqa_image(image: str) -> str:
    """Where the copy of a test image with a word written on it goes."""
    return "images/textvqa/" + Path(image).name


MME_SUBTASKS = {  # MME's subtasks the synthetic world can ask, and how
    "existence": lambda scene, rng, true: facts.existence(scene, rng, true),
    "count": facts.count_is,
    "color": facts.colour_is,
    "position": facts.left_of,
}


def mme_rows(test: EvalScene, rng: random.Random) -> list[dict]:
    """A yes and a no question about the image for each subtask the scene can ask (MME's pairs: acc+ needs both)."""
    rows = []
    for subtask, ask in MME_SUBTASKS.items():
        pair = (ask(test.scene, rng, True), ask(test.scene, rng, False))
        if None in pair:
            continue
        for fact in pair:
            rows.append(
                {
                    "question_id": f"{test.scene.scene_id}-mme-{subtask}-{fact.answer}",
                    "image": test.image,
                    "text": short(f"{fact.question} {YES_NO}"),
                    "category": subtask,
                    "answer": fact.answer.capitalize(),
                }
            )
    return rows


def mmbench_rows(test: EvalScene, fact: facts.Fact, distractors: list[str], chinese: bool) -> list[dict]:
    """A colour question as MMBench's TSV rows: its four circular copies, numbered ``rotation`` (the writer gives
    them indices that agree modulo MMBENCH_CIRCULAR_STEP, and puts the base64 image in place of the path)."""
    question = fact.question
    name = (lambda colour: COLOURS_CN[colour]) if chinese else (lambda colour: colour)
    if chinese:
        question = f"图中的{SHAPES_CN[fact.question.split()[-1].rstrip('?')]}是什么颜色？"
    rows = []
    for k, (options, letter) in enumerate(lang.rotations(fact.answer, distractors)):
        rows.append(
            {
                "rotation": k,
                "question": question,
                "hint": "",
                **{lang.LETTERS[i]: name(option) for i, option in enumerate(options)},
                "answer": letter,
                "category": "attribute_recognition",
                "l2-category": "finegrained_perception (instance-level)",
                "image": test.image,
            }
        )
    return rows


def sqa_record(test: EvalScene, fact: facts.Fact, distractors: list[str], rng: random.Random) -> dict:
    """A ScienceQA record as LLaVA's ``llava_test_CQM-A.json`` writes it (context, question, options, then the
    image marker; the gpt turn states the answer), with its ``answer`` index and ``choices``."""
    choices, letter = lang.shuffled_options(rng, fact.answer, distractors)
    options = " ".join(f"({lang.LETTERS[i]}) {choice}" for i, choice in enumerate(choices))
    context = lang.caption(test.scene)
    return {
        "id": f"{test.scene.scene_id}-sqa",
        "image": test.image,
        "conversations": [
            {"from": "human", "value": f"Context: {context}\nQuestion: {fact.question}\nOptions: {options}\n<image>"},
            {"from": "gpt", "value": f"The answer is {letter}."},
        ],
        "answer": lang.LETTERS.index(letter),
        "choices": choices,
    }


def wild_rows(test: EvalScene, colour: facts.Fact | None) -> list[dict]:
    """LLaVA-Bench's questions (a detailed description, and a conversation question when the scene has a lone
    shape), each with the image's ``caption`` and the reference ``answer`` a judge compares against."""
    caption = lang.caption(test.scene)
    asked = [("detail", "Describe this image in detail.", caption)]
    if colour:
        asked.append(("conv", colour.question, f"The {colour.question.split()[-1].rstrip('?')} is {colour.answer}."))
    return [
        {
            "question_id": f"{test.scene.scene_id}-wild-{category}",
            "image": test.image,
            "text": text,
            "category": category,
            "caption": caption,
            "answer": answer,
        }
        for category, text, answer in asked
    ]


def write_general(out: Path, rows: dict[str, list[dict]], jpeg_quality: int) -> dict[str, int]:
    """Write every general benchmark's file under ``out/eval/general`` (TextVQA's images as JPEGs of
    ``jpeg_quality``); returns the rows per file."""
    folder = out / "eval" / "general"
    counts = {}
    for name, relative in GENERAL_FILES.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        records = rows[name]
        if name == "textvqa":
            records = [_with_text_image(out, row, jpeg_quality) for row in records]
        if name in ("mmbench", "mmbench_cn"):
            _write_mmbench(out, path, records)
        elif name == "sqa_img":
            path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        else:
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        counts[f"general/{relative}"] = len(records)
    return counts


def _with_text_image(out: Path, row: dict, jpeg_quality: int) -> dict:
    """Draw the row's word on a white band under a copy of its scene, as a sign in a photo; the row without the
    word."""
    row = dict(row)
    word = row.pop("word")
    target = out / row["image"]
    source = out / "images" / "test" / target.name
    if not source.is_file():
        source = out / "abnormal_images" / target.name
    with Image.open(source) as scene:
        band = max(24, scene.height // 5)
        canvas = Image.new("RGB", (scene.width, scene.height + band), "white")
        canvas.paste(scene.convert("RGB"), (0, 0))
    font = ImageFont.load_default(size=int(band * 0.7))
    ImageDraw.Draw(canvas).text(
        (scene.width // 2, scene.height + band // 2), word, fill="black", font=font, anchor="mm"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    canvas.save(partial, format="JPEG", quality=jpeg_quality)
    partial.replace(target)
    return row


def _write_mmbench(out: Path, path: Path, rows: list[dict]) -> None:
    """MMBench's TSV: each question's circular copies get indices that agree modulo MMBENCH_CIRCULAR_STEP, every row its
    image as base64."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MMBENCH_COLUMNS, delimiter="\t")
        writer.writeheader()
        question = 0
        for row in rows:
            question += row["rotation"] == 0
            image = base64.b64encode((out / row["image"]).read_bytes()).decode("ascii")
            fields = {k: v for k, v in row.items() if k != "rotation"}
            writer.writerow({**fields, "index": question + row["rotation"] * MMBENCH_CIRCULAR_STEP, "image": image})
