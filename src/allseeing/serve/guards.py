"""The demo's defences at the connection: which Host and Origin headers name this server (against DNS rebinding
and cross-site requests), and the request stream read against a deadline (against clients that trickle)."""

from __future__ import annotations

import io
import ipaddress
import socket
import time
from urllib.parse import urlsplit

# The names a loopback-bound demo answers to, whatever address it is bound to.
LOOPBACK = ("localhost", "127.0.0.1", "::1")
WILDCARD = ("", "0.0.0.0", "::")


class DeadlineReader:
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
