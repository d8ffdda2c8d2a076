"""The API's hot path without Flask's request machinery.

Measured in one run (`make bench`, in-process, SQLite with the journal on): Flask's request
context, routing and response object took about two thirds of each GET testers. This WSGI
middleware sits in front of the Flask app and answers the plain, well-formed API requests (GET
and DELETE on an API route, ASCII path, UTF-8 query) straight from the engine; everything else
(control plane, POST bodies, HEAD, unknown paths, 404/405, odd encodings) goes on to Flask
unchanged. The routes come from the same `API_ROUTES` table, and tests/test_fast_path.py holds
both paths to byte-identical answers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from werkzeug.http import HTTP_STATUS_CODES

from ..core import ApiRequest, ApiResponse, Engine, Pod, mock_error_body, resolve_pod

__all__ = [
    "DROP_MESSAGE",
    "ConnectionDropped",
    "FastApi",
    "api_key",
    "crash_response",
    "query_is_utf8",
    "route_pattern",
    "wsgi_response",
]

log = logging.getLogger("mock_server")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_FAST_METHODS = frozenset({"GET", "DELETE"})
_PLACEHOLDER = re.compile(r"<(?:(\w+):)?(\w+)>")


def route_pattern(rule: str, converters: dict[str, str]) -> str:
    """A werkzeug rule as a regular expression, with the converters' own regexes."""
    out, last = [], 0
    for match in _PLACEHOLDER.finditer(rule):
        out.append(re.escape(rule[last : match.start()]))
        regex = converters.get(match.group(1) or "default", "[^/]+")
        out.append(f"(?P<{match.group(2)}>{regex})")
        last = match.end()
    out.append(re.escape(rule[last:]))
    return "".join(out)


def _status_line(code: int) -> str:
    """As werkzeug spells it, so both paths send the same status line."""
    return f"{code} {HTTP_STATUS_CODES.get(code, 'UNKNOWN').upper()}"


class FastApi:
    """WSGI middleware: plain API requests to the engine, the rest to `app`."""

    def __init__(
        self,
        app: WSGIApp,
        engine: Engine,
        default_pod: Pod,
        routes: Iterable[tuple[str, dict[str, str]]],
        converters: dict[str, str],
    ) -> None:
        self.app = app
        self.engine = engine
        self.default_pod = default_pod
        prefix = f"(?:/(?P<pod_prefix>{converters['pod']}))?"
        self.routes = [(re.compile(prefix + route_pattern(rule, converters)), ops) for rule, ops in routes]
        self.status_lines = {code: _status_line(code) for code in HTTP_STATUS_CODES}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if method not in _FAST_METHODS or not path.isascii() or not query.isascii():
            return self.app(environ, start_response)
        if "%" in query and not query_is_utf8(query):
            return self.app(environ, start_response)
        found = self._match(path, method)
        if found is None:  # not an API route, or a 405 with its Allow header: Flask's
            return self.app(environ, start_response)
        op_id, groups = found
        api_request = ApiRequest(
            operation_id=op_id,
            method=method,
            path=path,
            pod=resolve_pod(environ.get("HTTP_HOST"), groups["pod_prefix"], self.default_pod),
            sid=groups.get("sid"),
            path_agent=groups.get("agent_number"),
            query=_parse_query(query),
            api_key=api_key(environ),
            content_type=environ.get("CONTENT_TYPE") or None,
            prefer=environ.get("HTTP_PREFER"),
        )
        try:
            response = self.engine.handle(api_request)
        except Exception as exc:
            log.exception("mock_server: unhandled error on %s %s", method, path)
            response = crash_response(exc)
        status, headers, body = wsgi_response(response)
        start_response(self.status_lines.get(status) or _status_line(status), headers)
        return body

    def _match(self, path: str, method: str) -> tuple[str, dict[str, str | None]] | None:
        for pattern, ops in self.routes:
            match = pattern.fullmatch(path)
            if match is not None:
                op_id = ops.get(method)
                return None if op_id is None else (op_id, match.groupdict())
        return None


def api_key(environ: dict[str, Any]) -> str | None:
    """Whitespace around a header value is not part of it (RFC 9110), in-process or not."""
    return (environ.get("HTTP_API_KEY") or "").strip() or None


def crash_response(exc: Exception) -> ApiResponse:
    """A bug in the mock, never a scenario: said in the envelope; the traceback stays in the log."""
    body = mock_error_body("MOCK500", "The mock failed", "MOCK_INTERNAL_ERROR", type(exc).__name__)
    return ApiResponse(500, body, (("Content-Type", "application/json"),), None, "crash")


def _parse_query(query: str) -> list[tuple[str, str]]:
    """As werkzeug reads `request.args`; a query with nothing to decode is split by hand."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
    return [(name, value) for name, _, value in (part.partition("=") for part in query.split("&") if part)]


def query_is_utf8(query: str) -> bool:
    """Percent-escapes decode to UTF-8 (WSGI hands the query over as latin-1 text)."""
    try:
        unquote_to_bytes(query.encode("latin-1")).decode("utf-8")
    except UnicodeError:
        return False
    return True


def wsgi_response(response: ApiResponse) -> tuple[int, list[tuple[str, str]], Iterable[bytes]]:
    """Status, headers and body as both paths send them (Content-Length always set)."""
    if response.latency_s:
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


DROP_MESSAGE = "connection_reset fault: connection dropped mid-response"


class ConnectionDropped(Exception):
    """Raised mid-response by the connection_reset fault: the server drops the connection."""


def _dropped(body: bytes) -> Iterator[bytes]:
    yield body[: len(body) // 2]
    raise ConnectionDropped(DROP_MESSAGE)
