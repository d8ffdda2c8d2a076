"""The mock in-process, for httpx: the one WSGI app, called the way the server calls it.

No socket and no second app: an httpx request becomes the environ granian's bridge would build
(headers joined and dropped by the same rules, the path's bytes as latin-1), and the app is
called by the same function (`call_app`). The async transport calls it on the event loop's own
thread, as the server does, with a `latency` fault's delay awaited: no thread hop per request
(asgiref's `WsgiToAsgi`, used before, cost about 1.4 ms a call). The connection_reset fault
raises what a socket would: `httpx.RemoteProtocolError`, after the part of the body sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from io import BytesIO
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx

from ._http import Answer, WSGIApp, add_headers, call_app
from ._rsgi import call_app_on_loop

__all__ = ["AsyncInProcessTransport", "InProcessTransport"]

_DROPPED = "connection_reset fault: connection dropped mid-response"


def _environ(request: httpx.Request, body: bytes, names: dict[str, str]) -> dict[str, Any]:
    url = request.url
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(url.raw_path.partition(b"?")[0]).decode("latin-1"),
        "QUERY_STRING": url.query.decode("latin-1"),
        "SERVER_NAME": url.host,
        "SERVER_PORT": str(url.port or {"https": 443}.get(url.scheme, 80)),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": BytesIO(body),
        "wsgi.errors": BytesIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    fields = ((name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in request.headers.raw)
    add_headers(environ, fields, names)
    return environ


def _response(request: httpx.Request, answer: Answer) -> httpx.Response:
    status, headers, body = answer
    if isinstance(body, bytes):
        # A stream, not content=: the app set Content-Length, and httpx's encoding of content
        # costs 20 µs a call (about 4% of a facade call in-process) to say it again.
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request)
    return httpx.Response(status, headers=headers, stream=_DroppedStream(request, body), request=request)


class _DroppedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """What the connection_reset fault let out, then the socket's error."""

    def __init__(self, request: httpx.Request, chunks: list[bytes]) -> None:
        self._request = request
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        raise httpx.RemoteProtocolError(_DROPPED, request=self._request)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        raise httpx.RemoteProtocolError(_DROPPED, request=self._request)


class InProcessTransport(httpx.BaseTransport):
    """For `httpx.Client`: the app runs on the calling thread (a `latency` fault sleeps it)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._names: dict[str, str] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return _response(request, call_app(self.app, _environ(request, request.read(), self._names)))


class AsyncInProcessTransport(httpx.AsyncBaseTransport):
    """For `httpx.AsyncClient`: the app runs on the event loop's thread, as on the server; the
    requests it says may take long (the control plane) on the loop's default thread pool."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._names: dict[str, str] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        environ = _environ(request, await request.aread(), self._names)
        return _response(request, await call_app_on_loop(self.app, environ, None))
