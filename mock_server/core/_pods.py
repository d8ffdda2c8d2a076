"""Which Kaleyra pod a request is for: by Host, else by path prefix, else the default.

The hosts come from the `servers` of openapi.yaml (`SpecIndex.pod_hosts`); only the pods'
names are written here, because a type needs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

__all__ = ["PODS", "Pod", "pod_from_host", "resolve_pod"]

Pod = Literal["in", "na"]
PODS: Final[tuple[Pod, Pod]] = ("in", "na")


def pod_from_host(host: str | None, hosts: Mapping[str, Pod]) -> Pod | None:
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return hosts.get(name.strip().lower().rstrip("."))


def resolve_pod(host: str | None, prefix: str | None, default: Pod, hosts: Mapping[str, Pod]) -> Pod:
    by_host = pod_from_host(host, hosts)
    if by_host is not None:
        return by_host
    if prefix == "in":
        return "in"
    if prefix == "na":
        return "na"
    return default
