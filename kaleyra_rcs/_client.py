"""KaleyraRCS and AsyncKaleyraRCS: the generated request shapes, checked answers, typed errors.

The generated functions' own `sync_detailed` parse before anything can be checked (and
accept wrong types silently), so the facade builds the request with the generated
`_get_kwargs`, sends it itself, and validates every answer against the packaged spec.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx

from ._errors import (
    ContractViolation,
    GatewayError,
    InternalServerError,
    KaleyraError,
    RateLimited,
    TransportError,
    error_from_body,
)
from ._generated.api.agents import delete_agent as _delete_agent
from ._generated.api.testers import get_testers_by_agent as _get_testers_by_agent
from ._generated.models import DeleteAgentResponse, Tester
from ._pods import POD_BASE_URLS, Pod
from ._spec import contract_for

__all__ = ["DEFAULT_TIMEOUT", "AsyncKaleyraRCS", "DeleteAgentResult", "KaleyraRCS"]

log = logging.getLogger("kaleyra_rcs")

DeleteAgentResult = DeleteAgentResponse
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_GATEWAY_STATUSES = frozenset({502, 503, 504})
Operation = Literal["getTestersByAgent", "deleteAgent"]


class _Base:
    """What both clients share: configuration, and turning an answer into a result or an error."""

    def __init__(
        self,
        *,
        api_key: str,
        sid: str,
        pod: Pod = "in",
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 0,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
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
        self.base_url = (base_url or POD_BASE_URLS[pod]).rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._timeout = _finite_timeout(timeout)
        self._headers = {"api-key": api_key, "Content-Type": "application/json", "Accept": "application/json"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, sid={self.sid!r}, api_key='***')"

    @classmethod
    def _env_kwargs(cls, env: dict[str, str] | None) -> dict[str, Any]:
        env = dict(os.environ) if env is None else env
        missing = [name for name in ("KALEYRA_API_KEY", "KALEYRA_SID") if not env.get(name)]
        if missing:
            raise ValueError(f"set {' and '.join(missing)} in the environment")
        pod = env.get("KALEYRA_POD") or "in"
        return {
            "api_key": env["KALEYRA_API_KEY"],
            "sid": env["KALEYRA_SID"],
            "pod": pod.lower(),
            "base_url": env.get("KALEYRA_BASE_URL") or None,
        }

    # -- requests ----------------------------------------------------------------------

    def _testers_kwargs(self, agent_number: str) -> dict[str, Any]:
        return _get_testers_by_agent._get_kwargs(sid=self.sid, agent_number=_check_agent_number(agent_number))

    def _delete_kwargs(self, agent_number: str) -> dict[str, Any]:
        return _delete_agent._get_kwargs(sid=self.sid, agent_number=_check_agent_number(agent_number))

    # -- answers -----------------------------------------------------------------------

    def _interpret(self, operation: Operation, response: httpx.Response) -> Any:
        """The validated body of a 2xx; raises the typed error of a documented failure."""
        try:
            return self._check(operation, response)
        except KaleyraError as error:
            raise _redacted(error, self._headers["api-key"]) from None

    def _check(self, operation: Operation, response: httpx.Response) -> Any:
        contract = contract_for(operation)
        status = response.status_code
        log.debug("%s %s -> %s", response.request.method, response.request.url.path, status)
        raw = response.content
        text = raw.decode("utf-8", "replace")
        if not contract.documents(status):
            raise ContractViolation(
                f"{operation} does not document HTTP {status} (documented: {contract.statuses})",
                status=status,
                body=text,
            )
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise ContractViolation(
                f"content type {media or 'missing'}, not application/json", status=status, body=text
            )
        try:
            body = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise ContractViolation("the body is not JSON (RFC 8259)", status=status, body=text) from None
        problem = contract.problem(status, body)
        if problem is not None:
            raise ContractViolation(problem.message, pointer=problem.pointer, status=status, body=body)
        if 200 <= status < 300:
            return body
        raise error_from_body(status, body, _retry_after(response))

    @staticmethod
    def _testers(body: Any) -> list[Tester]:
        return [Tester.from_dict(item) for item in body]

    @staticmethod
    def _deleted(body: Any) -> DeleteAgentResult:
        return DeleteAgentResponse.from_dict(body)

    def _retry_delay(self, error: KaleyraError, attempt: int) -> float | None:
        """Seconds to wait before retrying a GET, or None when it must not be retried."""
        if attempt >= self.retries:
            return None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            # The server said when: wait that long, or give up if it is longer than we may wait.
            return error.retry_after if error.retry_after <= self.max_backoff else None
        if isinstance(error, RateLimited):
            return float(min(self.max_backoff, self.backoff * 2**attempt))
        if (
            isinstance(error, GatewayError | InternalServerError)
            # a proxy's or load balancer's 502/503/504 is no Kaleyra answer, but it is transient
            or (isinstance(error, ContractViolation) and error.status in _GATEWAY_STATUSES)
            or (
                isinstance(error, TransportError)
                and isinstance(error.__cause__, httpx.ConnectError | httpx.ConnectTimeout)
            )
        ):
            return float(min(self.max_backoff, self.backoff * 2**attempt))
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


def _finite_timeout(timeout: float | httpx.Timeout) -> httpx.Timeout:
    """Every part a finite number of seconds above 0: the generated client's default is none."""
    value = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    for part in (value.connect, value.read, value.write, value.pool):
        if part is None or not (isinstance(part, int | float) and math.isfinite(part) and part > 0):
            raise ValueError(f"timeout parts must be finite numbers of seconds above 0, not {part!r}")
    return value


def _check_agent_number(agent_number: str) -> str:
    """`.` and `..` survive URL quoting as dot segments and would address another path."""
    if agent_number in {".", ".."}:
        raise ValueError(f"{agent_number!r} is not an agent number")
    return agent_number


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _transport_error(exc: httpx.HTTPError) -> TransportError:
    # httpx messages name the URL at most; headers (and so the api key) never appear in them.
    return TransportError(f"{type(exc).__name__}: {exc}")


class KaleyraRCS(_Base):
    """The synchronous client. `transport=` routes it anywhere, e.g. to the mock in-process."""

    def __init__(
        self,
        *,
        api_key: str,
        sid: str,
        pod: Pod = "in",
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        retries: int = 0,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            api_key=api_key,
            sid=sid,
            pod=pod,
            base_url=base_url,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=self._timeout, transport=transport
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **kwargs: Any) -> KaleyraRCS:
        """KALEYRA_API_KEY, KALEYRA_SID, KALEYRA_POD (in|na), KALEYRA_BASE_URL."""
        return cls(**{**cls._env_kwargs(env), **kwargs})

    def __enter__(self) -> KaleyraRCS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, kwargs: dict[str, Any]) -> httpx.Response:
        try:
            return self._http.request(**kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc

    def get_testers_by_agent(self, agent_number: str) -> list[Tester]:
        """GET testersbyagent; retried (when `retries` > 0) on 5xx, 429 and connect errors."""
        attempt = 0
        while True:
            try:
                body = self._interpret("getTestersByAgent", self._send(self._testers_kwargs(agent_number)))
                return self._testers(body)
            except KaleyraError as error:
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise
                log.info("get_testers_by_agent: retrying after %s (attempt %d)", type(error).__name__, attempt + 1)
                self._sleep(delay)
                attempt += 1

    def delete_agent(self, agent_number: str) -> DeleteAgentResult:
        """DELETE an agent. Never retried: a lost answer may hide a delete that happened."""
        return self._deleted(self._interpret("deleteAgent", self._send(self._delete_kwargs(agent_number))))


class AsyncKaleyraRCS(_Base):
    """The asynchronous client; the same behaviour as KaleyraRCS."""

    def __init__(
        self,
        *,
        api_key: str,
        sid: str,
        pod: Pod = "in",
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int = 0,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            api_key=api_key,
            sid=sid,
            pod=pod,
            base_url=base_url,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=self._timeout, transport=transport
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **kwargs: Any) -> AsyncKaleyraRCS:
        """KALEYRA_API_KEY, KALEYRA_SID, KALEYRA_POD (in|na), KALEYRA_BASE_URL."""
        return cls(**{**cls._env_kwargs(env), **kwargs})

    async def __aenter__(self) -> AsyncKaleyraRCS:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, kwargs: dict[str, Any]) -> httpx.Response:
        try:
            return await self._http.request(**kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc

    async def get_testers_by_agent(self, agent_number: str) -> list[Tester]:
        attempt = 0
        while True:
            try:
                response = await self._send(self._testers_kwargs(agent_number))
                return self._testers(self._interpret("getTestersByAgent", response))
            except KaleyraError as error:
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise
                log.info("get_testers_by_agent: retrying after %s (attempt %d)", type(error).__name__, attempt + 1)
                await self._sleep(delay)
                attempt += 1

    async def delete_agent(self, agent_number: str) -> DeleteAgentResult:
        response = await self._send(self._delete_kwargs(agent_number))
        return self._deleted(self._interpret("deleteAgent", response))
