"""Inference speed: batched generation and shared-prefix ranking against one-at-a-time loops, same run.

    python benchmarks/infer.py [--preset small] [--prompts 32] [--new-tokens 32] [--questions 8]
    python benchmarks/infer.py --preset asmv2-13b --device cuda --dtype bfloat16 --new-tokens 1   # on a GPU

The model is a randomly initialised preset (speed does not depend on the weights; random weights never emit
EOS, so every prompt generates exactly --new-tokens tokens) with a tokenizer trained on synthetic text. Prompts
are synthetic-world questions on synthetic images.

1. Generation, greedy: upstream's harness style (batch of one, one prompt after another) against our batched
   ``generate`` (left padding, batch 16).
2. Ranking the 12 predicates of the synthetic world for each question: one full forward per option (image
   and prompt re-encoded every time, as upstream's ranking did) against ``rank_options`` (prefix once).

Prints one JSON object with samples/s and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time

import torch

from allseeing.data.synth.generate import text_corpus
from allseeing.data.synth.relations import PREDICATES
from allseeing.data.synth.scenes import sample_scene
from allseeing.data.synth.tasks import TASKS
from allseeing.data.synth.world import render
from allseeing.infer.generate import DecodingConfig, Request, generate
from allseeing.infer.rank import full_recompute_scores, rank_options
from allseeing.model.build import new_model


def synthetic_requests(count: int) -> list[Request]:
    requests = []
    index = 0
    while len(requests) < count:
        scene = sample_scene(random.Random(f"bench/{index}"), f"b{index}")
        index += 1
        if scene is None:
            continue
        task = list(TASKS)[index % len(TASKS)]
        turns = TASKS[task](scene, random.Random(index))
        if turns:
            requests.append(
                Request(
                    render(scene),
                    ((turns[0][0] if turns[0][0].startswith("<image>") else f"<image>\n{turns[0][0]}", None),),
                )
            )
    return requests


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    args = parser.parse_args()
    torch.set_flush_denormal(True)

    # Build the random model directly on the device, in the dtype (13B would not fit fp32 CPU memory comfortably).
    torch.set_default_dtype(getattr(torch, args.dtype))
    with torch.device(args.device):
        model, processor = new_model(args.preset, list(text_corpus(200)), seed=0)
    torch.set_default_dtype(torch.float32)
    requests = synthetic_requests(args.prompts)
    one = DecodingConfig(max_new_tokens=args.new_tokens, batch_size=1)
    many = DecodingConfig(max_new_tokens=args.new_tokens, batch_size=args.batch_size)
    generate(model, processor, requests[:2], one)  # warm-up
    loop = timed(lambda: [generate(model, processor, [r], one) for r in requests])
    batched = timed(lambda: generate(model, processor, requests, many))

    options = list(PREDICATES)
    questions = synthetic_requests(args.questions)
    full = timed(lambda: [full_recompute_scores(model, processor, q.image, q.turns, options) for q in questions])
    shared = timed(lambda: [rank_options(model, processor, q.image, q.turns, options) for q in questions])
    samples = args.questions * len(options)
    report = {
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "preset": args.preset,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "dtype": args.dtype,
        "parameters": sum(p.numel() for p in model.parameters()),
        "generation": {
            "prompts": args.prompts,
            "new_tokens": args.new_tokens,
            "one_at_a_time_prompts_per_s": round(args.prompts / loop, 2),
            f"batched_{args.batch_size}_prompts_per_s": round(args.prompts / batched, 2),
            "ratio": round(loop / batched, 2),
        },
        "ranking": {
            "questions": args.questions,
            "options_per_question": len(options),
            "full_recompute_options_per_s": round(samples / full, 1),
            "shared_prefix_options_per_s": round(samples / shared, 1),
            "ratio": round(full / shared, 2),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
