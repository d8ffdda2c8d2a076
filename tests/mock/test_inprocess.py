"""The in-process transports (`KaleyraMock.wsgi_transport()`, `.asgi_transport()`): the one app,
called as the server calls it, so a suite in-process sees what it would over a socket."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_server.pytest_plugin import KaleyraMock
from mock_server.web import create_app

SID = "INPROC-SID"
KEY = "inproc-key"
TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent"
HEADERS = {"api-key": KEY, "Content-Type": "application/json"}


@pytest.fixture
def mock() -> KaleyraMock:
    return KaleyraMock(create_app())


@pytest.fixture
def sync_http(mock: KaleyraMock) -> Iterator[httpx.Client]:
    with httpx.Client(transport=mock.wsgi_transport(), base_url=mock.base_url("in")) as client:
        yield client


def _async_http(mock: KaleyraMock) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=mock.asgi_transport(), base_url=mock.base_url("in"))


def _get(client: httpx.Client, headers: Any = HEADERS) -> httpx.Response:
    return client.get(TESTERS, params={"agent_number": "48900"}, headers=headers)


def test_sync_transport__answers_as_the_server(sync_http: httpx.Client) -> None:
    answer = _get(sync_http)
    assert answer.status_code == 200
    assert answer.headers["x-mock-source"] == "state"
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert isinstance(answer.json(), list)


def test_transports__an_api_key_spelled_with_an_underscore_is_not_read(sync_http: httpx.Client) -> None:
    """As on the server (granian's bridge, gunicorn, nginx): `api_key` is dropped, never read as `api-key`."""
    answer = _get(sync_http, {"api_key": KEY, "Content-Type": "application/json"})
    assert answer.status_code == 401
    assert answer.json()["data"]["error"]["error_code"] == "UNAUTHORIZED"


def test_transports__an_api_key_sent_twice_is_refused(sync_http: httpx.Client) -> None:
    """Repeated field lines are joined with commas (RFC 9110 section 5.3), as the server joins them."""
    headers = httpx.Headers([("api-key", KEY), ("api-key", "other"), ("Content-Type", "application/json")])
    answer = _get(sync_http, headers)
    assert answer.status_code == 400
    assert answer.json()["data"]["error"]["error_code"] == "INVALID_REQUEST"


def test_sync_transport__connection_reset_raises_what_a_socket_would(
    mock: KaleyraMock, sync_http: httpx.Client
) -> None:
    mock.arm_fault("connection_reset", times=1)
    with pytest.raises(httpx.RemoteProtocolError, match="connection dropped"):
        _get(sync_http)
    assert _get(sync_http).status_code == 200  # armed once


@pytest.mark.anyio
async def test_async_transport__connection_reset_raises_what_a_socket_would(mock: KaleyraMock) -> None:
    mock.arm_fault("connection_reset", times=1)
    async with _async_http(mock) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="connection dropped"):
            await client.get(TESTERS, params={"agent_number": "48900"}, headers=HEADERS)
        again = await client.get(TESTERS, params={"agent_number": "48900"}, headers=HEADERS)
        assert again.status_code == 200


@pytest.mark.anyio
async def test_async_transport__runs_the_api_on_the_loops_thread(mock: KaleyraMock) -> None:
    """No thread hop per request: the engine answers on the thread that awaits the call."""
    seen: list[str] = []
    handle = mock.app.extensions["kaleyra_mock"]
    engine_handle = handle.engine.handle

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return engine_handle(*args, **kwargs)

    handle.engine.handle = spy
    async with _async_http(mock) as client:
        answer = await client.get(TESTERS, params={"agent_number": "48900"}, headers=HEADERS)
    assert answer.status_code == 200
    assert seen == [threading.current_thread().name]


@pytest.mark.anyio
async def test_async_transport__a_latency_fault_is_awaited_and_holds_up_no_other_request(mock: KaleyraMock) -> None:
    mock.arm_fault("latency", times=1, params={"ms": 400}, agent_number="48900")
    async with _async_http(mock) as client:
        finished: dict[str, float] = {}
        started = time.perf_counter()

        async def call(agent: str) -> int:
            answer = await client.get(TESTERS, params={"agent_number": agent}, headers=HEADERS)
            finished[agent] = time.perf_counter() - started
            return answer.status_code

        statuses = await asyncio.gather(call("48900"), *(call("48400") for _ in range(3)))
    assert statuses == [200, 200, 200, 200]
    assert finished["48900"] >= 0.4
    assert finished["48400"] < finished["48900"]  # answered while the delayed one waited


@pytest.mark.anyio
async def test_async_transport__the_control_plane_answers_over_http(mock: KaleyraMock) -> None:
    async with _async_http(mock) as client:
        armed = await client.post(
            "http://kaleyra-mock/__mock/scenarios", json={"scenario": "agent_not_found", "times": 1}
        )
        assert armed.status_code == 201, armed.text
        answer = await client.delete(f"/v1/{SID}/rcs/agent/48900", headers=HEADERS)
    assert answer.status_code == 400
    assert answer.headers["x-mock-example"] == "agent_not_found"
