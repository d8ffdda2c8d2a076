"""The ceiling: a bare WSGI callable answering the documented testers body, served by the same
granian settings as the mock, so `mock / ceiling` says what the mock itself costs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mock_server.core import SpecIndex

BODY = SpecIndex.load().example("getTestersByAgent", "testers").body
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
