"""The Flask layer of the mock and the production server around it."""

from ._app import API_ROUTES, ConnectionDropped, MockHandle, create_app
from ._http import MAX_BODY

__all__ = ["API_ROUTES", "MAX_BODY", "ConnectionDropped", "MockHandle", "create_app"]
