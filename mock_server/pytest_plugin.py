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

from ._extra import IN_PROCESS, SERVER, missing_extra, require_extra

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

    def wsgi_transport(self) -> httpx.BaseTransport:
        """For `httpx.Client` (and `KaleyraRCS`): the app called in-process, as the server calls it."""
        from .web._inprocess import InProcessTransport

        return InProcessTransport(self.app)

    def asgi_transport(self) -> httpx.AsyncBaseTransport:
        """For `httpx.AsyncClient` (and `AsyncKaleyraRCS`): the app called on the event loop's
        thread, as the server calls it (the name is from when asgiref adapted it to ASGI)."""
        from .web._inprocess import AsyncInProcessTransport

        return AsyncInProcessTransport(self.app)

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


@dataclass(frozen=True)
class KaleyraMockServer:
    """The `kaleyra_mock_server` fixture: a running server's root URL and its pods."""

    url: str

    @property
    def in_url(self) -> str:
        return f"{self.url}/in"

    @property
    def na_url(self) -> str:
        return f"{self.url}/na"

    def reset(self) -> None:
        httpx.post(f"{self.url}/__mock/reset", timeout=5).raise_for_status()


def _require_mock(request: pytest.FixtureRequest, *modules: str) -> None:
    """Without the `[mock]` extra, one line naming it (no traceback), not flask's ModuleNotFoundError.
    It names the fixture the test asked for: `kaleyra_client` builds on `kaleyra_mock` unseen."""
    try:
        require_extra(*modules)
        return
    except ModuleNotFoundError as exc:
        asked = next((name for name in _CLIENTS if name in request.fixturenames), request.fixturename)
        line = missing_extra(asked or "this fixture", exc)
        if line is None:
            raise
    pytest.fail(line, pytrace=False)  # outside `except`: pytest would print the import error above it


_CLIENTS = ("kaleyra_async_client", "kaleyra_client")


@pytest.fixture
def kaleyra_mock(request: pytest.FixtureRequest) -> KaleyraMock:
    """The mock in-process (no socket, no thread), a fresh store per test.

    `arm_scenario(name, times=1, pod=..., operation=...)`, `arm_fault`, `reset`, `state`, `load_state`,
    `journal(**filters)`; `base_url(pod)` with `wsgi_transport()` / `asgi_transport()` for a client of
    your own. Needs the `[mock]` extra."""
    _require_mock(request, *IN_PROCESS)
    from .web import create_app

    return KaleyraMock(create_app())


@pytest.fixture
def kaleyra_client(kaleyra_mock: KaleyraMock) -> Iterator[KaleyraRCS]:
    """A `KaleyraRCS` wired to `kaleyra_mock` (same test, same store): SID TEST-SID, IN pod.

    The facade is the real one: answers are checked against openapi.yaml and errors are typed, as
    against Kaleyra. Needs the `[mock]` extra."""
    with KaleyraRCS(
        api_key=TEST_API_KEY,
        sid=TEST_SID,
        base_url=kaleyra_mock.base_url("in"),
        transport=kaleyra_mock.wsgi_transport(),
    ) as client:
        yield client


@pytest.fixture
def kaleyra_async_client(request: pytest.FixtureRequest, kaleyra_mock: KaleyraMock) -> Iterator[AsyncKaleyraRCS]:
    """An `AsyncKaleyraRCS` wired to `kaleyra_mock`: SID TEST-SID, IN pod, awaited in the test.

    A plain (sync) fixture, so it serves `@pytest.mark.anyio` and `@pytest.mark.asyncio`
    (pytest-asyncio) tests alike, whatever their loop scope. Needs the `[mock]` extra."""
    _require_mock(request, *IN_PROCESS)
    client = AsyncKaleyraRCS(
        api_key=TEST_API_KEY,
        sid=TEST_SID,
        base_url=kaleyra_mock.base_url("in"),
        transport=kaleyra_mock.asgi_transport(),
    )
    yield client
    # The ASGI transport holds no sockets, so any loop can close it; a private one, because
    # asyncio.run would leave this thread with no current loop, under a pytest-asyncio test's feet.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(client.aclose())
    finally:
        loop.close()


@pytest.fixture(scope="session")
def kaleyra_mock_server(request: pytest.FixtureRequest) -> Iterator[KaleyraMockServer]:
    """The real server (granian, two pods, a subprocess) on a free loopback port, once per session.

    `.url`, `.in_url`, `.na_url` for any HTTP client, `.reset()` between tests (the state is
    shared); stopped at the end of the session. Needs the `[mock]` extra."""
    _require_mock(request, *SERVER)
    from .testing import start_server

    server = start_server()
    try:
        yield KaleyraMockServer(server.url)
    finally:
        server.stop()
