"""The demo's web server: the page, and the small JSON API that the page calls.

Routes::

    GET  /, /app.js, /style.css  the page (three files from a fixed table: no client path is ever opened)
    GET  /api/config             {"samples": [names], "thumbnails": {name: data URL}, "modes": [...],
                                  "max_upload_bytes": N}
    POST /api/session            an uploaded image as the body, or ?sample=NAME
                                 -> {"session", "width", "height", "original_width", "original_height", "image"}
    POST /api/region             {"session", "box": [x1, y1, x2, y2] in image pixels}
                                 -> {"text": "<ref>region</ref><box>[[...]]</box>"}
    POST /api/ask                {"session", "message", "mode"} -> a stream of JSON lines: {"event": "queued",
                                 "ahead"} while the question waits for the model, {"event": "started"}, {"event":
                                 "text", "text"} while the answer is generated, then {"event": "answer", ...} or
                                 {"event": "error", ...}
    POST /api/reset              {"session"} -> {"ok": true} (the image stays, the conversation is forgotten; 409
                                 while the chat is answering)

HEAD is answered for every GET route. Errors are JSON ``{"error": message}`` with a 4xx status; the page shows the
message and stays usable.

Hardening: every request must name this server in its Host header (and in its Origin header, when a browser sends
one), so a page elsewhere cannot reach the demo through DNS rebinding or a cross-site form; a client gets
``idle_timeout`` seconds per read or write and ``request_timeout`` seconds to send its whole request; at most
``max_connections`` are served at once (the rest get 503 at once); a client that fails (a stalled upload, a closed
connection) is logged in one line, never with a traceback.
"""

from __future__ import annotations

import io
import ipaddress
import json
import math
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image, UnidentifiedImageError

from allseeing.data.image import MAX_PIXELS, to_rgb
from allseeing.serve.sessions import SessionError, SessionStore, UnknownSessionError
from allseeing.serve.views import (
    DISPLAY_SIDE,
    MODES,
    answer_view,
    bounded,
    data_url,
    instruction,
    region_reference,
    thumbnail_url,
)

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
MAX_JSON_BYTES = 64 * 1024
# An over-limit upload is read and discarded (so the browser sees the error, not a reset connection) up to this
# multiple of the limit; a larger one gets the error and a closed connection.
DRAIN_FACTOR = 16
FORMATS = "PNG, JPEG, WebP, GIF or BMP"
DECODING_AT_ONCE = 2
# The names a loopback-bound demo answers to, whatever address it is bound to.
LOOPBACK = ("localhost", "127.0.0.1", "::1")
WILDCARD = ("", "0.0.0.0", "::")
# Content-Security-Policy of the page: nothing is loaded from elsewhere, no inline script.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _bytes(size: float) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


class DemoApp:
    """What the handlers share: the sessions, the sample images, the upload limit.

    Uploads are kept at most ``max_side`` pixels on their longer side (by default the larger of ``DISPLAY_SIDE``
    and the model's input size); ``max_side=0`` keeps them whole. At most ``DECODING_AT_ONCE`` uploads are decoded
    at a time, so that many uploads at once cannot each hold a whole decoded image.
    """

    def __init__(
        self,
        store: SessionStore,
        samples: dict[str, Image.Image],
        max_upload_bytes: int,
        max_side: int | None = None,
    ) -> None:
        self.store, self.max_upload_bytes = store, max_upload_bytes
        self.max_side = max(DISPLAY_SIDE, store.processor.config.image_size) if max_side is None else max_side
        keep = self.max_side or max((max(image.size) for image in samples.values()), default=1)
        self.samples = {name: bounded(image, keep) for name, image in samples.items()}
        # Decoding is CPU-bound and briefly needs the whole image in memory: at most this many at once.
        self._decoding = threading.BoundedSemaphore(DECODING_AT_ONCE)
        self.thumbnails = {name: thumbnail_url(image) for name, image in self.samples.items()}
        self.pages = {route: (files("allseeing.serve").joinpath("static", name).read_bytes(), kind)
                      for route, (name, kind) in STATIC.items()}  # fmt: skip

    def config(self) -> dict[str, Any]:
        return {
            "samples": list(self.samples),
            "thumbnails": self.thumbnails,
            "modes": list(MODES),
            "max_upload_bytes": self.max_upload_bytes,
        }

    def new_session(self, query: dict[str, list[str]], body: bytes | None) -> dict[str, Any]:
        picture_format = "PNG"
        if "sample" in query:
            name = query["sample"][0]
            if name not in self.samples:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no sample named {name!r}")
            image = self.samples[name]
            original = image.size
        elif body:
            with self._decoding:
                image, original, picture_format = read_upload(body, self.max_side)
        else:
            raise RequestError(HTTPStatus.BAD_REQUEST, "send an image as the request body, or ?sample=NAME")
        session = self.store.create(image, picture_format)
        return {
            "session": session.id,
            "width": image.width,
            "height": image.height,
            "original_width": original[0],
            "original_height": original[1],
            "image": data_url(image, picture_format),
        }

    def region(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self.store.get(payload.get("session"))
        box = payload.get("box")
        if not (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
        ):
            raise RequestError(HTTPStatus.BAD_REQUEST, "box must be [x1, y1, x2, y2] in image pixels")
        width, height = session.image.size
        x1, x2 = sorted(box[0::2])
        y1, y2 = sorted(box[1::2])
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"The region {[round(v, 1) for v in box]} lies outside the {width} x {height} image: "
                "draw it on the picture.",
            )
        if min(x2, width) - max(x1, 0) < 1 or min(y2, height) - max(y1, 0) < 1:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                "The region is empty (under one pixel wide or high inside the image): "
                "drag across the part of the picture you mean.",
            )
        return {"text": region_reference(box, session.image.size)}

    def reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.store.reset(self.store.get(payload.get("session")))
        return {"ok": True}


def read_upload(body: bytes, max_side: int = 0) -> tuple[Image.Image, tuple[int, int], str]:
    """The uploaded image as RGB, its size as uploaded and the format of the pictures to show back (JPEG for a
    JPEG, else PNG); or a :class:`RequestError` whose message is a sentence for the page.

    With ``max_side``, the image is at most that large on its longer side: a JPEG is decoded at a reduced scale
    where it can be (1/2 to 1/8, no smaller than ``max_side``), which needs a fraction of the memory and time of
    a full decode, and any image is then scaled down to fit.
    """
    try:
        with Image.open(io.BytesIO(body)) as upload:
            width, height = upload.size
            if width * height > MAX_PIXELS:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"This image is {width} x {height} pixels; {_MEGAPIXELS}")
            if max_side and upload.format == "JPEG":
                upload.draft("RGB", (max_side, max_side))
            upload.load()
            image = to_rgb(upload)
            picture_format = "JPEG" if upload.format == "JPEG" else "PNG"
    except UnidentifiedImageError:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f"This file is not an image the demo can read. Choose a {FORMATS} image."
        ) from None
    except Image.DecompressionBombError:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"This image has too many pixels to open; {_MEGAPIXELS}") from None
    except (OSError, ValueError, SyntaxError):  # Pillow's plugins raise all three for broken files
        raise RequestError(
            HTTPStatus.BAD_REQUEST, "This image could not be decoded: it looks damaged or cut short."
        ) from None
    return (bounded(image, max_side) if max_side else image), (width, height), picture_format


_MEGAPIXELS = f"the demo takes images of up to {MAX_PIXELS // 10**6} megapixels."


class _DeadlineReader:
    """The request stream, read against a deadline: each read from the socket waits at most ``idle`` seconds and
    never past the deadline, so a client that trickles its request line, headers or body is cut off."""

    def __init__(self, raw: io.BufferedReader, connection: socket.socket, idle: float, total: float) -> None:
        self._raw, self._connection, self._idle = raw, connection, idle
        self._total, self._deadline = total, time.monotonic() + total

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the request was not sent within {self._total:g} s")
        self._connection.settimeout(min(self._idle, left))

    def readline(self, limit: int = -1) -> bytes:
        line = bytearray()
        while limit < 0 or len(line) < limit:
            self._arm()
            ready = self._raw.peek(1)  # what is buffered, or one read from the socket
            if not ready:
                break
            end = ready.find(b"\n")
            take = len(ready) if end < 0 else end + 1
            if limit >= 0:
                take = min(take, limit - len(line))
            line += self._raw.read(take)  # buffered: does not block
            if line.endswith(b"\n"):
                break
        return bytes(line)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise ValueError("the demo reads requests by length only")
        data = bytearray()
        while len(data) < size:
            self._arm()
            chunk = self._raw.read1(min(size - len(data), 1 << 16))
            if not chunk:
                break
            data += chunk
        return bytes(data)

    def close(self) -> None:
        self._raw.close()


class Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.0"  # one request per connection: a streamed answer ends when the connection closes

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout
        super().setup()
        server = self.server
        self.rfile = _DeadlineReader(self.rfile, self.connection, server.idle_timeout, server.request_timeout)

    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def _get(self, head: bool) -> None:
        if not self._guard(head):
            return
        route = urlsplit(self.path).path
        if route in self.server.app.pages:
            content, kind = self.server.app.pages[route]
            self._send(HTTPStatus.OK, content, kind, head)
        elif route == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon", head)
        elif route == "/api/config":
            self._json(HTTPStatus.OK, self.server.app.config(), head)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {route}"}, head)

    def do_POST(self) -> None:
        if not self._guard(head=False):
            return
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

    def _guard(self, head: bool) -> bool:
        """Refuse (403) a request whose Host or Origin names another server: a page elsewhere that reaches the demo
        by DNS rebinding sends its own name as Host, a cross-site request its own Origin."""
        host, origin = self.headers.get("Host"), self.headers.get("Origin")
        problem = None
        if host is not None and not self.server.addresses.host(host):
            problem = f"Host {host!r}"
        elif origin is not None and not self.server.addresses.origin(origin, host):
            problem = f"Origin {origin!r}"
        if problem is None:
            return True
        self.close_connection = True
        message = f"{problem} is not this demo's address; open {self.server.url}"
        self._json(HTTPStatus.FORBIDDEN, {"error": message}, head)
        return False

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
        self.connection.settimeout(self.server.idle_timeout)  # the request is read: writes get the idle time-out
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        try:
            answer = app.store.ask(
                session,
                question,
                on_text=lambda text: self._event("text", text=text),
                on_queued=lambda ahead: self._event("queued", ahead=ahead),
                on_started=lambda: self._event("started"),
            )
            view = answer_view(session.image, answer.document, session.picture_format)
            self._event("answer", question=question, answer=answer.text, **view)
        except OSError as error:  # the page went away (closed, reset, timed out); the turn was not added
            self.close_connection = True
            self.log_message("the client left before the answer was complete (%s)", type(error).__name__)
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
            self.close_connection = True
            if length <= DRAIN_FACTOR * limit:
                self._read(length, keep=False)
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"This file is {_bytes(length)}; the demo takes uploads of up to {_bytes(limit)}.",
            )
        body = self._read(length, keep=True)
        if len(body) < length:
            self.close_connection = True
            raise RequestError(HTTPStatus.BAD_REQUEST, "the request ended before its body was complete")
        return body

    def _read(self, length: int, keep: bool) -> bytes:
        """``length`` bytes of the body (fewer if the client closes); a stalled client is answered 408."""
        try:
            if keep:
                return self.rfile.read(length)
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)
            return b""
        except TimeoutError:  # logged as the 408 answer's line
            self.close_connection = True
            raise RequestError(
                HTTPStatus.REQUEST_TIMEOUT, f"The upload stalled; the demo waits {self.server.idle_timeout:g} s."
            ) from None

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

    def _json(self, status: HTTPStatus, value: dict[str, Any], head: bool = False) -> None:
        content = json.dumps(value, ensure_ascii=False).encode()
        self._send(status, content, "application/json; charset=utf-8", head)

    def _send(self, status: HTTPStatus, content: bytes, kind: str, head: bool = False) -> None:
        # The request is read: the answer gets the idle time-out, not what the request's deadline left.
        self.connection.settimeout(self.server.idle_timeout)
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if kind.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if not head:
            self.wfile.write(content)


class AddressCheck:
    """Which Host and Origin headers name a demo bound to ``bound_host``:``port``: a loopback name (localhost,
    127.0.0.1, [::1]) on any port (a forwarded one), or the bound host itself with the bound port; bound to every
    interface (0.0.0.0, ::), also any address written as a number and this machine's name, never another name (a
    name is what DNS rebinding needs). An Origin must also be the request's own Host: another site's page is
    refused even at an address this server answers to."""

    def __init__(self, bound_host: str, port: int) -> None:
        self.port = port
        bound = bound_host.strip("[]").lower()
        self.any_address = bound in WILDCARD
        self.names = {*LOOPBACK, socket.gethostname().lower() if self.any_address else bound}

    def host(self, value: str) -> bool:
        """Whether a Host header (``name[:port]``) names this server."""
        try:
            parts = urlsplit("//" + value.strip())
            name, port = parts.hostname, parts.port or 80
        except ValueError:
            return False
        if name is None:
            return False
        if name.rstrip(".") in LOOPBACK:
            return True  # on any port: a forwarded port (ssh -L 9000:localhost:7860) arrives as localhost:9000
        if port != self.port:
            return False
        if name.rstrip(".") in self.names:
            return True
        if not self.any_address:
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def origin(self, value: str, host: str | None) -> bool:
        """Whether an Origin header (``http://name[:port]``) is this server's page: the same name and port as the
        request's Host (a page at another address, even one this server would answer to, is another site)."""
        try:
            parts = urlsplit(value.strip())
            origin = (parts.hostname, parts.port or 80)
            target = urlsplit("//" + host.strip()) if host is not None else None
            same = target is not None and origin == (target.hostname, target.port or 80)
        except ValueError:
            return False
        return parts.scheme == "http" and not parts.path.strip("/") and same and self.host(parts.netloc)


class DemoServer(ThreadingHTTPServer):
    """The demo on ``address``; see the module's docstring for the time-outs and the Host and Origin checks."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        app: DemoApp,
        idle_timeout: float = 10.0,
        request_timeout: float = 30.0,
        max_connections: int = 64,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.app = app
        self.idle_timeout, self.request_timeout = idle_timeout, request_timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self.port = self.server_address[1]
        self.addresses = AddressCheck(address[0], self.port)

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/"

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._log(client_address, f"refused: already serving {self.max_connections} connections")
            body = json.dumps({"error": "the demo is busy; try again in a moment"}).encode()
            try:
                request.settimeout(1.0)
                request.sendall(
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Retry-After: 5\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line per failed client (a closed connection, a time-out); a traceback only for a bug."""
        error = sys.exc_info()[1]
        self._log(client_address, f"{type(error).__name__}: {error}")
        if not isinstance(error, OSError):
            traceback.print_exc(file=sys.stderr)

    @staticmethod
    def _log(client_address: Any, message: str) -> None:
        host = client_address[0] if isinstance(client_address, tuple) and client_address else client_address
        stamp = time.strftime("%d/%b/%Y %H:%M:%S")
        sys.stderr.write(f"{host} - - [{stamp}] {message}\n")
