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
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from ..core import ApiRequest, Engine, Pod, resolve_pod
from ._http import api_key, crash_response, request_problem, status_line, wsgi_response

__all__ = ["FastApi", "route_pattern"]

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

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if (
            method not in _FAST_METHODS
            or not (path.isascii() and query.isascii())
            or request_problem(environ) is not None
        ):
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
        status, headers, body = wsgi_response(response, environ)
        start_response(status_line(status), headers)
        return body

    def _match(self, path: str, method: str) -> tuple[str, dict[str, str | None]] | None:
        for pattern, ops in self.routes:
            match = pattern.fullmatch(path)
            if match is not None:
                op_id = ops.get(method)
                return None if op_id is None else (op_id, match.groupdict())
        return None


def _parse_query(query: str) -> list[tuple[str, str]]:
    """As werkzeug reads `request.args`; a query with nothing to decode is split by hand."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
    return [(name, value) for name, _, value in (part.partition("=") for part in query.split("&") if part)]
