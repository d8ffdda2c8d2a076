"""Proxy mode: the API requests of a pod that has an upstream, forwarded as they came.

Why a WSGI callable of its own (beside `ApiApp`): the same app serves in-process and behind
granian, so a test that proxies through `create_app(...).test_client()` and one over sockets
meet the same code. It blocks on the network, so `Front.runs_long` sends its requests to the
bridge's threads, never the event loop.

What passes: method, path (the mock's /in or /na prefix taken off), the raw query, the body
and every end-to-end header, the api-key included; the upstream's own Host. What comes back:
the status, the headers minus hop-by-hop ones, and the body's raw bytes, still Content-Encoded,
so a client decodes exactly what the upstream sent. Redirects are passed back, never followed.
The key is never logged or stored: the journal and the cassette hold its fingerprint.
"""

from __future__ import annotations

import http.cookiejar
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import certifi
import httpx

from ..core import (
    HOP_BY_HOP,
    PODS,
    REQUEST_HEADERS,
    ApiResponse,
    Cassette,
    Example,
    Exchange,
    Judge,
    Pod,
    RecordedRequest,
    RecordedResponse,
    SpecIndex,
    Store,
    StoreUnavailable,
    Verdict,
    decoded_body,
    encode_json,
    journal_entry,
    key_fingerprint,
    mask,
    now_iso,
    recorded_headers,
    resolve_pod,
)

# The settings live beside `assemble` (`_front.py`), which a server that forwards nothing imports without httpx.
from ._front import DEFAULT_UPSTREAM_TIMEOUT, ProxySettings
from ._http import (
    MAX_BODY,
    Unreadable,
    api_key,
    cgi_name,
    crash_response,
    header_name,
    is_control_path,
    read_body,
    request_problem,
    route_path,
    status_line,
    wsgi_response,
)

__all__ = ["DEFAULT_UPSTREAM_TIMEOUT", "Proxy", "ProxySettings", "upstream_client"]

log = logging.getLogger("mock_server")

# Request headers never forwarded: the connection's own (RFC 9110 section 7.6.1), Host (the
# upstream's is used) and Content-Length (recomputed from the body forwarded).
_NOT_FORWARDED = HOP_BY_HOP | {"host"}
# What the proxy says of each answer; an upstream's own headers of these names are replaced.
_OWN_HEADERS = frozenset({"x-mock-source", "x-mock-violations", "x-mock-example"})


class _UpstreamFailure(Exception):
    def __init__(self, status: int, kind: str) -> None:
        super().__init__(kind)
        self.status = status
        self.kind = kind


def upstream_client(settings: ProxySettings) -> httpx.Client:
    """One client per worker, shared by its threads. No environment (a proxy or a netrc of the
    machine's would change what is forwarded), no cookie jar (each client's cookies are its
    own), no redirects followed; the CA file is trusted beside the usual roots."""
    context = ssl.create_default_context(cafile=certifi.where())
    if settings.ca_file:
        context.load_verify_locations(cafile=settings.ca_file)
    no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.Client(
        verify=context,
        trust_env=False,
        cookies=no_cookies,
        follow_redirects=False,
        timeout=httpx.Timeout(settings.timeout),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )


class Proxy:
    """Forwards the requests of the pods that have an upstream; judges and records each answer."""

    def __init__(
        self,
        settings: ProxySettings,
        spec: SpecIndex,
        judge: Judge,
        store: Store,
        *,
        default_pod: Pod,
        journal: bool = True,
        client: httpx.Client | None = None,
        render: Callable[[Example, str, tuple[tuple[str, str], ...]], ApiResponse],
    ) -> None:
        self.settings = settings
        self.render = render  # the engine's: the proxy's own errors take the configured layout
        self.spec = spec
        self.judge = judge
        self.store = store
        self.default_pod = default_pod
        self.journal = journal
        self.upstreams: dict[str, httpx.URL] = {pod: httpx.URL(url) for pod, url in settings.upstreams.items()}
        self.client = client if client is not None else upstream_client(settings)
        self.cassette = Cassette(Path(settings.record), settings.record_limit) if settings.record else None
        self._warned_full = threading.Event()
        self._errors: dict[int, Example] = {e.status: e for e in spec.shared.values() if e.status in (502, 504)}

    # -- which requests ------------------------------------------------------------

    def _pod_and_path(self, environ: Mapping[str, Any]) -> tuple[Pod, str]:
        """The mock's usual rule (Host, else the /in or /na prefix, else the default); the prefix
        is the mock's, never sent on."""
        path = route_path(dict(environ))
        prefix = path.split("/", 2)[1]
        pod = resolve_pod(environ.get("HTTP_HOST"), prefix, self.default_pod, self.spec.pod_hosts)
        if prefix in PODS:
            path = path[len(prefix) + 1 :] or "/"
        return pod, path

    def takes(self, environ: Mapping[str, Any]) -> bool:
        """An API request of a pod with an upstream, and readable: one the mock would refuse
        unread (a body too large or cut short, no Host) is refused by the API as ever."""
        if not self.upstreams or is_control_path(route_path(dict(environ))):
            return False
        pod, _ = self._pod_and_path(environ)
        return pod in self.upstreams and request_problem(dict(environ)) is None

    def health(self) -> dict[str, Any]:
        cassette = self.cassette
        recording: dict[str, Any] | None = None
        if cassette is not None:
            size, lines = _size_and_lines(cassette.path)
            recording = {
                "path": str(cassette.path),
                "exchanges": lines,
                "bytes": size,
                "limit": cassette.limit,
                "full": cassette.full or size >= cassette.limit,
                "masked": not self.settings.keep_personal_data,
            }
        return {
            "upstreams": {pod: _shown(url) for pod, url in self.upstreams.items()},
            "timeout_s": self.settings.timeout,
            "recording": recording,
        }

    def close(self) -> None:
        self.client.close()
        if self.cassette is not None:
            self.cassette.close()

    # -- one request ---------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        pod, path = self._pod_and_path(environ)
        upstream = self.upstreams[pod]
        query = environ.get("QUERY_STRING", "")
        key = api_key(environ)
        started = time.monotonic()
        try:
            body = read_body(environ) if method in ("POST", "PUT", "PATCH") else b""
            request = self._request(environ, method, upstream, path, query, body)
            status, headers, answer = self._send(request, started)
        except _UpstreamFailure as failure:
            return self._failed(failure, upstream, method, path, pod, key, started, start_response)
        except Unreadable as exc:  # a Content-Length that is no number, say: refused as the API refuses it
            return self._refused(exc, environ, start_response)
        except Exception as exc:  # a bug in the proxy, never a scenario: the traceback goes to the log
            log.exception("mock_server: proxy: unhandled error on %s %s", method, path)
            code, crash_headers, crash_body = wsgi_response(crash_response(exc), environ)
            start_response(status_line(code), crash_headers)
            return crash_body
        elapsed_ms = (time.monotonic() - started) * 1000
        received = RecordedResponse(status, recorded_headers(headers), answer)
        verdict = self.judge.verdict(method, path, status, received.header("content-type"), decoded_body(received))
        self._journal(method, path, pod, verdict, key, status, "proxy", elapsed_ms, upstream)
        if self.cassette is not None:
            self._record(environ, method, pod, path, query, key, body, received, verdict, elapsed_ms, upstream)
        out = [(k, v) for k, v in received.headers if k.lower() not in _OWN_HEADERS]
        declared = next((v for k, v in headers if k.lower() == "content-length"), None)
        out.append(("Content-Length", declared if method == "HEAD" and declared else str(len(answer))))
        out.append(("X-Mock-Source", "proxy"))
        out.append(("X-Mock-Violations", ", ".join(v.token() for v in verdict.violations)))
        if verdict.example:
            out.append(("X-Mock-Example", verdict.example))
        start_response(status_line(status), out)
        return () if method == "HEAD" else [answer]

    def _request(
        self, environ: Mapping[str, Any], method: str, upstream: httpx.URL, path: str, query: str, body: bytes
    ) -> httpx.Request:
        headers: list[tuple[str, str]] = []
        connection = {t.strip().lower() for t in (environ.get("HTTP_CONNECTION") or "").split(",")}
        for name, value in environ.items():
            header = header_name(name)
            if header is None or header in _NOT_FORWARDED or header in connection or not isinstance(value, str):
                continue
            headers.append((header, value))
        # PATH_INFO and QUERY_STRING are the request's bytes as latin-1 text (WSGI); quoted again
        # only where a byte could not travel as it is.
        raw_path = quote(path.encode("utf-8"), safe="/:@!$&'()*+,;=-._~")
        raw_query = quote(query.encode("latin-1"), safe="/?:@!$&'()*+,;=-._~%")
        base = upstream.raw_path.split(b"?", 1)[0].rstrip(b"/")
        target = base + raw_path.encode("ascii") + (b"?" + raw_query.encode("ascii") if query else b"")
        url = upstream.copy_with(raw_path=target)
        return httpx.Request(method, url, headers=headers, content=body or None)  # a POST gets Content-Length: 0

    def _send(self, request: httpx.Request, started: float) -> tuple[int, list[tuple[str, str]], bytes]:
        """The upstream's status, headers and raw body, read whole (bounded in size and time)."""
        host = request.url.netloc.decode("ascii", "replace")
        deadline = started + self.settings.timeout
        try:
            response = self.client.send(request, stream=True, follow_redirects=False)
            try:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > MAX_BODY:
                        raise _UpstreamFailure(502, f"answer larger than {MAX_BODY} bytes from {host}")
                    if time.monotonic() > deadline:
                        raise _UpstreamFailure(504, f"no whole answer within {self.settings.timeout:g} s from {host}")
                    chunks.append(chunk)
            finally:
                response.close()
        except httpx.TimeoutException:
            raise _UpstreamFailure(504, f"no answer within {self.settings.timeout:g} s from {host}") from None
        except httpx.TransportError as exc:
            raise _UpstreamFailure(502, f"{_failure_kind(exc)} ({host})") from None
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        connection = {t.strip().lower() for k, v in headers if k.lower() == "connection" for t in v.split(",")}
        kept = [(k, v) for k, v in headers if k.lower() not in connection]
        return response.status_code, kept, b"".join(chunks)

    def _refused(self, exc: Unreadable, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = self.render(self.spec.refusal(exc.status), "routing", (("X-Mock-Warning", exc.detail),))
        code, out, body = wsgi_response(response, environ)
        start_response(status_line(code), out)
        return body

    def _failed(
        self,
        failure: _UpstreamFailure,
        upstream: httpx.URL,
        method: str,
        path: str,
        pod: Pod,
        key: str | None,
        started: float,
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        """The proxy's own 502 or 504 (openapi.yaml's x-mock-own-responses): never recorded."""
        example = self._errors[failure.status]
        value = dict(example.value)
        data = dict(value.get("data") or {})
        data["error"] = {**data.get("error", {}), "error_message": failure.kind}
        value["data"] = data
        told = replace(example, value=value, body=encode_json(value))
        elapsed_ms = (time.monotonic() - started) * 1000
        op, params = self.judge.route(method, path)
        verdict = Verdict(op.operation_id if op else None, op.canonical if op else None, params, example.name, None, ())
        self._journal(method, path, pod, verdict, key, failure.status, "proxy-error", elapsed_ms, upstream)
        log.warning("mock_server: proxy: %s %s: %s", method, path, failure.kind)
        status, headers, body = wsgi_response(self.render(told, "proxy-error", ()), {})
        start_response(status_line(status), headers)
        return () if method == "HEAD" else body

    def _journal(
        self,
        method: str,
        path: str,
        pod: Pod,
        verdict: Verdict,
        key: str | None,
        status: int,
        source: str,
        elapsed_ms: float,
        upstream: httpx.URL,
    ) -> None:
        """The engine's journal entry, and what only a proxied exchange has. A store that cannot be
        reached loses the entry (logged), never the upstream's answer."""
        if not self.journal:
            return
        try:
            entry = journal_entry(
                now_iso(),
                pod,
                method,
                path,
                verdict.operation,
                verdict.canonical,
                verdict.params.get("sid"),
                verdict.params.get("agent_number"),
                key_fingerprint(key),
                status,
                verdict.example,
                source,
            )
            entry["violations"] = [v.token() for v in verdict.violations]
            entry["layout"] = verdict.layout
            entry["elapsed_ms"] = round(elapsed_ms, 1)
            entry["upstream"] = _shown(upstream)
            self.store.record(entry)
        except StoreUnavailable as exc:
            log.warning("mock_server: proxy: %s %s not journalled: %s", method, path, exc)

    def _record(
        self,
        environ: Mapping[str, Any],
        method: str,
        pod: Pod,
        path: str,
        query: str,
        key: str | None,
        body: bytes,
        received: RecordedResponse,
        verdict: Verdict,
        elapsed_ms: float,
        upstream: httpx.URL,
    ) -> None:
        cassette = self.cassette
        assert cassette is not None
        headers = {name: environ[cgi] for name, cgi in _REQUEST_CGI.items() if isinstance(environ.get(cgi), str)}
        exchange = Exchange(
            request=RecordedRequest(method, pod, path, query, headers, key_fingerprint(key), body),
            response=received,
            elapsed_ms=elapsed_ms,
            upstream=_shown(upstream),
            time=now_iso(),
            operation=verdict.operation,
            example=verdict.example,
            layout=verdict.layout,
            violations=verdict.violations,
            masked=False,
        )
        if not self.settings.keep_personal_data:
            exchange = mask(exchange)
        try:
            written = cassette.append(exchange)
        except OSError as exc:
            written = False
            cassette.full = True
            log.warning("mock_server: cannot write the cassette %s: %s", cassette.path, exc.strerror or exc)
        if not written and not self._warned_full.is_set():
            self._warned_full.set()
            log.warning(
                "mock_server: the cassette %s is full (--record-limit %d bytes): recording stops, proxying goes on",
                cassette.path,
                cassette.limit,
            )


# The recorded request headers, by their WSGI names.
_REQUEST_CGI = {name: cgi_name(name) for name in REQUEST_HEADERS}


def _shown(url: httpx.URL) -> str:
    """An upstream as it may be shown: no user or password, ever."""
    return str(url.copy_with(userinfo=b"") if url.userinfo else url).rstrip("/")


def _failure_kind(exc: BaseException) -> str:
    """What kind of network failure, in a few words, from the exception and its causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE" in str(seen) or "SSL" in str(seen):
            return "TLS handshake failed"
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        if isinstance(seen, socket.gaierror) or "name or service not known" in str(seen).lower():
            return "name does not resolve"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "answer broke off"
    return f"cannot connect ({type(exc).__name__})"


def _size_and_lines(path: Path) -> tuple[int, int]:
    """The cassette's bytes and whole lines, as every worker wrote them."""
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except FileNotFoundError:
        return 0, 0
    return size, lines
