"""Kaleyra's pods and their base URLs."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["NA_HOSTS", "POD_BASE_URLS", "Pod"]

Pod = Literal["in", "na"]

# The NA host is .io in the "Delete an Agent" document and .ai in "Get Tester By Agent".
# The client defaults to .io (the pattern of the IN host); pass base_url for the other.
NA_HOSTS: Final = ("https://rcs-api.na.kaleyra.io", "https://rcs-api.na.kaleyra.ai")
POD_BASE_URLS: Final[dict[str, str]] = {"in": "https://rcs-api.in.kaleyra.io", "na": NA_HOSTS[0]}
