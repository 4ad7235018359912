"""A demo server on a free local port, serving a given model, stopped after the test."""

import json
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager

from allseeing.data.synth.samples import sample_images
from allseeing.infer.generate import DecodingConfig
from allseeing.serve.app import DemoApp
from allseeing.serve.server import DemoServer
from allseeing.serve.sessions import SessionStore


@contextmanager
def running_demo(model, processor, max_new_tokens=12, max_upload_bytes=2**20, samples=2, host="127.0.0.1", **options):
    """``options`` go to DemoServer (time-outs, connection limit)."""
    store = SessionStore(model, processor, DecodingConfig(max_new_tokens=max_new_tokens))
    server = DemoServer((host, 0), DemoApp(store, sample_images(samples), max_upload_bytes), **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def request(server, path, body=None, json_body=None, method=None, headers=None):
    """(status, raw response bytes) of a GET (no body) or POST."""
    data = json.dumps(json_body).encode() if json_body is not None else body
    method = method or ("GET" if data is None and not path.startswith("/api/session") else "POST")
    req = urllib.request.Request(server.url.rstrip("/") + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def events(raw: bytes) -> list[dict]:
    return [json.loads(line) for line in raw.decode().splitlines()]
