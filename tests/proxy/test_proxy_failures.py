"""What the proxy answers when its upstream fails: its own 502 or 504 in Kaleyra's error envelope,
`X-Mock-Source: proxy-error`, in bounded time, never a 500."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mock_server.testing import free_port
from tests.proxy._gateway import Gateway, Silent
from tests.proxy._support import HEADERS, SID, Running, journal, running

pytestmark = pytest.mark.server

TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent?agent_number=48900"


@pytest.fixture(scope="module")
def silent() -> Iterator[Silent]:
    upstream = Silent()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def proxy(silent: Silent, folder: Path) -> Iterator[Running]:
    """IN goes to a closed port, NA to an upstream that never answers."""
    args = ["--workers", "1", "--upstream-timeout", "1"]
    args += ["--upstream", f"in=http://127.0.0.1:{free_port()}", "--upstream", f"na={silent.url}"]  # in: closed
    with running(args, folder, "failing") as server:
        yield server


def _own_error(answer: httpx.Response, status: int, code: str, constant: str) -> str:
    assert answer.status_code == status
    assert answer.headers["x-mock-source"] == "proxy-error"
    body = answer.json()
    assert (body["code"], body["data"]["error"]["error_code"]) == (code, constant)
    message: str = body["data"]["error"]["error_message"]
    assert "127.0.0.1" in message  # the upstream's host
    return message


def test_proxy__upstream_refused__answers_502(proxy: Running) -> None:
    started = time.monotonic()
    answer = httpx.get(f"{proxy.url}/in{TESTERS}", headers=HEADERS, timeout=10)
    assert time.monotonic() - started < 3
    assert "connection refused" in _own_error(answer, 502, "MOCK502", "UPSTREAM_UNREACHABLE")
    assert answer.headers["x-mock-example"] == "upstream_unreachable"
    [entry] = journal(proxy.url, status="502", limit="1")
    assert (entry["source"], entry["operation"], entry["example"]) == (
        "proxy-error",
        "getTestersByAgent",
        "upstream_unreachable",
    )


def test_proxy__upstream_never_answers__answers_504_after_the_timeout(proxy: Running) -> None:
    started = time.monotonic()
    answer = httpx.get(f"{proxy.url}/na{TESTERS}", headers=HEADERS, timeout=10)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 4
    assert "within 1 s" in _own_error(answer, 504, "MOCK504", "UPSTREAM_TIMEOUT")


def test_proxy__a_hanging_upstream__keeps_neither_the_api_nor_the_control_plane_waiting(proxy: Running) -> None:
    """Proxied requests wait on the bridge's threads: the loop answers the control plane meanwhile."""
    with httpx.Client(timeout=10) as client:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            waiting = [pool.submit(client.get, f"{proxy.url}/na{TESTERS}", headers=HEADERS) for _ in range(8)]
            time.sleep(0.2)
            started = time.monotonic()
            assert client.get(f"{proxy.url}/__mock/health").status_code == 200
            assert time.monotonic() - started < 0.5
            assert [f.result().status_code for f in waiting] == [504] * 8


def test_proxy__tls_without_the_ca__answers_502_naming_tls(ca: tuple[Path, ssl.SSLContext], folder: Path) -> None:
    gateway = Gateway(context=ca[1]).start()
    try:
        with running(["--workers", "1", "--upstream", f"in={gateway.url}"], folder, "no-ca") as proxy:
            answer = httpx.get(f"{proxy.url}/in{TESTERS}", headers=HEADERS, timeout=10)
            assert "TLS" in _own_error(answer, 502, "MOCK502", "UPSTREAM_UNREACHABLE")
    finally:
        gateway.stop()


def test_proxy__upstream_stopped_mid_run__answers_502(folder: Path) -> None:
    gateway = Gateway().start()
    try:
        with running(["--workers", "1", "--upstream", f"in={gateway.url}"], folder, "stopped") as proxy:
            assert httpx.get(f"{proxy.url}/in{TESTERS}", headers=HEADERS, timeout=10).status_code == 200
            gateway.stop()
            for _ in range(2):  # a kept-alive connection first, then a new one
                answer = httpx.get(f"{proxy.url}/in{TESTERS}", headers=HEADERS, timeout=10)
                _own_error(answer, 502, "MOCK502", "UPSTREAM_UNREACHABLE")
    finally:
        gateway.stop()
