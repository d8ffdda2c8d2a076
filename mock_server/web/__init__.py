"""The web layer of the mock: the API callable, the Flask app hosting it, and the server.

What needs httpx (the proxy, `_inprocess`'s transports) is imported where it is used, so a
server that forwards nothing starts without it."""

from ._api import ApiApp, SpecRouter, api_rules
from ._app import ConnectionDropped, MockApp, MockHandle, create_app
from ._http import MAX_BODY, is_loopback_host

__all__ = [
    "MAX_BODY",
    "ApiApp",
    "ConnectionDropped",
    "MockApp",
    "MockHandle",
    "SpecRouter",
    "api_rules",
    "create_app",
    "is_loopback_host",
]
