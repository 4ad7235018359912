"""The demo's web server: the page, and the small JSON API that the page calls.

Routes::

    GET  /, /app.js, /style.css  the page (three files from a fixed table: no client path is ever opened)
    GET  /api/config             {"samples": [names], "modes": [...], "max_upload_bytes": N}
    POST /api/session            an uploaded image as the body, or ?sample=NAME
                                 -> {"session", "width", "height", "image"}
    POST /api/region             {"session", "box": [x1, y1, x2, y2] in image pixels}
                                 -> {"text": "<ref>region</ref><box>[[...]]</box>"}
    POST /api/ask                {"session", "message", "mode"} -> a stream of JSON lines: {"event": "text", "text"}
                                 while the answer is generated, then {"event": "answer", ...} or {"event": "error", ...}
    POST /api/reset              {"session"} -> {"ok": true} (the image stays, the conversation is forgotten; 409
                                 while the chat is answering)

Errors are JSON ``{"error": message}`` with a 4xx status; the page shows the message and stays usable.
"""

from __future__ import annotations

import json
import math
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from allseeing.data.image import ImageError, image_from_bytes
from allseeing.serve.sessions import SessionError, SessionStore, UnknownSessionError
from allseeing.serve.views import MODES, answer_view, data_url, instruction, region_reference

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
MAX_JSON_BYTES = 64 * 1024
# An over-limit upload is read and discarded (so the browser sees the error, not a reset connection) up to this
# multiple of the limit; a larger one gets the error and a closed connection.
DRAIN_FACTOR = 16


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class DemoApp:
    """What the handlers share: the sessions, the sample images, the upload limit."""

    def __init__(self, store: SessionStore, samples: dict[str, Image.Image], max_upload_bytes: int) -> None:
        self.store, self.samples, self.max_upload_bytes = store, samples, max_upload_bytes
        self.pages = {route: (files("allseeing.serve").joinpath("static", name).read_bytes(), kind)
                      for route, (name, kind) in STATIC.items()}  # fmt: skip

    def config(self) -> dict[str, Any]:
        return {"samples": list(self.samples), "modes": list(MODES), "max_upload_bytes": self.max_upload_bytes}

    def new_session(self, query: dict[str, list[str]], body: bytes | None) -> dict[str, Any]:
        if "sample" in query:
            name = query["sample"][0]
            if name not in self.samples:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no sample named {name!r}")
            image = self.samples[name]
        elif body:
            try:
                image = image_from_bytes(body, "the upload")
            except ImageError as error:
                message = f"{error} (upload a PNG, JPEG, WebP, GIF or BMP image)"
                raise RequestError(HTTPStatus.BAD_REQUEST, message) from None
        else:
            raise RequestError(HTTPStatus.BAD_REQUEST, "send an image as the request body, or ?sample=NAME")
        session = self.store.create(image)
        return {"session": session.id, "width": image.width, "height": image.height, "image": data_url(image)}

    def region(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self.store.get(payload.get("session"))
        box = payload.get("box")
        if not (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
        ):
            raise RequestError(HTTPStatus.BAD_REQUEST, "box must be [x1, y1, x2, y2] in image pixels")
        if abs(box[2] - box[0]) < 1 or abs(box[3] - box[1]) < 1:
            raise RequestError(HTTPStatus.BAD_REQUEST, "the region is empty: drag to draw a box")
        return {"text": region_reference(box, session.image.size)}

    def reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.store.reset(self.store.get(payload.get("session")))
        return {"ok": True}


class Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.0"  # one request per connection: a streamed answer ends when the connection closes

    def do_GET(self) -> None:
        route = urlsplit(self.path).path
        if route in self.server.app.pages:
            content, kind = self.server.app.pages[route]
            self._send(HTTPStatus.OK, content, kind)
        elif route == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif route == "/api/config":
            self._json(HTTPStatus.OK, self.server.app.config())
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {route}"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        app = self.server.app
        try:
            if url.path == "/api/session":
                self._json(HTTPStatus.OK, app.new_session(parse_qs(url.query), self._body(app.max_upload_bytes)))
            elif url.path == "/api/region":
                self._json(HTTPStatus.OK, app.region(self._payload()))
            elif url.path == "/api/reset":
                self._json(HTTPStatus.OK, app.reset(self._payload()))
            elif url.path == "/api/ask":
                self._ask(self._payload())
            else:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no endpoint {url.path}")
        except RequestError as error:
            self._json(error.status, {"error": str(error)})
        except UnknownSessionError as error:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(error)})
        except SessionError as error:  # a chat still answering
            self._json(HTTPStatus.CONFLICT, {"error": str(error)})

    def _ask(self, payload: dict[str, Any]) -> None:
        app = self.server.app
        session = app.store.get(payload.get("session"))
        message, mode = payload.get("message"), payload.get("mode", "grounded")
        if not isinstance(message, str) or not message.strip():
            raise RequestError(HTTPStatus.BAD_REQUEST, "type a question first")
        try:
            question = instruction(message, mode)
        except ValueError as error:
            raise RequestError(HTTPStatus.BAD_REQUEST, str(error)) from None
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        try:
            answer = app.store.ask(session, question, on_text=lambda text: self._event("text", text=text))
            self._event("answer", question=question, answer=answer.text, **answer_view(session.image, answer.document))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page went away; the unfinished turn was not added to the history
        except (SessionError, ValueError) as error:  # a chat still answering; a conversation longer than the context
            self._event("error", message=str(error))
        except Exception as error:  # the server boundary: report any failure in the page and keep serving
            traceback.print_exc(file=sys.stderr)
            self._event("error", message=f"the model failed: {type(error).__name__}: {error}")

    def _event(self, event: str, **fields: Any) -> None:
        self.wfile.write(json.dumps({"event": event, **fields}, ensure_ascii=False).encode() + b"\n")
        self.wfile.flush()

    def _body(self, limit: int) -> bytes:
        length = self._content_length()
        if length > limit:
            if length <= DRAIN_FACTOR * limit:
                self._discard(length)
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the upload is {length / 2**20:.1f} MiB, over the limit of {limit / 2**20:.1f} MiB",
            )
        return self.rfile.read(length)

    def _payload(self) -> dict[str, Any]:
        body = self._body(MAX_JSON_BYTES)
        try:
            payload = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the request is not JSON: {error}") from None
        if not isinstance(payload, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the request must be a JSON object")
        return payload

    def _content_length(self) -> int:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number") from None
        if length < 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length is negative")
        return length

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                return
            length -= len(chunk)

    def _json(self, status: HTTPStatus, value: dict[str, Any]) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _send(self, status: HTTPStatus, content: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(content)


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: DemoApp) -> None:
        super().__init__(address, Handler)
        self.app = app

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"
