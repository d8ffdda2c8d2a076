"""--record: every proxied exchange appended to a cassette (core/_cassette.py), masked by default,
bounded, written by several workers at once, and never holding the api key."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mock_server.core import key_fingerprint, read_cassette
from tests.proxy._gateway import Gateway
from tests.proxy._support import HEADERS, KEY, SID, Running, journal, running

pytestmark = pytest.mark.server

TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent"
PHONE = "+919876543210"  # the gateway's tester's number


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    upstream = Gateway().start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def recording(gateway: Gateway, folder: Path) -> Iterator[tuple[Running, Path]]:
    cassette = folder / "masked.jsonl"
    args = ["--workers", "2", "--log-level", "debug", "--upstream", f"in={gateway.url}", "--record", str(cassette)]
    with running(args, folder, "recording") as server:
        yield server, cassette


def test_record__lines_parse_and_hold_the_fingerprint_never_the_key(recording: tuple[Running, Path]) -> None:
    server, cassette = recording
    for agent in ("gzip", "headers", "zero", "email"):
        httpx.get(f"{server.url}/in{TESTERS}", params={"agent_number": agent}, headers=HEADERS, timeout=10)
    exchanges, skipped = read_cassette(cassette)  # readable while the server runs
    assert skipped == []
    by_agent = {e.request.query.split("=", 1)[1]: e for e in exchanges if e.request.query.startswith("agent_number=")}
    assert {"gzip", "headers", "zero", "email"} <= set(by_agent)
    zero = by_agent["zero"]
    assert zero.request.api_key == key_fingerprint(KEY)
    assert (zero.operation, zero.response.status, zero.request.path) == ("getTestersByAgent", 200, TESTERS)
    assert [v.kind for v in zero.violations] == ["schema"]
    assert by_agent["gzip"].response.header("content-encoding") == "gzip"
    for text in (cassette.read_text(), json.dumps(journal(server.url)), server.log()):
        assert KEY not in text


def test_record__personal_data_is_masked_by_default(recording: tuple[Running, Path]) -> None:
    server, cassette = recording
    httpx.get(f"{server.url}/in{TESTERS}", params={"agent_number": "headers"}, headers=HEADERS, timeout=10)
    text = cassette.read_text()
    assert PHONE not in text and "9876543210" not in text
    assert "ops@example.com" not in text
    assert "s3cr3t-cookie" not in text
    exchanges, _ = read_cassette(cassette)
    assert all(e.masked for e in exchanges)


def test_record__keep_personal_data__keeps_it(gateway: Gateway, folder: Path) -> None:
    cassette = folder / "kept.jsonl"
    args = ["--workers", "1", "--upstream", f"in={gateway.url}", "--record", str(cassette), "--keep-personal-data"]
    with running(args, folder, "kept") as server:
        for agent in ("headers", "email"):
            httpx.get(f"{server.url}/in{TESTERS}", params={"agent_number": agent}, headers=HEADERS, timeout=10)
    text = cassette.read_text()
    assert PHONE in text and "ops@example.com" in text and "s3cr3t-cookie" in text
    assert KEY not in text
    assert not any(e.masked for e in read_cassette(cassette)[0])


def test_record__a_full_cassette__stops_recording_and_proxying_goes_on(gateway: Gateway, folder: Path) -> None:
    cassette = folder / "small.jsonl"
    args = ["--workers", "1", "--upstream", f"in={gateway.url}", "--record", str(cassette), "--record-limit", "3000"]
    with running(args, folder, "small") as server:
        answers = [
            httpx.get(f"{server.url}/in{TESTERS}", params={"agent_number": "48900"}, headers=HEADERS, timeout=10)
            for _ in range(10)
        ]
        assert [a.status_code for a in answers] == [200] * 10
        health = httpx.get(f"{server.url}/__mock/health", timeout=10).json()["proxy"]["recording"]
    exchanges, skipped = read_cassette(cassette)
    assert 1 <= len(exchanges) < 10 and skipped == []
    assert cassette.stat().st_size <= 3000
    assert health["full"] is True and health["exchanges"] == len(exchanges) and health["limit"] == 3000
    assert server.log().count("is full") == 1  # one warning, however many exchanges were not written


def test_record__two_workers_appending_at_once__write_whole_lines_only(recording: tuple[Running, Path]) -> None:
    server, cassette = recording
    before = len(read_cassette(cassette)[0])
    url = f"{server.url}/in{TESTERS}?agent_number=chunked"
    # A client per thread, not one httpx.Client across 32: its pool once closed a socket another
    # thread was reading (the client's own ReadError, EBADF, in a CI run).
    clients: list[httpx.Client] = []
    mine = threading.local()

    def get(_: int) -> int:
        if not hasattr(mine, "client"):
            mine.client = httpx.Client(timeout=20)
            clients.append(mine.client)
        return mine.client.get(url, headers=HEADERS).status_code

    try:
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(get, range(200)))
    finally:
        for client in clients:
            client.close()
    assert answers == [200] * 200
    exchanges, skipped = read_cassette(cassette)
    assert skipped == []
    assert len(exchanges) - before == 200
    health = httpx.get(f"{server.url}/__mock/health", timeout=10).json()["proxy"]["recording"]
    assert health["exchanges"] == len(exchanges) and health["full"] is False
