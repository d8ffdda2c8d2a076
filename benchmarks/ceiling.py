"""The ceilings: a bare WSGI callable answering the documented testers body.

`app` on granian's WSGI interface is the fastest a Python app is served here, the reference
every ratio in the README is taken against. `rsgi_app` is the same callable behind the mock's
own server set-up (`RsgiBridge` on granian's RSGI interface), so `mock / ceiling_rsgi` says
what the mock's own code costs, and `ceiling_rsgi / ceiling` what the server interface does."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mock_server.core import SpecIndex
from mock_server.web._rsgi import RsgiBridge

BODY = SpecIndex.load().example("getTestersByAgent", "testers").body
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]


def rsgi_app() -> RsgiBridge:
    return RsgiBridge(app, read_timeout=10.0)
