"""``allseeing quickstart``: the main job on bundled defaults, offline.

Parses the bundled example's grounded paragraph, prints its scene graph and writes the overlays, the scene
graph (JSON and Graphviz DOT) into ``--out``. A readable summary goes to stderr, the JSON result to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from allseeing.assets import EXAMPLE_IMAGE, EXAMPLE_REC
from allseeing.cli.common import common_options, open_image, print_json
from allseeing.rec.document import to_json
from allseeing.rec.draw import write_overlays
from allseeing.rec.graph import SceneGraph
from allseeing.rec.parse import parse


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "quickstart",
        parents=[common_options()],
        help="run the ReC pipeline on the bundled example scene",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="quickstart-out", help="output folder (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    image = open_image(str(EXAMPLE_IMAGE))
    document = parse(EXAMPLE_REC.read_text(encoding="utf-8"), mode="strict")
    graph = SceneGraph.from_document(document)
    files = write_overlays(image, graph, out)
    graph_json = out / "scene_graph.json"
    graph_json.write_text(json.dumps(graph.to_json(), indent=2) + "\n", encoding="utf-8")
    dot = out / "scene_graph.dot"
    dot.write_text(graph.to_dot(), encoding="utf-8")

    print(f"caption: {document.caption.strip()}", file=sys.stderr)
    print("scene graph:", file=sys.stderr)
    for subject, _, predicate, obj, _ in graph.triplets():
        print(f"  {subject} --{predicate}--> {obj}", file=sys.stderr)
    print(
        f"wrote {len(files) + 2} files to {out}/ (objects.png, one picture per relation, scene_graph.json/.dot)",
        file=sys.stderr,
    )
    print_json(
        {
            "image": str(EXAMPLE_IMAGE),
            "parse": to_json(document, size=image.size),
            "scene_graph": graph.to_json(),
            "files": [str(path) for path in [*files, graph_json, dot]],
        }
    )
    return 0
