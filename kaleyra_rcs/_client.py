"""KaleyraRCS and AsyncKaleyraRCS: two drivers of the one core in `_core.py`.

All either does is I/O: send what a flow yields on its httpx client, sleep when it asks,
hand back what came of it. Building, checking, raising and retrying are the core's.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from ._adapter import DeleteAgentResponse, Request, Tester
from ._core import DEFAULT_TIMEOUT, Core, Flow, Reply, Sleep, env_settings
from ._pods import Pod

__all__ = ["DEFAULT_TIMEOUT", "AsyncKaleyraRCS", "DeleteAgentResult", "KaleyraRCS"]

T = TypeVar("T")
DeleteAgentResult = DeleteAgentResponse


class _Facade:
    """The settings both clients show (read from the core) and the key-free repr."""

    _core: Core

    @property
    def sid(self) -> str:
        return self._core.sid

    @property
    def pod(self) -> Pod:
        return self._core.pod

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def retries(self) -> int:
        return self._core.retries

    @property
    def backoff(self) -> float:
        return self._core.backoff

    @property
    def max_backoff(self) -> float:
        return self._core.max_backoff

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, sid={self.sid!r}, api_key='***')"


class KaleyraRCS(_Facade):
    """The synchronous client. `transport=` routes it anywhere, e.g. to the mock in-process;
    `spec=` checks answers against another copy of openapi.yaml than the packaged one."""

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
        spec: str | os.PathLike[str] | None = None,
    ) -> None:
        self._core = Core(
            api_key=api_key,
            sid=sid,
            pod=pod,
            base_url=base_url,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            spec=spec,
        )
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self._core.base_url, headers=self._core.headers, timeout=self._core.timeout, transport=transport
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> KaleyraRCS:
        """KALEYRA_API_KEY, KALEYRA_SID, KALEYRA_POD (in|na), KALEYRA_BASE_URL; keywords win."""
        return cls(**{**env_settings(env), **kwargs})

    def __enter__(self) -> KaleyraRCS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get_testers_by_agent(self, agent_number: str) -> list[Tester]:
        """GET testersbyagent; retried (when `retries` > 0) on 5xx, 429 and connect errors."""
        return self._drive(self._core.get_testers_by_agent(agent_number))

    def delete_agent(self, agent_number: str) -> DeleteAgentResult:
        """DELETE an agent. Never retried: a lost answer may hide a delete that happened."""
        return self._drive(self._core.delete_agent(agent_number))

    def _drive(self, flow: Flow[T]) -> T:
        reply: Reply | None = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Sleep):
                self._sleep(step.seconds)
                reply = None
            else:
                reply = self._send(step.request)

    def _send(self, request: Request) -> Reply:
        try:
            return self._http.request(request.method, request.url, params=request.params)
        except httpx.HTTPError as exc:
            return exc


class AsyncKaleyraRCS(_Facade):
    """The asynchronous client: the same core, the same behaviour as KaleyraRCS, awaited."""

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
        spec: str | os.PathLike[str] | None = None,
    ) -> None:
        self._core = Core(
            api_key=api_key,
            sid=sid,
            pod=pod,
            base_url=base_url,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            spec=spec,
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self._core.base_url, headers=self._core.headers, timeout=self._core.timeout, transport=transport
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> AsyncKaleyraRCS:
        """KALEYRA_API_KEY, KALEYRA_SID, KALEYRA_POD (in|na), KALEYRA_BASE_URL; keywords win."""
        return cls(**{**env_settings(env), **kwargs})

    async def __aenter__(self) -> AsyncKaleyraRCS:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_testers_by_agent(self, agent_number: str) -> list[Tester]:
        """GET testersbyagent; retried (when `retries` > 0) on 5xx, 429 and connect errors."""
        return await self._drive(self._core.get_testers_by_agent(agent_number))

    async def delete_agent(self, agent_number: str) -> DeleteAgentResult:
        """DELETE an agent. Never retried: a lost answer may hide a delete that happened."""
        return await self._drive(self._core.delete_agent(agent_number))

    async def _drive(self, flow: Flow[T]) -> T:
        reply: Reply | None = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Sleep):
                await self._sleep(step.seconds)
                reply = None
            else:
                reply = await self._send(step.request)

    async def _send(self, request: Request) -> Reply:
        try:
            return await self._http.request(request.method, request.url, params=request.params)
        except httpx.HTTPError as exc:
            return exc
