"""Kaleyra's pods and their base URLs, read from the `servers` of the packaged openapi.yaml."""

from __future__ import annotations

from typing import Final, Literal

from ._spec import servers

__all__ = ["NA_HOSTS", "POD_BASE_URLS", "Pod"]

Pod = Literal["in", "na"]

# The NA host is .io in the "Delete an Agent" document and .ai in "Get Tester By Agent".
# The client takes the first server the spec lists for a pod (.io for NA); pass base_url for another.
NA_HOSTS: Final = tuple(url for url, pod in servers() if pod == "na")


def _first_of_each_pod() -> dict[str, str]:
    first: dict[str, str] = {}
    for url, pod in servers():
        first.setdefault(pod, url)
    return first


POD_BASE_URLS: Final[dict[str, str]] = _first_of_each_pod()
