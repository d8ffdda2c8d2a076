"""The Flask layer of the mock and the production server around it."""

from ._app import API_ROUTES, ConnectionDropped, MockHandle, create_app

__all__ = ["API_ROUTES", "ConnectionDropped", "MockHandle", "create_app"]
