"""``allseeing rec parse | draw | convert-box | flip``: the ReC format from the shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import ImageOps

from allseeing.cli.common import UserError, add_frame_option, common_options, print_json, read_text
from allseeing.data.image import load_image
from allseeing.rec import boxes as box_frames
from allseeing.rec.document import to_json
from allseeing.rec.draw import write_overlays
from allseeing.rec.flip import flip_text
from allseeing.rec.graph import SceneGraph
from allseeing.rec.parse import MODES, ReCParseError, parse


def register(verbs: argparse._SubParsersAction) -> None:
    common = common_options()
    rec = verbs.add_parser("rec", help="parse, draw, convert and flip ReC text", description=__doc__)
    commands = rec.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "parse",
        parents=[common],
        help="parse ReC text into objects, relations and triplets (JSON)",
        description="Read ReC text from FILE or stdin and print one JSON object: caption, objects, relations, "
        "triplets, errors. strict exits 1 at the first problem; lenient reports problems in 'errors'; compat "
        "reproduces upstream eval_psg.py extraction.",
    )
    p.add_argument("--mode", choices=MODES, default="lenient", help="default: lenient")
    add_frame_option(p)
    p.add_argument("--size", nargs=2, type=_side, metavar=("W", "H"), help="original image size: adds pixel boxes")
    p.add_argument("file", nargs="?", metavar="FILE", help="ReC text file (default: stdin)")
    p.set_defaults(run=run_parse)

    p = commands.add_parser(
        "draw",
        parents=[common],
        help="draw objects and relations over the original image",
        description="Parse ReC text (lenient) and write objects.png plus one picture per relation into --out.",
    )
    p.add_argument("--image", required=True, help="the original (unpadded) image")
    add_frame_option(p)
    p.add_argument("--out", default="rec_overlays", help="output folder (default: %(default)s)")
    p.add_argument("file", nargs="?", metavar="FILE", help="ReC text file (default: stdin)")
    p.set_defaults(run=run_draw)

    p = commands.add_parser(
        "convert-box",
        parents=[common],
        help="convert one box between frames",
        description="Convert the box x1 y1 x2 y2 from one frame to another for an image of size W x H.",
    )
    add_frame_option(p, "--from", "source")
    add_frame_option(p, "--to", "target")
    p.add_argument("--size", nargs=2, type=_side, required=True, metavar=("W", "H"))
    p.add_argument("box", nargs=4, type=_number, metavar="X", help="x1 y1 x2 y2")
    p.set_defaults(run=run_convert_box)

    p = commands.add_parser(
        "flip",
        parents=[common],
        help="mirror ReC text (boxes and left/right words) for a flipped image",
        description="Print ReC text for the horizontally mirrored image: every box flipped in the original "
        "frame and re-encoded, left/right words swapped. Give the image size, or the image itself.",
    )
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--size", nargs=2, type=_side, metavar=("W", "H"))
    size.add_argument("--image", help="the original image (its size is used)")
    p.add_argument("--image-out", help="also write the mirrored image here (needs --image)")
    add_frame_option(p)
    p.add_argument("file", nargs="?", metavar="FILE", help="ReC text file (default: stdin)")
    p.set_defaults(run=run_flip)


def _side(text: str) -> int:
    """An image side: a whole number of pixels, at least 1 (a zero size has no pixel boxes)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"an image side is a whole number of pixels, at least 1, not {text!r}")
    return value


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def run_parse(args: argparse.Namespace) -> int:
    text, source = read_text(args.file)
    try:
        document = parse(text, mode=args.mode, frame=args.frame)
    except ReCParseError as error:
        print(f"{source}: {error}", file=sys.stderr)
        return 1
    print_json(to_json(document, size=tuple(args.size) if args.size else None, frame=args.frame))
    return 0


def run_draw(args: argparse.Namespace) -> int:
    image = load_image(args.image)
    text, _ = read_text(args.file)
    document = parse(text, mode="lenient", frame=args.frame)
    graph = SceneGraph.from_document(document)
    files = write_overlays(image, graph, args.out, frame=args.frame)
    print_json(
        {
            "files": [str(path) for path in files],
            "scene_graph": graph.to_json(),
            "errors": to_json(document)["errors"],
        }
    )
    return 0


def run_convert_box(args: argparse.Namespace) -> int:
    print_json(list(box_frames.convert(tuple(args.box), tuple(args.size), args.source, args.target)))
    return 0


def run_flip(args: argparse.Namespace) -> int:
    if args.image_out and not args.image:
        raise UserError("--image-out needs --image")
    image = load_image(args.image) if args.image else None
    size = image.size if image is not None else tuple(args.size)
    text, source = read_text(args.file)
    try:
        flipped = flip_text(text, size, args.frame)
    except ReCParseError as error:
        raise UserError(f"{source}: {error}") from None
    if args.image_out:
        Path(args.image_out).parent.mkdir(parents=True, exist_ok=True)
        ImageOps.mirror(image).save(args.image_out)
    sys.stdout.write(flipped)
    return 0
