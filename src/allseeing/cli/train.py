"""``allseeing train CONFIG [key=value ...]``: train a model, directly or under torchrun."""

from __future__ import annotations

import argparse
import os
import sys

from allseeing.cli.common import common_options, print_json


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "train",
        parents=[common_options()],
        help="train a model from a config (configs/train/*.yaml), with key=value overrides",
        description="Train with one of the presets in configs/train/ (the four ASMv2 stages, small-synth; a preset "
        "with 'stage: vision' such as small-vision trains a vision tower alone on the synthetic world's dense truth), "
        "overriding any key with key=value (types are checked, unknown keys are refused). Under torchrun the global "
        "batch is kept and gradient accumulation derived. resume=true continues from the last checkpoint in "
        "output_dir.",
    )
    p.add_argument("config", help="a YAML preset")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from allseeing.train.config import VisionConfig, load_stage_config

    config = load_stage_config(args.config, args.overrides)
    if isinstance(config, VisionConfig):
        from allseeing.train.vision import train_vision as train
    else:
        from allseeing.train.recipe import train
    summary = train(config, progress=sys.stderr.isatty())
    # stdout is one JSON document: under torchrun, whose processes share it, rank 0 speaks for them all.
    if int(os.environ.get("RANK", "0")) == 0:
        print_json(summary)
    return 0
