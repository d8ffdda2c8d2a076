"""The web layer of the mock: the API callable, the dispatcher, the Flask app hosting the control
plane, and the server.

Flask is imported only with `MockApp` or `create_app` (PEP 562): a server's worker answers the
API before, and without, it (`_front.py`). What needs httpx (the proxy, `_inprocess`'s
transports) is imported where it is used, so a server that forwards nothing starts without it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._api import ApiApp, SpecRouter, api_rules
from ._front import Front, MockHandle
from ._http import MAX_BODY, ConnectionDropped, is_loopback_host

if TYPE_CHECKING:
    from ._app import MockApp, create_app

__all__ = [
    "MAX_BODY",
    "ApiApp",
    "ConnectionDropped",
    "Front",
    "MockApp",
    "MockHandle",
    "SpecRouter",
    "api_rules",
    "create_app",
    "is_loopback_host",
]


def __getattr__(name: str) -> Any:
    if name in ("MockApp", "create_app"):
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
