"""A client library for accessing Kaleyra RCS agent API (as documented, with every assumption marked)"""

from .client import AuthenticatedClient, Client

__all__ = (
    "AuthenticatedClient",
    "Client",
)
