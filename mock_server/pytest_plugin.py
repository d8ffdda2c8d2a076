"""pytest fixtures for your own tests (registered through the `pytest11` entry point).

- `kaleyra_mock`: the mock in-process, a fresh store per test, with its control operations;
- `kaleyra_client` / `kaleyra_async_client`: the client wired to that mock, no socket;
- `kaleyra_mock_server`: a real server (granian) on a free loopback port, once per session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from kaleyra_rcs import AsyncKaleyraRCS, KaleyraRCS

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

    from .core import ControlPlane, Store

# pytest loads this module in every run of a project that installed the package, so it
# imports Flask and the mock only when a fixture is used: a client-only install still works.

__all__ = [
    "TEST_API_KEY",
    "TEST_SID",
    "KaleyraMock",
    "KaleyraMockServer",
    "kaleyra_async_client",
    "kaleyra_client",
    "kaleyra_mock",
    "kaleyra_mock_server",
]

TEST_API_KEY = "test-api-key"
TEST_SID = "TEST-SID"
_MOCK_HOST = "http://kaleyra-mock"


class KaleyraMock:
    """One in-process mock: its Flask app, test client, and control operations."""

    def __init__(self, app: Flask) -> None:
        handle = app.extensions["kaleyra_mock"]
        self.app = app
        self.control: ControlPlane = handle.control
        self.store: Store = handle.store
        self.http: FlaskClient = app.test_client()

    def base_url(self, pod: str = "in") -> str:
        return f"{_MOCK_HOST}/{pod}"

    def wsgi_transport(self) -> httpx.WSGITransport:
        return _WSGITransport(app=self.app)

    def asgi_transport(self) -> httpx.ASGITransport:
        """httpx's WSGITransport has no async side; asgiref adapts the same app to ASGI."""
        from asgiref.wsgi import WsgiToAsgi

        return _ASGITransport(app=WsgiToAsgi(self.app))  # type: ignore[no-untyped-call]

    def arm_scenario(self, scenario: str, times: int | None = 1, **match: str) -> dict[str, Any]:
        """E.g. `arm_scenario("gateway_error", times=2, pod="na", operation="deleteAgent")`."""
        return self.control.arm_scenario({"scenario": scenario, "times": times, "match": match})

    def arm_fault(
        self, fault: str, times: int | None = None, params: dict[str, Any] | None = None, **match: str
    ) -> dict[str, Any]:
        return self.control.arm_fault({"fault": fault, "times": times, "params": params or {}, "match": match})

    def reset(self) -> None:
        self.control.reset()

    def state(self) -> dict[str, Any]:
        return self.control.get_state()

    def load_state(self, document: dict[str, Any]) -> None:
        self.control.put_state(document)

    def journal(self, **filters: str) -> list[dict[str, Any]]:
        return self.control.journal(filters)


def _dropped(exc: BaseException) -> bool:
    from .web import ConnectionDropped

    return isinstance(exc, ConnectionDropped)


class _GuardedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except Exception as exc:
            if _dropped(exc):
                raise httpx.RemoteProtocolError(str(exc)) from exc
            raise

    def close(self) -> None:
        self._inner.close()


class _WSGITransport(httpx.WSGITransport):
    """In-process, the connection_reset fault raises what a socket would: RemoteProtocolError."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except Exception as exc:
            if _dropped(exc):
                raise httpx.RemoteProtocolError(str(exc), request=request) from exc
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_GuardedStream(response.stream),
            extensions=response.extensions,
        )


class _ASGITransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except Exception as exc:
            if _dropped(exc):
                raise httpx.RemoteProtocolError(str(exc), request=request) from exc
            raise


@dataclass(frozen=True)
class KaleyraMockServer:
    url: str

    @property
    def in_url(self) -> str:
        return f"{self.url}/in"

    @property
    def na_url(self) -> str:
        return f"{self.url}/na"

    def reset(self) -> None:
        httpx.post(f"{self.url}/__mock/reset", timeout=5).raise_for_status()


@pytest.fixture
def kaleyra_mock() -> KaleyraMock:
    from .web import create_app

    return KaleyraMock(create_app())


@pytest.fixture
def kaleyra_client(kaleyra_mock: KaleyraMock) -> Iterator[KaleyraRCS]:
    with KaleyraRCS(
        api_key=TEST_API_KEY,
        sid=TEST_SID,
        base_url=kaleyra_mock.base_url("in"),
        transport=kaleyra_mock.wsgi_transport(),
    ) as client:
        yield client


@pytest.fixture
def kaleyra_async_client(kaleyra_mock: KaleyraMock) -> Iterator[AsyncKaleyraRCS]:
    client = AsyncKaleyraRCS(
        api_key=TEST_API_KEY,
        sid=TEST_SID,
        base_url=kaleyra_mock.base_url("in"),
        transport=kaleyra_mock.asgi_transport(),
    )
    yield client
    asyncio.run(client.aclose())  # the ASGI transport holds no sockets: any loop can close it


@pytest.fixture(scope="session")
def kaleyra_mock_server() -> Iterator[KaleyraMockServer]:
    from .testing import start_server

    server = start_server()
    try:
        yield KaleyraMockServer(server.url)
    finally:
        server.stop()
