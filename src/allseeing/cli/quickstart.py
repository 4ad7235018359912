"""``allseeing quickstart``: the main job on bundled defaults, offline.

Renders a sample scene of the synthetic world (or reads ``--image``), asks the bundled model for the scene graph
(grounded relations in ReC), prints the answer and the graph, and writes into ``--out``: the image, its objects
drawn over it, one picture per relation, and the scene graph as JSON, Graphviz DOT and an SVG picture. A readable
summary goes to stderr, the JSON result to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from allseeing.cli.common import add_model_option, common_options, decoding_config, decoding_options, print_json
from allseeing.data.synth.language import PSG_PROMPT

SAMPLE = "scene-1"


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "quickstart",
        parents=[common_options(), decoding_options()],
        help="ask the bundled model for a sample scene's scene graph; print it and draw it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_option(p)
    p.add_argument("--image", help=f"an image file (default: the bundled sample {SAMPLE})")
    p.add_argument("--prompt", default=PSG_PROMPT, help="the question (default: %(default)r)")
    p.add_argument("--out", default="quickstart-out", help="output folder (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from allseeing.data.image import load_image
    from allseeing.data.synth.samples import sample_images
    from allseeing.infer.chat import ChatSession
    from allseeing.model.build import load
    from allseeing.rec.document import to_json
    from allseeing.rec.draw import write_overlays
    from allseeing.rec.graph import SceneGraph

    image = load_image(args.image) if args.image else sample_images(1)[SAMPLE]
    model, processor = load(args.model)
    answer = ChatSession(model, processor, image, decoding_config(args)).ask(args.prompt)
    graph = SceneGraph.from_document(answer.document)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene = out / "image.png"
    image.save(scene)
    files = [scene, *write_overlays(image, graph, out)]
    for name, text in (
        ("scene_graph.json", json.dumps(graph.to_json(), indent=2) + "\n"),
        ("scene_graph.dot", graph.to_dot()),
        ("scene_graph.svg", graph.to_svg()),
    ):
        (out / name).write_text(text, encoding="utf-8")
        files.append(out / name)

    print(f"question: {args.prompt}\nanswer: {answer.text}\nscene graph:", file=sys.stderr)
    for relation in graph.relations:
        subject, obj = graph.objects[relation.subject], graph.objects[relation.object]
        print(f"  {subject.label} --{relation.predicate}--> {obj.label}", file=sys.stderr)
    if answer.document.errors:
        print(f"  ({len(answer.document.errors)} ReC problems in the answer; see parse.errors)", file=sys.stderr)
    print(
        f"wrote {len(files)} files to {out}/ (image, objects.png, relations, scene_graph.json/.dot/.svg)",
        file=sys.stderr,
    )
    print_json(
        {
            "image": args.image or SAMPLE,
            "model": args.model,
            "prompt": args.prompt,
            "answer": answer.text,
            "parse": to_json(answer.document, size=image.size),
            "scene_graph": graph.to_json(),
            "files": [str(path) for path in files],
        }
    )
    return 0
