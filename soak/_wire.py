"""Raw HTTP/1.1 over a socket: what the fuzzer needs and httpx will not send (invalid UTF-8 in
the request line and headers, odd methods, header and URL lengths past normal limits)."""

from __future__ import annotations

import contextlib
import http.client
import socket
from dataclasses import dataclass

__all__ = ["Answer", "exchange"]


@dataclass(frozen=True)
class Answer:
    """What came back: a parsed response, or how the connection ended without one."""

    status: int | None
    headers: dict[str, str]
    body: bytes
    dropped: str | None = None  # "closed", "reset", "timeout", "incomplete"


def exchange(host: str, port: int, raw: bytes, timeout: float = 10.0) -> Answer:
    """Sends `raw` on a new connection and reads one response (the request says Connection: close)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return Answer(None, {}, b"", f"refused: {exc.__class__.__name__}")
    try:
        # The server may answer and close before reading everything: read what it said.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        method = raw.split(b" ", 1)[0].decode("latin-1")  # a HEAD answer has no body to read
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
            body = response.read()
        except http.client.IncompleteRead:
            return Answer(response.status, dict(response.getheaders()), b"", "incomplete")
        except (http.client.RemoteDisconnected, http.client.BadStatusLine):
            return Answer(None, {}, b"", "closed")
        except ConnectionResetError:
            return Answer(None, {}, b"", "reset")
        except TimeoutError:
            return Answer(None, {}, b"", "timeout")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        sock.close()
