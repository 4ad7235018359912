"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for testing the client against busy and
broken servers without a model."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# An action answers one attempt: ("status", code[, retry_after]), ("sleep", seconds) before answering normally,
# ("garbage",) for a 200 that is not JSON, ("redirect", url) for a 302, ("ok",) for the normal answer.
Action = tuple


def question_text(body: dict) -> str:
    """The text of the last user message (its text part when the content has parts)."""
    content = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


class ScriptedServer:
    """Answers ``reply(text)`` to each question, after the actions ``script[key]`` lists for its first attempts,
    where ``key`` is the start of its text (``"*"`` scripts every question). Records every request body and its headers, the attempts per question
    and the most requests it ever had in flight at once."""

    def __init__(self, script: dict[str, list[Action]] | None = None, reply=lambda text: f"answer: {text}") -> None:
        self.script, self.reply = script or {}, reply
        self.attempts: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                server.handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, request: BaseHTTPRequestHandler, body: dict) -> None:
        text = question_text(body)
        with self.lock:
            attempt = self.attempts[text]
            self.attempts[text] += 1
            self.bodies.append(body)
            self.headers.append(dict(request.headers))
        found = [key for key in self.script if key != "*" and text.startswith(key)]
        actions = self.script[found[0]] if found else self.script.get("*", [])
        action = actions[attempt] if attempt < len(actions) else ("ok",)
        if action[0] == "status":
            payload = json.dumps({"error": {"message": f"scripted {action[1]}"}}).encode()
            request.send_response(action[1])
            if len(action) > 2:
                request.send_header("Retry-After", str(action[2]))
            self._send(request, payload)
            return
        if action[0] == "redirect":
            request.send_response(302)
            request.send_header("Location", action[1])
            self._send(request, b"")
            return
        if action[0] == "sleep":
            time.sleep(action[1])
        if action[0] == "garbage":
            request.send_response(200)
            self._send(request, b"<html>proxy error</html>")
            return
        time.sleep(0.01)  # long enough for concurrent requests to overlap
        reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": f" {self.reply(text)}\n"}}]}
        request.send_response(200)
        self._send(request, json.dumps(reply).encode())

    def _send(self, request: BaseHTTPRequestHandler, payload: bytes) -> None:
        # Out of flight before the reply goes: once it is read, the client may send the next request at once.
        with self.lock:
            self.in_flight -= 1
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a time-out test)
            request.wfile.write(payload)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """The URL of a port on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
