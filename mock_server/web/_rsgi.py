"""The server's side of the one WSGI app: granian's RSGI interface, bridged to WSGI.

Why not granian's own WSGI interface: it calls the app as soon as the headers are in, and
`wsgi.input.read()` then holds one of the worker's few Python threads for as long as the
client takes to send the body, with no timeout (granian issue #728, closed "wontfix"): 40
clients that stall mid-upload froze every worker. Here the body is read asynchronously,
bounded in size (`MAX_BODY`, whatever the framing) and in time (`read_timeout`), before the
app is called; a stalled upload holds only its own connection. The API then runs on the
worker's event-loop thread: it never blocks on the network, and a `latency` fault's delay
is awaited (`DEFERRED_LATENCY`), so delayed answers hold no thread either. The control
plane, which may take long on purpose (a large state document), runs on a few threads of
its own, and so do proxied requests (which wait on an upstream): the app decides which, in
`runs_long`, so the API keeps answering meanwhile. The price: when it was decided, the mock
served 0.88 / 0.69 / 0.86 of its throughput on granian's WSGI interface at 1 / 8 / 64
connections (ARCHITECTURE.md); in the latest `make bench` a bare callable behind this bridge
serves 0.87 / 0.62 / 0.51 of the same callable on WSGI (README.md, "Benchmarks").

The environ is what granian's WSGI interface would give, plus what RFC 9112 asks of an
origin server: the authority of an absolute-form request target replaces the Host header.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from io import BytesIO
from typing import Any

from ._http import (
    BODY_PROBLEM,
    DEFERRED_LATENCY,
    MAX_BODY,
    Answer,
    WSGIApp,
    add_headers,
    call_app,
    content_length,
    has_body,
)

__all__ = [
    "LONG_REQUEST_THREADS",
    "STOP_SIGNALS",
    "RsgiBridge",
    "call_app_on_loop",
    "hold_stop_signals",
    "release_stop_signals",
]

log = logging.getLogger("mock_server")

# Methods whose body the app may read. A GET or DELETE body has no meaning here (RFC 9110
# section 9.3) and is never waited for: a client cannot stall the mock with one.
_READS_BODY = frozenset({"POST", "PUT", "PATCH"})
# Threads per worker for requests that may take long: enough for 32 proxied requests waiting
# on their upstreams at once (each holds its thread for its upstream's time), few enough that
# the GIL is not fought over by idle ones.
LONG_REQUEST_THREADS = 32
# What stops a worker, and when: see `hold_stop_signals`.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def hold_stop_signals() -> None:
    """Around each fork of a worker (`os.register_at_fork`): the worker starts with its stop
    signals blocked, and the kernel keeps one that comes early until `__rsgi_init__` lets it in.

    Else an early SIGTERM was lost, and the worker served on until granian killed it after
    `workers_kill_timeout` (5 s, the worst stop measured): until granian installs the worker's
    handlers, after the app is built, the parent's inherited one only sets a flag in the forked
    copy of granian's parent; and uvloop acts on a signal through its self-pipe, which exists
    only while the loop runs (one that comes before is noted and never handled)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def release_stop_signals() -> None:
    """The parent's side of `hold_stop_signals`, once the worker is forked."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _take_sigterm() -> None:
    """SIGTERM only: a worker leaves Ctrl-C (SIGINT to the whole group) to its parent, which
    stops it with SIGTERM. Granian counts a worker that ends before its parent asked as
    crashed: stopping on its own SIGINT first made Ctrl-C exit 1, "Unexpected exit"."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _never(environ: dict[str, Any]) -> bool:
    return False


async def call_app_on_loop(app: WSGIApp, environ: dict[str, Any], threads: Executor | None) -> Answer:
    """The app called from an event loop, as the server and the async in-process transport call it:
    on the loop's thread, unless the app says the request may take long (`Front.runs_long`: the
    control plane, a proxied request), which runs on one of `threads` (None: the loop's default
    pool); a `latency` fault's delay is awaited after the call (`DEFERRED_LATENCY`), holding no thread."""
    delays: list[float] = []
    environ[DEFERRED_LATENCY] = delays
    runs_long: Callable[[dict[str, Any]], bool] = getattr(app, "runs_long", _never)
    if runs_long(environ):
        answer = await asyncio.get_running_loop().run_in_executor(threads, call_app, app, environ)
    else:
        answer = call_app(app, environ)
    if delays:
        await asyncio.sleep(sum(delays))
    return answer


class RsgiBridge:
    """An RSGI application (granian's `__rsgi__` protocol) that serves a WSGI app."""

    def __init__(self, app: WSGIApp, *, read_timeout: float, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.read_timeout = read_timeout
        self.max_body = max_body
        self._names: dict[str, str] = {}
        # For the requests the app says may take long (`Front.runs_long`): the control plane,
        # and in proxy mode every forwarded request, which waits on its upstream.
        self._threads = ThreadPoolExecutor(LONG_REQUEST_THREADS, thread_name_prefix="mock-long")

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Granian has installed the worker's stop handlers by now; once its loop runs they can
        act, so a SIGTERM held since the fork (`hold_stop_signals`) is let through then."""
        loop.call_soon(_take_sigterm)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """The threads end with the worker; the app's store closes with the process."""
        self._threads.shutdown(wait=False)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":  # websockets are off; nothing else reaches an RSGI app
            return
        environ = self._environ(scope)
        body = b""
        if environ["REQUEST_METHOD"] in _READS_BODY and has_body(environ):
            body, problem = await self._read_body(proto, environ.get("CONTENT_LENGTH", "").strip())
            if problem is not None:
                environ[BODY_PROBLEM] = problem
            else:
                environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = BytesIO(body)
        status, headers, chunks = await call_app_on_loop(self.app, environ, self._threads)
        if isinstance(chunks, bytes):
            proto.response_bytes(status, headers, chunks)
            return
        transport = proto.response_stream(status, headers)
        for chunk in chunks:  # the connection_reset fault: part of the body, then no more
            await transport.send_bytes(chunk)

    def _environ(self, scope: Any) -> dict[str, Any]:
        server, _, port = scope.server.rpartition(":")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": scope.path.encode("utf-8").decode("latin-1"),
            "QUERY_STRING": scope.query_string.encode("utf-8").decode("latin-1"),  # WSGI: the bytes as latin-1
            "SERVER_NAME": server,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": scope.client.rpartition(":")[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.scheme,
            "wsgi.errors": _LOG_STREAM,
            "wsgi.multithread": True,  # the loop thread and the control plane's threads
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        # one item per field line; values that are not text are left out
        add_headers(environ, scope.headers.items(), self._names)
        if scope.authority is not None:  # RFC 9112 section 3.2.2: absolute-form wins over Host
            environ["HTTP_HOST"] = scope.authority
        return environ

    async def _read_body(self, proto: Any, declared: str) -> tuple[bytes, str | None]:
        """(body, None), or (b"", why the body is refused): "too_large" (declared or read past the
        limit: a declared one is refused before a byte is read, so no 100-continue invites it),
        "timeout" (not whole within the read timeout), "incomplete" (the stream ended before its
        Content-Length or its last chunk). Granian ends every body with one empty chunk, and
        turns a stream error (the client gone mid-body) into one more: two mean incomplete."""
        length = content_length(declared)
        if length is not None and length > self.max_body:
            return b"", "too_large"
        chunks: list[bytes] = []
        size = ends = 0
        try:
            async with asyncio.timeout(self.read_timeout):
                async for chunk in proto:
                    if not chunk:
                        ends += 1
                        if ends > 1:
                            return b"", "incomplete"
                        continue
                    size += len(chunk)
                    if size > self.max_body:
                        return b"", "too_large"
                    chunks.append(chunk)
        except TimeoutError:
            return b"", "timeout"
        except RuntimeError:  # granian's RSGIProtocolError / RSGIProtocolClosed: the connection ended
            return b"", "incomplete"
        if length is not None and size != length:
            return b"", "incomplete"
        return b"".join(chunks), None


class _LogStream:
    """`wsgi.errors`: what the app writes there goes to the mock's log."""

    def write(self, text: str) -> int:
        if text.strip():
            log.error("%s", text.rstrip())
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Every write is already in the log."""


_LOG_STREAM = _LogStream()
