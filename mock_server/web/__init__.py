"""The web layer of the mock: the API callable, the Flask app hosting it, and the server."""

from ._api import ApiApp, SpecRouter, api_rules
from ._app import ConnectionDropped, MockApp, MockHandle, create_app
from ._http import MAX_BODY, is_loopback_host
from ._inprocess import AsyncInProcessTransport, InProcessTransport

__all__ = [
    "MAX_BODY",
    "ApiApp",
    "AsyncInProcessTransport",
    "ConnectionDropped",
    "InProcessTransport",
    "MockApp",
    "MockHandle",
    "SpecRouter",
    "api_rules",
    "create_app",
    "is_loopback_host",
]
