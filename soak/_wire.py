"""Raw HTTP/1.1 over a socket: what the fuzzer needs and httpx will not send (invalid UTF-8 in
the request line and headers, odd methods, header and URL lengths past normal limits, chunked
bodies of any size, bodies that stop half way)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from dataclasses import dataclass

__all__ = ["Answer", "chunked", "envelope_problem", "exchange", "read_answer", "request"]


@dataclass(frozen=True)
class Answer:
    """What came back: a parsed response, or how the connection ended without one."""

    status: int | None
    headers: dict[str, str]
    body: bytes
    dropped: str | None = None  # "closed", "reset", "timeout", "incomplete"

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def envelope_problem(answer: Answer, code: str | None = None) -> str | None:
    """Why a refusal is outside Kaleyra's (assumed) error envelope, or None."""
    if not (answer.header("content-type") or "").startswith("application/json"):
        return f"a {answer.status} that is not JSON: {answer.body[:160]!r}"
    try:
        doc = json.loads(answer.body)
    except ValueError:
        return f"a {answer.status} whose body does not parse: {answer.body[:160]!r}"
    data = doc.get("data") if isinstance(doc, dict) else None
    if not (isinstance(doc, dict) and {"code", "message"} <= set(doc) and isinstance(data, dict)) or not isinstance(
        data.get("error"), dict
    ):
        return f"a {answer.status} outside the envelope: {answer.body[:160]!r}"
    if code is not None and doc["code"] != code:
        return f"code {doc['code']}, not {code}"
    return None


def request(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A request as bytes; the caller gives every header it wants, framing included."""
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def chunked(body: bytes, size: int = 65536) -> bytes:
    """`body` in the chunked transfer coding (RFC 9112 section 7.1)."""
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def read_answer(sock: socket.socket, method: str = "GET") -> Answer:
    """One response from an open connection (a HEAD answer has no body to read)."""
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
        body = response.read()
    except http.client.IncompleteRead:
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, b"", "incomplete")
    except (http.client.RemoteDisconnected, http.client.BadStatusLine):
        return Answer(None, {}, b"", "closed")
    except ConnectionResetError:
        return Answer(None, {}, b"", "reset")
    except TimeoutError:
        return Answer(None, {}, b"", "timeout")
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def exchange(host: str, port: int, raw: bytes, timeout: float = 10.0) -> Answer:
    """Sends `raw` on a new connection and reads one response (the request says Connection: close).

    The bytes go out from a thread while the answer is read, so a server that answers before it
    has read everything (a 413, say) is heard, not lost to a full socket buffer or a reset.
    """
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return Answer(None, {}, b"", f"refused: {exc.__class__.__name__}")

    def send() -> None:
        with contextlib.suppress(OSError):  # the server may answer and close before reading it all
            sock.sendall(raw)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        return read_answer(sock, raw.split(b" ", 1)[0].decode("latin-1"))
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        sender.join(timeout)
