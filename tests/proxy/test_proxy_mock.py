"""Proxy mode with a second real mock as the upstream: both pods, listed keys, and `--error-layout error`
(the layout the proxy itself does not use)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.proxy._support import HEADERS, KEY, SID, Running, end_to_end, journal, running, seed_file, violations

pytestmark = pytest.mark.server

TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent"


@pytest.fixture(scope="module")
def upstream(folder: Path) -> Iterator[Running]:
    args = ["--workers", "1", "--error-layout", "error", "--seed", str(seed_file(folder))]
    with running(args, folder, "upstream") as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: Running, folder: Path) -> Iterator[Running]:
    args = ["--workers", "2", "--upstream", f"in={upstream.url}/in", "--upstream", f"na={upstream.url}/na"]
    with running(args, folder, "proxy") as server:
        yield server


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (f"/in{TESTERS}?agent_number=48900", HEADERS),
        (f"/na{TESTERS}?agent_number=99404", HEADERS),  # a magic agent: 400 agent_not_found, error layout
        (f"/na{TESTERS}?agent_number=48900", {"Content-Type": "application/json"}),  # no key: 401
        (f"/in{TESTERS}?agent_number=48900", {**HEADERS, "api-key": "not-the-key"}),  # refused by the upstream
        ("/in/no/such/path", HEADERS),
    ],
)
def test_proxy__answers_equal_the_upstreams_byte_for_byte(
    proxy: Running, upstream: Running, path: str, headers: dict[str, str]
) -> None:
    direct = httpx.get(upstream.url + path, headers=headers, timeout=10)
    proxied = httpx.get(proxy.url + path, headers=headers, timeout=10)
    assert (proxied.status_code, proxied.content) == (direct.status_code, direct.content)
    # Two requests, maybe a second apart: Date is what may differ (the gateway's tests see it passed on).
    assert sorted(h for h in end_to_end(proxied.headers) if h[0] != "date") == sorted(
        h for h in end_to_end(direct.headers) if h[0] != "date"
    )
    assert proxied.headers["x-mock-source"] == "proxy"
    assert proxied.headers.get("x-mock-example") == direct.headers.get("x-mock-example")


def test_proxy__documented_answers_carry_no_violation_and_say_their_example(proxy: Running) -> None:
    ok = httpx.get(f"{proxy.url}/in{TESTERS}", params={"agent_number": "48900"}, headers=HEADERS, timeout=10)
    assert ok.status_code == 200
    assert ok.headers["x-mock-violations"] == ""
    assert ok.headers["x-mock-example"] == "testers"
    refused = httpx.get(f"{proxy.url}/na{TESTERS}", params={"agent_number": "99404"}, headers=HEADERS, timeout=10)
    assert refused.status_code == 400
    assert refused.json()["error"]["error_code"] == "PROV_ERROR"  # the upstream's layout, not the proxy's
    assert refused.headers["x-mock-violations"] == ""
    assert refused.headers["x-mock-example"] == "agent_not_found"


def test_proxy__a_path_of_no_operation__is_forwarded_and_named_a_violation(proxy: Running) -> None:
    answer = httpx.get(f"{proxy.url}/in/no/such/path", headers=HEADERS, timeout=10)
    assert answer.status_code == 404
    assert violations(answer) == ['operation;at="GET /no/such/path";mark=documented']


def test_proxy__a_broken_answer__is_passed_on_and_named_a_violation(proxy: Running, upstream: Running) -> None:
    """The upstream is a mock: a `malformed_body` fault armed on it cuts its answer in half."""
    armed = httpx.post(f"{upstream.url}/__mock/faults", json={"fault": "malformed_body", "times": 1}, timeout=10)
    assert armed.status_code == 201
    answer = httpx.get(f"{proxy.url}/in{TESTERS}", params={"agent_number": "48900"}, headers=HEADERS, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["x-mock-source"] == "proxy"
    assert violations(answer) == ['json;at="/";mark=x-assumed']
    assert "x-mock-example" not in answer.headers


def test_proxy__the_journal_entry__says_proxy_operation_status_example_and_upstream(
    proxy: Running, upstream: Running
) -> None:
    httpx.delete(f"{proxy.url}/__mock/journal", timeout=10)
    answer = httpx.get(f"{proxy.url}/na{TESTERS}", params={"agent_number": "48900"}, headers=HEADERS, timeout=10)
    assert answer.status_code == 200
    [entry] = journal(proxy.url)
    assert entry["source"] == "proxy"
    assert entry["operation"] == "getTestersByAgent"
    assert (entry["pod"], entry["path"], entry["sid"], entry["status"]) == ("na", TESTERS, SID, 200)
    assert entry["example"] == "testers"
    assert entry["violations"] == []
    assert entry["upstream"] == f"{upstream.url}/na"
    assert isinstance(entry["elapsed_ms"], float)
    assert entry["api_key"] == "sha256:" + __import__("hashlib").sha256(KEY.encode()).hexdigest()[:8]


def test_proxy__the_control_plane_stays_local(proxy: Running, upstream: Running) -> None:
    """A reset of the proxy resets the proxy: the upstream's armed fault is still there after it."""
    armed = httpx.post(f"{upstream.url}/__mock/faults", json={"fault": "latency", "params": {"ms": 0}}, timeout=10)
    assert armed.status_code == 201
    try:
        assert httpx.post(f"{proxy.url}/__mock/reset", timeout=10).status_code == 200
        assert httpx.get(f"{upstream.url}/__mock/health", timeout=10).json()["faults_armed"] == 1
        health = httpx.get(f"{proxy.url}/__mock/health", timeout=10).json()
        assert health["proxy"]["upstreams"] == {"in": f"{upstream.url}/in", "na": f"{upstream.url}/na"}
        assert health["proxy"]["recording"] is None
    finally:
        httpx.delete(f"{upstream.url}/__mock/faults", timeout=10)


def test_proxy__a_delete_goes_to_the_upstream_and_changes_its_state(proxy: Running, upstream: Running) -> None:
    url = f"/na/v1/{SID}/rcs/agent/48401"
    first = httpx.delete(proxy.url + url, headers=HEADERS, timeout=10)
    assert (first.status_code, first.headers["x-mock-example"]) == (200, "agent_deleted")
    again = httpx.delete(upstream.url + url, headers=HEADERS, timeout=10)  # asked directly: already gone
    assert (again.status_code, again.headers["x-mock-example"]) == (400, "agent_not_found")
    assert [e["source"] for e in journal(upstream.url, operation="deleteAgent", limit="2")] == ["state", "state"]


def test_proxy__a_post_body_and_its_query__reach_the_upstream(proxy: Running) -> None:
    answer = httpx.post(f"{proxy.url}/in{TESTERS}", json={"agent_number": "48900"}, headers=HEADERS, timeout=10)
    assert (answer.status_code, answer.headers["x-mock-example"]) == (200, "testers")
    assert answer.headers["x-mock-violations"] == ""
