"""The demo's web server: the page, and the small JSON API that the page calls (the work behind each route is
``serve/app.py``'s).

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

import json
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from allseeing.serve.app import DemoApp, RequestError
from allseeing.serve.guards import AddressCheck, DeadlineReader
from allseeing.serve.sessions import SessionError, UnknownSessionError
from allseeing.serve.views import answer_view, instruction

MAX_JSON_BYTES = 64 * 1024
# An over-limit upload is read and discarded (so the browser sees the error, not a reset connection) up to this
# multiple of the limit; a larger one gets the error and a closed connection.
DRAIN_FACTOR = 16
# Content-Security-Policy of the page: nothing is loaded from elsewhere, no inline script.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _bytes(size: float) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


class Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.0"  # one request per connection: a streamed answer ends when the connection closes

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout
        super().setup()
        server = self.server
        self.rfile = DeadlineReader(self.rfile, self.connection, server.idle_timeout, server.request_timeout)

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
