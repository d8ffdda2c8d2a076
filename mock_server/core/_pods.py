"""Which Kaleyra pod a request is for: by Host, else by path prefix, else the default."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["PODS", "POD_HOSTS", "Pod", "pod_from_host", "resolve_pod"]

Pod = Literal["in", "na"]
PODS: Final[tuple[Pod, Pod]] = ("in", "na")

# Both NA hosts are served: each of the two documents names a different one.
POD_HOSTS: Final[dict[str, Pod]] = {
    "rcs-api.in.kaleyra.io": "in",
    "rcs-api.na.kaleyra.io": "na",
    "rcs-api.na.kaleyra.ai": "na",
}


def pod_from_host(host: str | None) -> Pod | None:
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return POD_HOSTS.get(name.strip().lower().rstrip("."))


def resolve_pod(host: str | None, prefix: str | None, default: Pod) -> Pod:
    by_host = pod_from_host(host)
    if by_host is not None:
        return by_host
    if prefix == "in":
        return "in"
    if prefix == "na":
        return "na"
    return default
