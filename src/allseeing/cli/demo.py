"""``allseeing demo``: the web UI for grounded relation chat (serve/), on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import sys

from allseeing.cli.common import UserError, add_model_option, common_options, decoding_config, decoding_options


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "demo",
        parents=[common_options(), decoding_options()],
        help="serve the web demo (grounded chat with overlays and scene graphs)",
        description="Upload an image or pick a sample, drag on it to point at a region, ask in plain, grounded or "
        "scene-graph mode, and see the answer's objects, each relation and the scene graph. Serves on "
        "127.0.0.1 (this machine only) unless --host says otherwise.",
    )
    add_model_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=7860, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--max-upload-mb", type=float, default=8.0, help="largest accepted upload (default: %(default)s)")
    p.add_argument("--max-sessions", type=int, default=32, help="chats kept at once; the oldest is forgotten first")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from allseeing.data.synth.samples import sample_images
    from allseeing.model.build import load
    from allseeing.serve.app import DemoApp
    from allseeing.serve.server import DemoServer
    from allseeing.serve.sessions import SessionStore

    model, processor = load(args.model)
    store = SessionStore(model, processor, decoding_config(args), max_sessions=args.max_sessions)
    app = DemoApp(store, sample_images(), max_upload_bytes=int(args.max_upload_mb * 2**20))
    try:
        server = DemoServer((args.host, args.port), app)
    except OSError as error:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({error.strerror}); try --port 0") from None
    print(f"allseeing demo: serving {args.model} on {server.url} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
