"""``allseeing synth``: write a synthetic dataset (images, LLaVA training files, upstream-format eval files)."""

from __future__ import annotations

import argparse
import os
import sys

from allseeing.cli.common import common_options, print_json
from allseeing.data.synth.generate import generate


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "synth",
        parents=[common_options()],
        help="write a synthetic dataset with exact ground truth",
        description="Draw N training scenes and M test scenes (a quarter of them built around rare triplets) and "
        "write images, train/<task>.json (LLaVA format, ReC answers in square999), eval/ files in the upstream "
        "formats and stats.json into --out. The same seed gives byte-identical output.",
    )
    p.add_argument("--out", required=True, help="output folder (also the image root of every file in it)")
    p.add_argument("--n", type=int, required=True, help="number of training scenes")
    p.add_argument("--test", type=int, help="number of test scenes (default: max(20, n // 10))")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    n_test = args.test if args.test is not None else max(20, args.n // 10)
    stats = generate(args.out, args.n, n_test, seed=args.seed, workers=args.workers, progress=sys.stderr.isatty())
    print_json(stats)
    return 0
