"""A client for OpenAI-compatible chat-completions servers: ``transformers serve``, vLLM, SGLang, or an API.

Questions go out as upstream's evaluation asks them: the image inline (a base64 PNG data URL of the pixels
:func:`~allseeing.data.image.load_image` read, so the server sees exactly what the in-process path sees), the text
without its ``<image>`` marker (the server's chat template places the image), greedy decoding (temperature 0)
and a token budget; the reply is stripped of surrounding white space as upstream's ``model_vqa`` strips it.

Robust to busy and flaky servers: at most ``concurrency`` requests are in flight; 429, 5xx, connection errors,
time-outs and unreadable replies are retried with exponential backoff (``Retry-After`` honoured) up to
``max_retries`` times, each retry on the next server when several are given; other errors (400, 401, 404) fail at
once. What fails for good raises :class:`RemoteError`, one line naming the server, the question and the last
problem. The API key is read from the environment and sent only in the ``Authorization`` header; a URL that could
carry a secret (user, password, query) is refused, since the URLs are recorded with every answer.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from PIL import Image

from allseeing.rec import tags

RETRIED_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 60.0


class RemoteError(OSError):
    """A question the server could not answer after every allowed try, or a request it refused outright."""


@dataclass(frozen=True)
class Endpoint:
    """A served model: where it is (one or more servers with the same model), its name there, how to ask it."""

    base_urls: tuple[str, ...]
    served_model: str
    api_key_env: str | None = None  # the environment variable holding the API key (never the key itself)
    concurrency: int = 4
    timeout_s: float = 600.0  # seconds without a byte from the server before the request is retried
    max_retries: int = 5
    backoff_s: float = 1.0  # the first retry's wait; doubled each time (with jitter), at most MAX_BACKOFF_S

    def __post_init__(self) -> None:
        if not self.base_urls:
            raise ValueError("a served model needs at least one --base-url")
        for url in self.base_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"--base-url {url!r} is not an http(s) URL such as http://127.0.0.1:8000/v1")
            if parts.username or parts.password or parts.query or parts.fragment:
                # A secret there would be written into every answer's provenance: keys come from --api-key-env.
                raise ValueError(
                    f"--base-url {parts.scheme}://{parts.hostname}...: a URL with a user, password, query or fragment "
                    "is refused; give the API key with --api-key-env"
                )
        if not self.served_model:
            raise ValueError("a served model needs its name on the server (--served-model)")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout_s <= 0:
            raise ValueError("concurrency must be at least 1, max_retries at least 0 and the time-out positive")

    def api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ValueError(f"--api-key-env {self.api_key_env}: that environment variable is not set")
        return key


def image_data_url(image: Image.Image) -> str:
    """The image as a lossless PNG data URL: the server decodes the very pixels the in-process path reads."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_messages(turns: Iterable[tuple[str, str | None]], image: Image.Image | None) -> list[dict]:
    """(user, reply) turns as chat-completions messages; the turn whose text holds ``<image>`` carries the image
    first, its text without the marker (the model's chat template puts ``<image>\\n`` before the text)."""
    messages: list[dict] = []
    for user, reply in turns:
        if tags.IMAGE in user:
            if image is None:
                raise ValueError("a question mentions <image> but has no image")
            text = user.replace(tags.IMAGE, "").strip()
            content: str | list[dict] = [
                {"type": "image_url", "image_url": {"url": image_data_url(image)}},
                {"type": "text", "text": text},
            ]
        else:
            content = user
        messages.append({"role": "user", "content": content})
        if reply is not None:
            messages.append({"role": "assistant", "content": reply})
    return messages


@dataclass
class _Servers:
    """Spreads requests over the servers: the least busy first, and a retry on the next one."""

    urls: tuple[str, ...]
    busy: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.busy = [0] * len(self.urls)

    def take(self, avoid: int | None) -> int:
        with self.lock:
            order = sorted(range(len(self.urls)), key=lambda i: (i == avoid and len(self.urls) > 1, self.busy[i]))
            self.busy[order[0]] += 1
            return order[0]

    def give_back(self, index: int) -> None:
        with self.lock:
            self.busy[index] -= 1


class ChatClient:
    """Greedy chat completions from an :class:`Endpoint`, retried as the module describes."""

    def __init__(self, endpoint: Endpoint, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.endpoint = endpoint
        self.servers = _Servers(endpoint.base_urls)
        self.sleep = sleep
        self.requests = 0  # requests sent, retries included
        self._count = threading.Lock()
        self.headers = {"Content-Type": "application/json"}
        key = endpoint.api_key()
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def complete(self, messages: list[dict], max_tokens: int, what: str, temperature: float = 0) -> str:
        """The reply to ``messages`` (stripped); ``what`` names the question in errors. Greedy unless a
        ``temperature`` is given (MM-Vet's grader samples when it asks again for a score it could not read)."""
        body = json.dumps(
            {
                "model": self.endpoint.served_model,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "stream": False,
            }
        ).encode("utf-8")
        server, last = None, "no try"
        for attempt in range(self.endpoint.max_retries + 1):
            server = self.servers.take(avoid=server)
            url = self.endpoint.base_urls[server].rstrip("/") + "/chat/completions"
            with self._count:
                self.requests += 1
            try:
                return self._post(url, body)
            except RemoteError as refused:
                raise RemoteError(f"{refused} ({what})") from None
            except _RetryableError as retry:
                last = str(retry)
                if attempt < self.endpoint.max_retries:
                    self.sleep(retry.after if retry.after is not None else self._backoff(attempt))
            finally:
                self.servers.give_back(server)
        tries = self.endpoint.max_retries + 1
        raise RemoteError(
            f"{self.endpoint.base_urls[server or 0]}: no answer to {what} after {tries} "
            f"{'try' if tries == 1 else 'tries'} (last: {last})"
        )

    def _backoff(self, attempt: int) -> float:
        return min(MAX_BACKOFF_S, self.endpoint.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)

    def _post(self, url: str, body: bytes) -> str:
        request = urllib.request.Request(url, data=body, headers=self.headers, method="POST")
        try:
            with _OPENER.open(request, timeout=self.endpoint.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            if 300 <= error.code < 400:
                raise RemoteError(
                    f"{url}: HTTP {error.code}, redirected to {error.headers.get('Location')!r}: give that URL as "
                    "--base-url (redirects are not followed: the API key would go with them)"
                ) from None
            detail = _server_message(error)
            if error.code in RETRIED_STATUS:
                raise _RetryableError(
                    f"HTTP {error.code} {detail}", _retry_after(error.headers.get("Retry-After"))
                ) from None
            raise RemoteError(f"{url}: HTTP {error.code} {detail}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:  # refused, reset, timed out
            reason = getattr(error, "reason", error)
            raise _RetryableError(f"{type(reason).__name__}: {reason}") from None
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _RetryableError(f"an unreadable reply: {payload[:120]!r}") from None
        if isinstance(content, list):  # content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise _RetryableError(f"a reply without text: {payload[:120]!r}")
        return content.strip()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows a redirect with the request's headers, the API key included, to any host (https to http
    too): a 3xx is an error instead."""

    def redirect_request(self, *args, **kwargs) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class _RetryableError(Exception):
    def __init__(self, problem: str, after: float | None = None) -> None:
        super().__init__(problem)
        self.after = after


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (an HTTP date is not worth parsing: backoff then)."""
    try:
        return min(MAX_BACKOFF_S, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def _server_message(error: urllib.error.HTTPError) -> str:
    """The server's reason, one line, short (OpenAI-style ``{"error": {"message": ...}}`` when it sends one)."""
    try:
        raw = error.read()
    except OSError:
        raw = b""
    try:
        found = json.loads(raw)
        message = found.get("error", found)
        message = message.get("message", message) if isinstance(message, dict) else message
    except (ValueError, AttributeError):
        message = raw.decode("utf-8", "replace")
    text = " ".join(str(message or error.reason).split())
    return text[:200]


def answer_all(
    client: ChatClient, jobs: Iterable[tuple[str, Callable[[], tuple[list[dict], int]]]]
) -> Iterator[tuple[str, str]]:
    """(key, reply) for every job, as they finish, with at most ``concurrency`` requests in flight.

    A job is (key, a function building its messages and token budget), built in the worker so that only the
    images in flight are in memory. When a job fails for good (the server, or its image), no new job starts; those
    in flight finish and are yielded, then the first error is raised: nothing answered is lost.
    """
    jobs = iter(jobs)
    failure: Exception | None = None
    with ThreadPoolExecutor(client.endpoint.concurrency) as pool:

        def run(key: str, build: Callable[[], tuple[list[dict], int]]) -> tuple[str, str]:
            messages, max_tokens = build()
            return key, client.complete(messages, max_tokens, f"question {key!r}")

        def start() -> Future | None:
            job = next(jobs, None)
            return None if job is None else pool.submit(run, *job)

        pending = {f for f in (start() for _ in range(client.endpoint.concurrency)) if f is not None}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    yield future.result()
                except Exception as error:  # kept to raise once the answers in flight are yielded
                    failure = failure or error
                if failure is None and (following := start()) is not None:
                    pending.add(following)
    if failure is not None:
        raise failure
