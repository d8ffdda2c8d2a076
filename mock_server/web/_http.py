"""Reading a WSGI request and writing a WSGI answer: the HTTP rules every route shares.

One place for each rule, whoever serves the app (granian through `_rsgi.py`, or a test
client in-process): how a body is read and bounded, what a request must carry to be read at
all (RFC 9110 and 9112), how a header appearing twice is told apart, how an `ApiResponse`
becomes status, headers and body. Refusals are raised as `Unreadable` and rendered by the
plane they belong to; their messages name the rule, never the refused value.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from werkzeug.http import HTTP_STATUS_CODES

from ..core import ApiResponse, mock_error_body

__all__ = [
    "BODY_PROBLEM",
    "CONTROL_PREFIX",
    "DEFERRED_LATENCY",
    "MAX_BODY",
    "ConnectionDropped",
    "Unreadable",
    "Answer",
    "WSGIApp",
    "add_headers",
    "api_key",
    "call_app",
    "cgi_name",
    "content_length",
    "crash_response",
    "has_body",
    "header_name",
    "is_control_path",
    "is_loopback_host",
    "parse_query",
    "query_is_utf8",
    "read_body",
    "request_problem",
    "route_path",
    "status_line",
    "wsgi_response",
]

MAX_BODY = 8 * 1024 * 1024
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# What a server sends: status, headers, and the body whole, or the chunks the connection_reset
# fault let out before the connection dropped (a list: the server sends them, then drops it).
Answer = tuple[int, list[tuple[str, str]], bytes | list[bytes]]

log = logging.getLogger("mock_server")
_CGI_NAMES = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
_CGI_HEADERS = {cgi: header for header, cgi in _CGI_NAMES.items()}

# Set by a server that reads the body itself before calling the app (`_rsgi.py`): why it
# refused the body ("too_large", "timeout", "incomplete"). The app answers 413, 408 or 400.
BODY_PROBLEM = "mock_server.body_problem"
CONTROL_PREFIX = "/__mock/"
# Set by a server that waits asynchronously (`_rsgi.py`): a list the app appends a `latency`
# fault's delay to, instead of sleeping on the server's only thread.
DEFERRED_LATENCY = "mock_server.deferred_latency"

_STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in HTTP_STATUS_CODES}
# RFC 9110 section 4.2.3 (uri-host) and 7.2: a reg-name, an IPv4 literal or an IP literal, then an optional port.
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"?')
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+;=]*)(?::[0-9]*)?")


class Unreadable(Exception):
    """A request the mock will not read: `status` and a `detail` that never quotes the request."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def cgi_name(header: str) -> str:
    """The environ key of a request header (a lower-case name), as CGI and WSGI spell it."""
    return _CGI_NAMES.get(header) or "HTTP_" + header.upper().replace("-", "_")


def header_name(key: str) -> str | None:
    """The lower-case header name an environ key holds (`cgi_name` read back), or None."""
    return _CGI_HEADERS.get(key) or (key[5:].lower().replace("_", "-") if key[:5] == "HTTP_" else None)


def add_headers(environ: dict[str, Any], fields: Iterable[tuple[str, str]], names: dict[str, str]) -> None:
    """Request header fields (lower-case names) into the environ, as every server here reads
    them. `names` caches the CGI name of each header name seen."""
    for header, value in fields:
        if "_" in header:
            continue  # `api_key` would read as `api-key` in CGI naming: dropped, as gunicorn and nginx do
        name = names.get(header)
        if name is None:
            name = names[header] = cgi_name(header)
        seen = environ.get(name)
        environ[name] = value if seen is None else f"{seen}, {value}"  # RFC 9110 section 5.3


def call_app(app: WSGIApp, environ: dict[str, Any]) -> Answer:
    """The WSGI call as every server here makes it (granian's bridge, the in-process transports).
    A body that raises `ConnectionDropped` comes back as the list of chunks before it; an app
    that raises answers the mock's own 500, with the traceback in the log."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started[:] = [status, headers]

    try:
        result = app(environ, start_response)
        chunks: list[bytes] = []
        try:
            for chunk in result:
                chunks.append(chunk)
        except ConnectionDropped:
            return int(started[0][:3]), started[1], chunks
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(started[0][:3]), started[1], b"".join(chunks)
    except Exception as exc:
        log.exception("mock_server: unhandled error serving %s", environ.get("PATH_INFO", ""))
        status, headers, body = wsgi_response(crash_response(exc), environ)
        return status, headers, b"".join(body)


def status_line(code: int) -> str:
    """As werkzeug spells it, so every answer sends the same status line."""
    return _STATUS_LINES.get(code) or f"{code} UNKNOWN"


def api_key(environ: dict[str, Any]) -> str | None:
    """Whitespace around a header value is not part of it (RFC 9110 section 5.5)."""
    return (environ.get("HTTP_API_KEY") or "").strip() or None


def is_control_path(path: str) -> bool:
    """The control plane's paths (`/__mock` and below); every other path is the API's."""
    return path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/")


def route_path(environ: dict[str, Any]) -> str:
    """The path as the routes see it: PATH_INFO's bytes read as UTF-8 (WSGI hands them over as
    latin-1 text), leading slashes folded into one, as werkzeug routes. Every plane and the
    server decide on this one string."""
    raw: str = environ.get("PATH_INFO", "")
    if not raw.isascii():
        with contextlib.suppress(UnicodeError):  # not UTF-8: request_problem refuses it anyway
            raw = raw.encode("latin-1").decode("utf-8")
    return "/" + raw.lstrip("/")


def parse_query(query: str) -> tuple[tuple[str, str], ...]:
    """Name-value pairs in order, blanks kept, as werkzeug reads `request.args`: the bytes are
    UTF-8 (WSGI hands them over as latin-1 text), then percent-escapes are decoded. A query with
    nothing to decode (the usual one) is split by hand: parse_qsl costs several times more."""
    if not query.isascii():
        query = query.encode("latin-1").decode("utf-8", "replace")  # request_problem refused the rest
    if "%" in query or "+" in query:
        return tuple(parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"))
    return tuple((name, value) for name, _, value in (part.partition("=") for part in query.split("&") if part))


def query_is_utf8(query: str) -> bool:
    """Its bytes and its percent-escapes decode to UTF-8 (WSGI hands the query over as latin-1 text)."""
    if query.isascii() and "%" not in query:
        return True  # the usual query: ASCII is UTF-8, and there is nothing to decode
    try:
        unquote_to_bytes(query.encode("latin-1")).decode("utf-8")
    except UnicodeError:
        return False
    return True


def _path_is_utf8(path: str) -> bool:
    """PATH_INFO is latin-1 text of the decoded bytes. A server that decodes the path for us
    (granian's RSGI) turns bytes that are not UTF-8 into U+FFFD, so that character is refused
    too, in-process as well, so both ways of serving agree."""
    if path.isascii():
        return True
    try:
        decoded = path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return "\ufffd" not in decoded


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (IPv6 in brackets or not), without a port."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def has_body(environ: dict[str, Any]) -> bool:
    """A request carries a body when it says so: a Content-Length above 0, or chunked framing."""
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    return (bool(length) and length != "0") or "HTTP_TRANSFER_ENCODING" in environ


def content_length(raw: str) -> int | None:
    """A Content-Length as RFC 9110 writes one (ASCII digits), or None."""
    return int(raw) if raw.isascii() and raw.isdigit() else None


def request_problem(environ: dict[str, Any]) -> Unreadable | None:
    """What makes a request unreadable before any route looks at it, or None.

    - a body the server refused while reading it (`BODY_PROBLEM`): 413, 408 or 400, on every
      route, whether or not it would have read the body;
    - the path or query is not UTF-8 (Kaleyra's paths and parameters are text);
    - HTTP/1.1 without a Host, or with two of them, or with one that is no host
      (RFC 9112 section 3.2: a server MUST answer 400);
    - a field that may appear once appearing twice: a server joins repeated field lines
      with commas (RFC 9110 section 5.3), and neither an api key nor a media type has one
      outside a quoted string;
    - a transfer coding other than chunked.
    """
    problem = environ.get(BODY_PROBLEM)
    if problem == "too_large":
        return Unreadable(413, f"the request body is larger than {MAX_BODY} bytes")
    if problem == "timeout":
        return Unreadable(408, "the request body did not arrive in time")
    if problem is not None:
        return Unreadable(400, "the request body ended before its Content-Length or its last chunk")
    if not _path_is_utf8(environ.get("PATH_INFO", "")) or not query_is_utf8(environ.get("QUERY_STRING", "")):
        return Unreadable(400, "the request path or query string is not valid UTF-8")
    host = environ.get("HTTP_HOST")
    if host is None:
        if environ.get("SERVER_PROTOCOL") == "HTTP/1.1":
            return Unreadable(400, "an HTTP/1.1 request must carry a Host header")
    elif not _HOST.fullmatch(host.strip()):
        return Unreadable(400, "the Host header must name one host (it appears twice, or is no host)")
    if "," in (environ.get("HTTP_API_KEY") or ""):
        return Unreadable(400, "the api-key header must appear once")
    media = environ.get("CONTENT_TYPE") or ""
    if "," in media and "," in _QUOTED.sub("", media):  # a comma outside quotes: two values
        return Unreadable(400, "the Content-Type header must appear once")
    coding = environ.get("HTTP_TRANSFER_ENCODING")
    if coding and [c.strip().lower() for c in coding.split(",")] != ["chunked"]:
        # RFC 9112 section 6.1 suggests 501 for a transfer coding the server lacks; a 5xx would
        # read as the mock failing (and a client may retry it), so it is refused as unreadable.
        return Unreadable(400, "the only transfer coding read is chunked")
    return None


def read_body(environ: dict[str, Any]) -> bytes:
    """The whole body, however it was framed, or `Unreadable` (413 past `MAX_BODY`, 400 when it
    is shorter than its Content-Length). A body the server already refused never gets here:
    `request_problem` answered it.

    A chunked body has no Content-Length; it is read up to one byte past the limit, so a
    body of exactly `MAX_BODY` bytes is taken whole and one byte more is refused.
    """
    raw_length = (environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ["wsgi.input"]
    if raw_length:
        length = content_length(raw_length)
        if length is None:
            raise Unreadable(400, "Content-Length must be a number of bytes")
        if length > MAX_BODY:
            raise Unreadable(413, f"the request body is larger than {MAX_BODY} bytes")
        data = stream.read(length) if length else b""
        if len(data) < length:
            raise Unreadable(400, "the request body is shorter than its Content-Length")
        return bytes(data)
    chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
    if not (chunked or environ.get("wsgi.input_terminated")):
        return b""  # no framing, no body (RFC 9112 section 6.3)
    data = stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise Unreadable(413, f"the request body is larger than {MAX_BODY} bytes")
    return bytes(data)


def crash_response(exc: Exception) -> ApiResponse:
    """A bug in the mock, never a scenario: said in the envelope; the traceback stays in the log."""
    body = mock_error_body("MOCK500", "The mock failed", "MOCK_INTERNAL_ERROR", type(exc).__name__)
    return ApiResponse(500, body, (("Content-Type", "application/json"),), None, "crash")


def wsgi_response(response: ApiResponse, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], Iterable[bytes]]:
    """Status, headers and body as every route sends them (Content-Length always set).

    A `latency` fault's delay is handed to the server when it waits asynchronously
    (`DEFERRED_LATENCY`); in-process the calling thread sleeps.
    """
    if response.latency_s:
        deferred = environ.get(DEFERRED_LATENCY)
        if deferred is not None:
            deferred.append(response.latency_s)
        else:
            time.sleep(response.latency_s)
    headers = list(response.headers)
    headers.append(("X-Mock-Source", response.source))
    if response.example:
        headers.append(("X-Mock-Example", response.example))
    body = response.body
    headers.append(("Content-Length", str(len(body))))
    if response.transport_fault == "connection_reset":
        return response.status, headers, _dropped(body)
    return response.status, headers, [body]


class ConnectionDropped(Exception):
    """Raised mid-response by the connection_reset fault: the server drops the connection."""


def _dropped(body: bytes) -> Iterator[bytes]:
    yield body[: len(body) // 2]
    raise ConnectionDropped("connection_reset fault: connection dropped mid-response")
