"""Which Kaleyra pod a request is for: by Host, else by path prefix, else the default.

The hosts come from the `servers` of openapi.yaml (`SpecIndex.pod_hosts`); only the pods'
names are written here, because a type needs them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final, Literal

__all__ = ["PODS", "Pod", "pod_from_host", "resolve_pod", "unknown_root"]

Pod = Literal["in", "na"]
PODS: Final[tuple[Pod, Pod]] = ("in", "na")
# A segment short and plain enough to quote back in a message: a pod's or a version's shape,
# never a long token (an api key pasted into a base URL) or markup.
_WORD = re.compile(r"[A-Za-z0-9._~-]{1,16}")


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


def unknown_root(path: str, roots: Sequence[str]) -> str | None:
    """Why `path` cannot be this API's, or None when it may be (then it is the spec's `not_found`).

    The rule: a path is the API's when its first segment is one of `roots` (the first segments of
    the spec's paths: `v1`, `wsgw`), or a pod prefix (`in`, `na`) followed by one of them. Anything
    else (`/eu/v1/...`, `/v2/...`, `/in/v2/...`, `/`) is a base URL the mock does not serve: Kaleyra's
    pods are hosts, so only the mock's own prefixes can be wrong this way. Case counts (paths are
    case-sensitive, RFC 3986 section 6.2.2.1): `/NA/` is not `/na/`, and the message says so. The
    segment is quoted back only when it is a short plain word (`_WORD`). A doubled slash (an empty
    segment with more path after it, `/in//v1/...`) names nothing wrong, so it stays `not_found`.
    """
    segments = path.split("/")
    first = segments[1] if len(segments) > 1 else ""
    if first == "" and len(segments) > 2:
        return None
    if first in PODS:
        second = segments[2] if len(segments) > 2 else ""
        if second in roots or (second == "" and len(segments) > 3):
            return None
        named, case = _quoted(second, roots)
        return f"no API version{named} after /{first}{case}: {_where(roots)}"
    if first in roots:
        return None
    named, case = _quoted(first, (*PODS, *roots))
    return f"no pod or version{named} here{case}: {_where(roots)}"


def _quoted(segment: str, known: Sequence[str]) -> tuple[str, str]:
    """(" 'eu'", "") for a plain word, ("", "") for anything else; a case slip gets its note."""
    if not _WORD.fullmatch(segment):
        return "", ""
    lower = segment.lower()
    case = f" (paths are case-sensitive: /{lower}, not /{segment})" if lower != segment and lower in known else ""
    return f" {segment!r}", case


def _where(roots: Sequence[str]) -> str:
    pods = " and ".join(f"/{pod}" for pod in PODS)
    more = f" (and {', '.join('/' + root for root in roots[1:])})" if len(roots) > 1 else ""
    return f"the pods are {pods} (or a Kaleyra Host), the API version is /{roots[0]}{more}"
