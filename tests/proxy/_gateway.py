"""A small gateway-like upstream for the proxy's tests: loopback only, bounded, threaded.

It answers the testers path by `agent_number`, each number one way a real gateway may answer
(gzip, chunked, a redirect, extra headers, a body that breaks the schema, an HTML error page,
an echo of what it was sent), optionally over TLS with a certificate of a CA made here
(trustme). It keeps every request it received, so a test can see what was forwarded.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

__all__ = ["TESTER", "Gateway", "Silent", "make_ca"]

TESTER = {
    "phoneno": "+919876543210",
    "test_status": "",
    "status": "ACTIVE",
    "agent_no": "1102",
    "id": "9ded792d-e45e-436c-b313-7f68aaaaae85",
    "override_dcs_check": True,
    "carrierid": 0,
}
MAX_REQUEST_BODY = 1 << 20


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Gateway:
    """`start()` it, use `url`, `stop()` it. `context` makes it HTTPS."""

    context: ssl.SSLContext | None = None
    seen: list[Seen] = field(default_factory=list)
    connections: list[socket.socket] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "https" if self.context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Gateway:
        gateway = self

        class Handler(_Handler):
            owner = gateway

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.context is not None:
            server.socket = self.context.wrap_socket(server.socket, server_side=True)
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """As a process that exits: the listening socket and every open connection closed."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.connections.clear()


def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, mtime=0)


class _Handler(BaseHTTPRequestHandler):
    owner: Gateway
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds a connection may stay silent: the gateway never waits forever

    def setup(self) -> None:
        super().setup()
        self.owner.connections.append(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read `seen`."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_REQUEST_BODY)) if length else b""
        self.owner.seen.append(Seen(self.command, self.path, list(self.headers.items()), body))
        parts = urlsplit(self.path)
        agent = (parse_qs(parts.query).get("agent_number") or [""])[0]
        testers = json.dumps([TESTER]).encode()
        if agent == "gzip":
            self._send(200, _gzip(testers), [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        elif agent == "chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (testers[:10], testers[10:]):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif agent == "redirect":
            self._send(302, b"", [("Location", "https://example.invalid/elsewhere")])
        elif agent == "headers":
            extra = [
                ("Content-Type", "application/json"),
                ("Set-Cookie", "session=s3cr3t-cookie; Path=/; HttpOnly"),
                ("X-Request-Id", "req-123"),
                ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            ]
            self._send(200, testers, extra, server="gateway/1.0")
        elif agent == "zero":
            broken = json.dumps([{**TESTER, "carrierid": "zero"}]).encode()
            self._send(200, broken, [("Content-Type", "application/json")])
        elif agent == "html":
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self._send(502, page, [("Content-Type", "text/html")])
        elif agent == "email":
            error = {"code": "RCS904", "message": "contact ops@example.com or +14155550123", "data": {}, "error": {}}
            self._send(400, json.dumps(error).encode(), [("Content-Type", "application/json")])
        else:
            self._send(200, testers, [("Content-Type", "application/json")])

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]], server: str | None = None) -> None:
        self.send_response_only(status)
        self.send_header("Server", server or "test-gateway")
        self.send_header("Date", self.date_time_string())
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_HEAD = _answer


class Silent:
    """Accepts connections and never answers: an upstream that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def make_ca(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA (its PEM file) and a server context with a certificate it signed for 127.0.0.1
    (trustme: a test CA made in memory, no openssl command needed)."""
    authority = trustme.CA(organization_name="proxy test CA")
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return folder / "ca.pem", context
