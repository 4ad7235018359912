"""``allseeing data check``: validate LLaVA-format training data."""

from __future__ import annotations

import argparse
import sys

from allseeing.cli.common import common_options, print_json
from allseeing.data.check import check_manifest


def register(verbs: argparse._SubParsersAction) -> None:
    data = verbs.add_parser("data", help="check training data", description=__doc__)
    commands = data.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "check",
        parents=[common_options()],
        help="verify samples, roles, <image> markers, images and strict ReC",
        description="Check LLaVA-format manifests (JSON array or JSONL): ids and conversations present, roles "
        "alternating from a human turn to a final gpt reply, <image> exactly once in the first human turn of an "
        "image sample, the image present and decodable under --image-root, and every turn valid strict ReC "
        "(boxes in range). Prints a JSON summary; exits 1 when any sample has a problem.",
    )
    p.add_argument("manifests", nargs="+", metavar="MANIFEST")
    p.add_argument("--image-root", required=True, help="folder the samples' image paths are relative to")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    reports = {path: check_manifest(path, args.image_root, progress=sys.stderr.isatty()) for path in args.manifests}
    ok = all(report.ok for report in reports.values())
    print_json({"ok": ok, "manifests": {path: report.as_json() for path, report in reports.items()}})
    for path, report in reports.items():
        status = "ok" if report.ok else f"{report.bad_records} bad of {report.records}"
        print(f"{path}: {report.records} samples, {report.images} images: {status}", file=sys.stderr)
    return 0 if ok else 1
