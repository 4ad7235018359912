"""``allseeing chat``: ask a model about an image, one-shot or interactively; answers come with their ReC parse."""

from __future__ import annotations

import argparse
import sys

from allseeing.cli.common import (
    UserError,
    add_model_option,
    common_options,
    decoding_config,
    decoding_options,
    print_json,
)
from allseeing.rec.document import to_json


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "chat",
        parents=[common_options(), decoding_options()],
        help="grounded chat about an image",
        description="With --prompt: answer once and print JSON (answer, objects, triplets). Without: read questions "
        "from stdin, one per line, and answer each in turn (a multi-turn conversation; an empty line or EOF ends "
        "it). --draw writes the overlays of the last answer.",
    )
    add_model_option(p, "model folder (written by allseeing or allseeing convert)")
    p.add_argument("--image", required=True)
    p.add_argument("--prompt", help="one question; omit for an interactive session")
    p.add_argument("--draw", metavar="OUT.png", help="write the last answer's objects over the image")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from allseeing.data.image import load_image
    from allseeing.infer.chat import ChatSession
    from allseeing.model.build import load

    image = load_image(args.image)
    model, processor = load(args.model)
    session = ChatSession(model, processor, image, decoding_config(args))
    questions = [args.prompt] if args.prompt else _stdin_questions()
    answer = None
    for question in questions:
        answer = session.ask(question)
        result = to_json(answer.document, size=image.size)
        print_json(
            {"question": question, "answer": answer.text, **{k: result[k] for k in ("objects", "triplets", "errors")}}
        )
        sys.stdout.flush()
    if answer is None:
        raise UserError("no question given (use --prompt or write questions on stdin)")
    if args.draw:
        _draw(image, answer.document, args.draw)
    return 0


def _stdin_questions():
    if sys.stdin.isatty():
        print("Ask about the image (empty line to stop).", file=sys.stderr)
    for line in sys.stdin:
        if not line.strip():
            return
        yield line.strip()


def _draw(image, document, path: str) -> None:
    from pathlib import Path

    from allseeing.rec.draw import render_objects
    from allseeing.rec.graph import SceneGraph

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    render_objects(image, SceneGraph.from_document(document)).save(out)
    print(f"wrote {out}", file=sys.stderr)
