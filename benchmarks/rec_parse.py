"""ReC parsing speed: our tokenizer parser against a naive regex baseline, measured in the same run.

    python benchmarks/rec_parse.py [--paragraphs 20000] [--repeats 3] [--seed 0]

The corpus is generated: paragraphs of 4-12 object mentions (1-3 boxes each) and 2-6 relations with free text
between them, like ASMv2's grounded detailed descriptions. The baseline is what people write first: two
``re.findall`` calls (one per mention kind) and ``json.loads`` on every box list; it returns phrase/box tuples
only: no caption, offsets, validation, pairing or triplet names. Prints one JSON object with the timings and
the ratio ours / baseline (higher = slower than the baseline).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import time

from allseeing.rec.parse import parse
from allseeing.rec.write import object_mention, relation_mention

NAIVE_OBJECT = re.compile(r"<ref>(.*?)</ref><box>(.*?)</box>")
NAIVE_RELATION = re.compile(r"<pred>(.*?)</pred><box>(.*?)</box><box>(.*?)</box>")
WORDS = [
    "the",
    "a",
    "small",
    "large",
    "red",
    "blue",
    "near",
    "left",
    "right",
    "of",
    "with",
    "on",
    "in",
    "front",
    "behind",
    "man",
    "dog",
    "car",
    "tree",
    "road",
    "sky",
]


def naive_parse(text: str) -> tuple[list, list]:
    objects = [(phrase, json.loads(boxes)) for phrase, boxes in NAIVE_OBJECT.findall(text)]
    relations = [(p, json.loads(s), json.loads(o)) for p, s, o in NAIVE_RELATION.findall(text)]
    return objects, relations


def paragraph(rng: random.Random) -> str:
    def box() -> tuple[int, int, int, int]:
        x1, x2 = sorted(rng.randint(0, 999) for _ in range(2))
        y1, y2 = sorted(rng.randint(0, 999) for _ in range(2))
        return (x1, y1, x2, y2)

    def words() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))

    objects = [(rng.choice(WORDS), [box() for _ in range(rng.randint(1, 3))]) for _ in range(rng.randint(4, 12))]
    parts = [object_mention(phrase, boxes) for phrase, boxes in objects]
    for _ in range(rng.randint(2, 6)):
        subject, obj = rng.choice(objects)[1], rng.choice(objects)[1]
        parts.append(relation_mention(rng.choice(WORDS), [rng.choice(subject)], obj))
    return " ".join(f"{words()} {part}" for part in parts) + "."


def best_time(function, corpus: list[str], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for text in corpus:
            function(text)
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    corpus = [paragraph(rng) for _ in range(args.paragraphs)]
    megabytes = sum(len(t) for t in corpus) / 1e6
    baseline = best_time(naive_parse, corpus, args.repeats)
    results = {"naive_regex": baseline}
    for mode in ("lenient", "strict", "compat"):
        results[mode] = best_time(lambda text, mode=mode: parse(text, mode=mode), corpus, args.repeats)
    report = {
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "paragraphs": len(corpus),
        "megabytes": round(megabytes, 2),
        "seconds": {name: round(value, 3) for name, value in results.items()},
        "paragraphs_per_second": {name: round(len(corpus) / value) for name, value in results.items()},
        "ratio_to_naive_regex": {name: round(value / baseline, 2) for name, value in results.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
