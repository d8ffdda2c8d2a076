"""Proxy mode against a gateway-like upstream (tests/proxy/_gateway.py): IN over HTTP, NA over TLS
with a CA of the test's own (`--upstream-ca`)."""

from __future__ import annotations

import gzip
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.proxy._gateway import TESTER, Gateway
from tests.proxy._support import HEADERS, KEY, SID, Running, raw_get, running, violations

pytestmark = pytest.mark.server

TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent"


@pytest.fixture(scope="module")
def plain() -> Iterator[Gateway]:
    gateway = Gateway().start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def tls(ca: tuple[Path, ssl.SSLContext]) -> Iterator[Gateway]:
    gateway = Gateway(context=ca[1]).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def proxy(plain: Gateway, tls: Gateway, ca: tuple[Path, ssl.SSLContext], folder: Path) -> Iterator[Running]:
    args = ["--workers", "1", "--upstream", f"in={plain.url}", "--upstream", f"na={tls.url}"]
    with running([*args, "--upstream-ca", str(ca[0])], folder, "proxy") as server:
        yield server


@pytest.mark.parametrize("pod", ["in", "na"])
def test_proxy__a_gzip_answer__reaches_the_client_as_the_raw_gzip_bytes(proxy: Running, pod: str) -> None:
    response, raw = raw_get(f"{proxy.url}/{pod}{TESTERS}?agent_number=gzip")
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert raw == gzip.compress(json.dumps([TESTER]).encode(), mtime=0)  # what the gateway sent, byte for byte
    decoded = httpx.get(f"{proxy.url}/{pod}{TESTERS}?agent_number=gzip", headers=HEADERS, timeout=10)
    assert decoded.json() == [TESTER]  # and decoded by the client itself
    assert decoded.headers["x-mock-violations"] == ""


def test_proxy__a_chunked_answer__is_passed_on_whole_with_a_length(proxy: Running) -> None:
    response, raw = raw_get(f"{proxy.url}/in{TESTERS}?agent_number=chunked")
    assert response.status_code == 200
    assert json.loads(raw) == [TESTER]
    assert response.headers["content-length"] == str(len(raw))
    assert "transfer-encoding" not in response.headers


def test_proxy__a_redirect__is_passed_back_not_followed(proxy: Running, plain: Gateway) -> None:
    before = len(plain.seen)
    answer = httpx.get(f"{proxy.url}/in{TESTERS}?agent_number=redirect", headers=HEADERS, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://example.invalid/elsewhere"
    assert violations(answer) == ['status;at="302";mark=documented']
    assert len(plain.seen) == before + 1  # asked once: never followed


def test_proxy__the_gateways_headers__are_passed_on(proxy: Running) -> None:
    answer = httpx.get(f"{proxy.url}/na{TESTERS}?agent_number=headers", headers=HEADERS, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["set-cookie"] == "session=s3cr3t-cookie; Path=/; HttpOnly"
    assert answer.headers["x-request-id"] == "req-123"
    assert answer.headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert "gateway/1.0" in answer.headers.get_list("server")


def test_proxy__a_body_that_breaks_the_schema__is_a_schema_violation_marked_assumed(proxy: Running) -> None:
    answer = httpx.get(f"{proxy.url}/in{TESTERS}?agent_number=zero", headers=HEADERS, timeout=10)
    assert answer.status_code == 200
    assert answer.json()[0]["carrierid"] == "zero"  # passed on as it came
    assert violations(answer) == ['schema;at="/0/carrierid";mark=x-assumed']


def test_proxy__an_html_error_page__is_status_content_type_and_json_violations(proxy: Running) -> None:
    answer = httpx.get(f"{proxy.url}/na{TESTERS}?agent_number=html", headers=HEADERS, timeout=10)
    assert answer.status_code == 502
    assert answer.text.startswith("<html>")
    assert answer.headers["x-mock-source"] == "proxy"  # the upstream's 502, not the proxy's own
    assert violations(answer) == [
        'status;at="502";mark=documented',
        'content-type;at="text/html";mark=documented',
        'json;at="/";mark=documented',
    ]


def test_proxy__the_request__is_forwarded_as_it_came_with_the_upstreams_host(proxy: Running, plain: Gateway) -> None:
    answer = httpx.post(
        f"{proxy.url}/in{TESTERS}?agent_number=echo&x=%2F%20",
        headers={**HEADERS, "Prefer": "example=testers", "Connection": "keep-alive, X-Hop", "X-Hop": "1"},
        content=b'{"agent_number": "echo"}',
        timeout=10,
    )
    assert answer.status_code == 200
    seen = plain.seen[-1]
    headers = {k.lower(): v for k, v in seen.headers}
    assert (seen.method, seen.path) == ("POST", f"{TESTERS}?agent_number=echo&x=%2F%20")
    assert seen.body == b'{"agent_number": "echo"}'
    assert headers["api-key"] == KEY
    assert headers["prefer"] == "example=testers"
    assert headers["host"] == plain.url.removeprefix("http://")
    assert "x-hop" not in headers  # named in Connection: hop-by-hop
