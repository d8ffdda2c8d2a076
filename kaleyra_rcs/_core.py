"""The client's one core, sans I/O: settings, request building, validation, errors and retries.

Each call is a generator (the shape of httpx's `auth_flow`): it yields `Send(request)` and is
sent back the `httpx.Response` or the `httpx.HTTPError` that came of it; it yields `Sleep(s)`
before a retry; it returns the parsed result or raises the KaleyraError. It never touches a
socket or a clock, so KaleyraRCS and AsyncKaleyraRCS (`_client.py`) are only two drivers of it:
httpx.Client with time.sleep, httpx.AsyncClient with asyncio.sleep.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from . import _adapter
from ._adapter import DeleteAgentResponse, Request, Tester
from ._errors import (
    ContractViolation,
    KaleyraError,
    NotKaleyra,
    RateLimited,
    ServerError,
    TransportError,
    error_from_body,
)
from ._pods import POD_BASE_URLS, Pod
from ._spec import Spec, load_spec

__all__ = ["DEFAULT_TIMEOUT", "Core", "Flow", "Reply", "Send", "Sleep", "env_settings"]

log = logging.getLogger("kaleyra_rcs")

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Only a safe method is retried: a DELETE whose answer was lost may have deleted, and its retry
# would meet agent_not_found (RFC 9110 section 9.2.1).
_RETRIED_METHODS = frozenset({"GET"})
# A proxy's or load balancer's answer is no Kaleyra answer (so a ContractViolation), but transient.
_GATEWAY_STATUSES = frozenset({502, 503, 504})
# A web page is some web server's answer, never an API's.
_PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True)
class Send:
    """Send this request; the flow is sent back the httpx.Response or the httpx.HTTPError."""

    request: Request


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds before the next step; the flow is sent back None."""

    seconds: float


Reply = httpx.Response | httpx.HTTPError
Flow = Generator[Send | Sleep, Reply | None, T]


def env_settings(env: Mapping[str, str] | None) -> dict[str, Any]:
    """The constructor arguments `from_env` reads: KALEYRA_API_KEY, _SID, _POD, _BASE_URL."""
    env = os.environ if env is None else env
    missing = [name for name in ("KALEYRA_API_KEY", "KALEYRA_SID") if not env.get(name)]
    if missing:
        raise ValueError(f"set {' and '.join(missing)} in the environment")
    return {
        "api_key": env["KALEYRA_API_KEY"],
        "sid": env["KALEYRA_SID"],
        "pod": (env.get("KALEYRA_POD") or "in").lower(),
        "base_url": env.get("KALEYRA_BASE_URL") or None,
    }


class Core:
    """Everything both clients do but the I/O. Checks its settings up front, never the network."""

    def __init__(
        self,
        *,
        api_key: str,
        sid: str,
        pod: Pod,
        base_url: str | None,
        timeout: float | httpx.Timeout,
        retries: int,
        backoff: float,
        max_backoff: float,
        spec: str | os.PathLike[str] | None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required (KALEYRA_API_KEY for from_env)")
        if api_key != api_key.strip() or not api_key.isprintable():
            # httpx would refuse the header and quote it, key and all, in its error and its log
            raise ValueError("api_key has surrounding whitespace or control characters (the value is not shown)")
        if not sid:
            raise ValueError("sid is required (KALEYRA_SID for from_env)")
        if pod not in POD_BASE_URLS:
            raise ValueError(f"pod must be one of {', '.join(POD_BASE_URLS)}, not {pod!r}")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.sid = sid
        self.pod = pod
        self.base_url = _checked_base_url(base_url or POD_BASE_URLS[pod])
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = _finite_timeout(timeout)
        self.headers = {"api-key": api_key, "Content-Type": "application/json", "Accept": "application/json"}
        self.spec: Spec = load_spec(spec)

    # -- the operations (named as their operationIds) -----------------------------------------

    def get_testers_by_agent(self, agent_number: str) -> Flow[list[Tester]]:
        return self._flow(self._request("getTestersByAgent", agent_number), _adapter.testers)

    def delete_agent(self, agent_number: str) -> Flow[DeleteAgentResponse]:
        return self._flow(self._request("deleteAgent", agent_number), _adapter.deleted_agent)

    # -- one flow for every operation -------------------------------------------------------

    def _request(self, operation_id: _adapter.Operation, agent_number: str) -> Request:
        """Checked before anything is sent: `.` and `..` survive URL quoting as dot segments and
        would address another path."""
        if agent_number in {".", ".."}:
            raise ValueError(f"{agent_number!r} is not an agent number")
        return _adapter.request(operation_id, sid=self.sid, agent_number=agent_number)

    def _flow(self, request: Request, parse: Callable[[Any], T]) -> Flow[T]:
        attempt = 0
        while True:
            reply = yield Send(request)
            if reply is None:
                raise TypeError("a Send step is answered with an httpx.Response or an httpx.HTTPError")
            try:
                return parse(self._body(request, reply))
            except KaleyraError as error:
                delay = self._retry_delay(request, error, attempt)
                if delay is None:
                    raise
                log.info("%s: retrying after %s (attempt %d)", request.operation_id, type(error).__name__, attempt + 1)
                yield Sleep(delay)
                attempt += 1

    def _body(self, request: Request, reply: Reply) -> Any:
        """The validated body of a 2xx, safe to parse; else the KaleyraError the reply means."""
        try:
            if isinstance(reply, httpx.HTTPError):
                # httpx messages name the URL at most; headers (and so the api key) never appear in them.
                raise TransportError(
                    f"{type(reply).__name__}: {reply} ({request.method} {self.url_of(request)})"
                ) from reply
            return self._check(request, reply)
        except KaleyraError as error:
            raise _redacted(error, self.headers["api-key"]) from error.__cause__

    def url_of(self, request: Request) -> str:
        """The URL a request goes to, as errors show it: the key is a header, never in it, and a
        base URL's user:password@ is left out."""
        query = f"?{httpx.QueryParams(request.params)}" if request.params else ""
        return f"{_without_userinfo(self.base_url)}{request.url}{query}"

    def _check(self, request: Request, response: httpx.Response) -> Any:
        contract = self.spec.contract(request.operation_id)
        status = response.status_code
        log.debug("%s %s -> %s", request.method, response.request.url.path, status)
        raw = response.content
        text = raw.decode("utf-8", "replace")
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()

        def violation(message: str, body: Any, what: str, pointer: str | None = None) -> ContractViolation:
            """NotKaleyra for an answer no Kaleyra pod gives: a redirect, a 404 that is not the
            documented envelope, a web page below 500 (at 5xx it may be a gateway's, and retried)."""
            if 300 <= status < 400 or status == 404 or (media in _PAGE_TYPES and status < 500):
                url = self.url_of(request)
                message = (
                    "this does not look like a Kaleyra server (or the wrong base URL / pod prefix): "
                    f"{request.method} {url} answered status {status}, {media or 'no Content-Type'}{what}"
                )
                return NotKaleyra(message, pointer=pointer, status=status, body=body)
            return ContractViolation(message, pointer=pointer, status=status, body=body)

        if not contract.documents(status):
            raise violation(
                f"{request.operation_id} does not document HTTP {status} (documented: {contract.statuses})",
                text,
                ", a redirect" if 300 <= status < 400 else f", which {request.operation_id} does not document",
            )
        if media != "application/json":
            raise violation(f"content type {media or 'missing'}, not application/json", text, "")
        try:
            body = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise violation("the body is not JSON (RFC 8259)", text, ", not JSON") from None
        problem = contract.problem(status, body)
        if problem is not None:
            raise violation(problem.message, body, ", not the error envelope", problem.pointer)
        if 200 <= status < 300:
            return body
        raise error_from_body(status, body, _retry_after(response))

    def _retry_delay(self, request: Request, error: KaleyraError, attempt: int) -> float | None:
        """Seconds to wait before sending `request` again, or None when it must not be."""
        if request.method not in _RETRIED_METHODS or attempt >= self.retries:
            return None
        backoff = float(min(self.max_backoff, self.backoff * 2**attempt))
        if isinstance(error, RateLimited) and error.retry_after is not None:
            # The server said when: wait that long, or give up if it is longer than we may wait.
            return error.retry_after if error.retry_after <= self.max_backoff else None
        if isinstance(error, RateLimited | ServerError):
            return backoff
        if isinstance(error, ContractViolation) and error.status in _GATEWAY_STATUSES:
            return backoff
        if isinstance(error, TransportError) and isinstance(error.__cause__, httpx.ConnectError | httpx.ConnectTimeout):
            return backoff  # nothing reached the server
        return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _redacted(error: KaleyraError, key: str) -> KaleyraError:
    """A server that echoes the key back must not put it in our exception."""

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(key, "***")
        if isinstance(value, dict):
            return {scrub(k): scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    error.message = scrub(error.message)
    error.error_message = scrub(error.error_message)
    error.body = scrub(error.body)
    error.args = tuple(scrub(a) for a in error.args)
    return error


def _checked_base_url(url: str) -> str:
    """http:// or https:// and a host, checked when the client is built: httpx would take
    `127.0.0.1:8080/in` for a URL of scheme `127.0.0.1` and fail only at the first call."""
    scheme, sep, rest = url.partition("://")
    shown = _without_userinfo(url)
    if not sep or scheme.lower() not in ("http", "https"):
        hint = f" (did you mean 'http://{url}'?)" if not sep else ""
        raise ValueError(f"base_url must start with http:// or https://, not {shown!r}{hint}")
    if not rest.partition("/")[0].rpartition("@")[2]:
        raise ValueError(f"base_url names no host: {shown!r} (e.g. http://127.0.0.1:8080/in)")
    return url.rstrip("/")


def _without_userinfo(url: str) -> str:
    """The URL without a `user:password@` before its host: what an error may show of it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"


def _finite_timeout(timeout: float | httpx.Timeout) -> httpx.Timeout:
    """Every part a finite number of seconds above 0: the generated client's default is none."""
    value = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    for part in (value.connect, value.read, value.write, value.pool):
        if part is None or not (isinstance(part, int | float) and math.isfinite(part) and part > 0):
            raise ValueError(f"timeout parts must be finite numbers of seconds above 0, not {part!r}")
    return value


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
