"""Evaluation speed: scoring large prediction files, and predict's batching against a one-at-a-time loop.

    python benchmarks/eval.py [--rows 10000] [--predict 32]

1. Scoring (no torch): 10,000 CRPE rows, 10,000 PSG answers (about 5 relations each, correct ReC) and 10,000
   grounding answers, under both protocols, in rows per second. Questions come from a synthetic test split,
   repeated with new ids; answers are the true ones written as a model would.
   The same for the short-answer general benchmarks (VQAv2, GQA, VizWiz, TextVQA, POPE, MME, MMBench, SEED,
   ScienceQA) on their synthetic versions, reading the files included.
2. ``allseeing predict`` on CRPE questions with a random ``small`` model: batch 1 (upstream's harness) against
   batch 16, in questions per second, 16 new tokens each.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from allseeing.data.synth.generate import generate
from allseeing.eval.score import score_file
from allseeing.rec.boxes import encode
from allseeing.rec.write import object_mention, relation_mention


def repeat(rows: list[dict], count: int) -> list[dict]:
    return [
        {**rows[i % len(rows)], "question_id": f"{rows[i % len(rows)]['question_id']}#{i // len(rows)}"}
        for i in range(count)
    ]


def oracle(task: str, row: dict) -> str:
    if task in ("crpe", "vcr"):
        return row["correct_option"]
    size = (row["width"], row["height"])
    if task == "grounding":
        return object_mention("it", [encode(tuple(row["bbox"]), size)])
    parts = []
    for subject, subject_box, obj, object_box, predicate in row["relation_tuples"]:
        s, o = encode(tuple(subject_box), size), encode(tuple(object_box), size)
        mentions = (object_mention(subject, [s]), relation_mention(predicate, [s], [o]), object_mention(obj, [o]))
        parts.append("The {} is {} the {}.".format(*mentions))
    return " ".join(parts)


def general_scoring(root: Path, rows: int) -> dict:
    """Seconds to score ``rows`` true answers of each short-answer general benchmark, per protocol."""
    import csv

    from allseeing.data.synth.general import GENERAL_FILES, true_answer
    from allseeing.data.templates import MMBENCH_CIRCULAR_STEP
    from allseeing.eval.registry import TASKS

    timings = {}
    for name, relative in GENERAL_FILES.items():
        if name in ("llava_wild", "mmvet", "mmbench_cn"):  # judged; CN reads as MMBench does
            continue
        source = TASKS[name].read_questions(root / "synth/eval/general" / relative)
        copies = -(-rows // len(source))
        path = root / f"general_{name}{Path(relative).suffix}"
        if name == "mmbench":
            with (root / "synth/eval/general" / relative).open(encoding="utf-8", newline="") as handle:
                table = list(csv.DictReader(handle, delimiter="\t"))
            base = max(int(r["index"]) % MMBENCH_CIRCULAR_STEP for r in table)
            copied = [{**r, "index": int(r["index"]) + k * base} for k in range(copies) for r in table][:rows]
            with path.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(table[0]), delimiter="\t")
                writer.writeheader()
                writer.writerows(copied)
            questions = TASKS[name].read_questions(path)
        else:
            # New ids, and for MME new images too: its pairs are the two questions of one image.
            questions = [
                {
                    **q,
                    "question_id": f"{q['question_id']}-r{k}",
                    **({"image": f"{q['image']}-r{k}"} if name == "mme" else {}),
                }
                for k in range(copies)
                for q in source
            ][:rows]
            if name == "sqa_img":
                path.write_text(json.dumps([{**q, "id": q["question_id"]} for q in questions]))
            else:
                write(path, questions)
        predictions = write(
            root / f"general_{name}_p.jsonl",
            [{"question_id": q["question_id"], "text": true_answer(name, q)} for q in questions],
        )
        for protocol in ("official", "fixed"):
            start = time.process_time()
            score_file(name, path, predictions, protocol)
            timings[f"{name}/{protocol}"] = {
                "rows": len(questions),
                "cpu_seconds": round(time.process_time() - start, 2),
            }
    return timings


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--predict", type=int, default=32, help="questions for the predict comparison (0: skip)")
    args = parser.parse_args()
    report: dict = {"machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "synth", 0, 200, seed=0, workers=os.cpu_count() or 1, progress=False)
        scoring = {}
        for task, relative in (
            ("crpe", "crpe/crpe_relation.jsonl"),
            ("psg", "psg/psg_eval.jsonl"),
            ("grounding", "grounding/grounding_eval.jsonl"),
        ):
            source = [json.loads(x) for x in (root / "synth/eval" / relative).read_text().splitlines()]
            rows = repeat(source, args.rows - args.rows % 4)
            questions = write(root / f"{task}_q.jsonl", rows)
            predictions = write(
                root / f"{task}_p.jsonl", [{"question_id": r["question_id"], "text": oracle(task, r)} for r in rows]
            )
            for protocol in ("official", "fixed"):
                start = time.perf_counter()
                result = score_file(task, questions, predictions, protocol)
                seconds = time.perf_counter() - start
                scoring[f"{task}/{protocol}"] = {
                    "rows": len(rows),
                    "seconds": round(seconds, 2),
                    "rows_per_second": round(len(rows) / seconds),
                }
                assert result["coverage"] == 100.0
        report["scoring"] = scoring
        report["general_scoring"] = general_scoring(root, args.rows)
        if args.predict:
            report["predict"] = predict_comparison(root, args.predict)
    print(json.dumps(report, indent=2))


def predict_comparison(root: Path, count: int) -> dict:
    import torch

    from allseeing.data.synth.generate import text_corpus
    from allseeing.eval.predict import predict
    from allseeing.model.build import new_model, save

    torch.set_flush_denormal(True)
    model, processor = new_model("small", list(text_corpus(200)), seed=0)
    save(model, processor, root / "model")
    questions = root / "synth/eval/crpe/crpe_relation.jsonl"
    result = {}
    for batch in (1, 16):
        out = root / f"predict_{batch}.jsonl"
        start = time.perf_counter()
        predict(
            "crpe",
            root / "model",
            questions,
            root / "synth",
            out,
            batch_size=batch,
            max_new_tokens=16,
            limit=count,
            progress=False,
        )
        result[f"batch_{batch}_questions_per_second"] = round(count / (time.perf_counter() - start), 2)
    result["ratio"] = round(result["batch_16_questions_per_second"] / result["batch_1_questions_per_second"], 2)
    return result


if __name__ == "__main__":
    main()
