"""``allseeing convert``: an upstream ASMv2/LLaVA checkpoint to a transformers-native model folder."""

from __future__ import annotations

import argparse

from allseeing.cli.common import common_options, print_json


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "convert",
        parents=[common_options()],
        help="convert an upstream LLaVA-layout checkpoint to a transformers-native folder",
        description="Read an upstream checkpoint folder (config.json with model_type 'llava', pytorch_model-*.bin "
        "or *.safetensors, tokenizer) and a CLIP vision folder; write safetensors, the HF Llava config, the "
        "tokenizer with <image> and a vicuna_v1 chat template, a padding processor and allseeing.json to --out.",
    )
    p.add_argument("--llava", required=True, metavar="SRC", help="upstream checkpoint folder")
    p.add_argument("--vision", required=True, metavar="CLIP_DIR", help="CLIP vision model folder (transformers)")
    p.add_argument("--out", required=True, metavar="DST", help="output folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from allseeing.model.convert import convert  # torch and transformers load only for this verb

    out = convert(args.llava, args.vision, args.out)
    print_json({"out": str(out)})
    return 0
