"""--replay, --replay-strict and --calibrate on the real server (2 granian workers, one SQLite
store), over sockets: recorded bytes as recorded, the order shared by both workers, reset,
fall-through and strict misses, calibrated answers and the health that lists them."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kaleyra_rcs import KaleyraApiError, KaleyraRCS
from mock_server.core import Cassette, Exchange, RecordedRequest, RecordedResponse
from mock_server.testing import ServerProcess, start_server

pytestmark = pytest.mark.server

SID = "S"
DELETE = f"/v1/{SID}/rcs/agent/777"
TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent"
HEADERS = {"api-key": "k", "Content-Type": "application/json"}
PLAIN = b'[{"note":"gzip on the wire"}]'
GZIPPED = gzip.compress(PLAIN, mtime=0)
NOT_UTF8 = b"\xff\xfe\x00 not text \xc3\x28"
OBSERVED_401 = (
    b'{"code":"RCS401","message":"Unauthorized","data":{"error":{"error_code":"NO_KEY","error_message":"x"}}}'
)


def recorded(
    method: str, path: str, status: int, body: bytes, headers: tuple[tuple[str, str], ...], query: str = ""
) -> Exchange:
    return Exchange(
        RecordedRequest(method, "in", path, query, {"content-type": "application/json"}, api_key="sha256:0123abcd"),
        RecordedResponse(status, headers, body),
        operation="deleteAgent" if method == "DELETE" else "getTestersByAgent",
    )


def write(path: Path, *exchanges: Exchange) -> Path:
    cassette = Cassette(path)
    for exchange in exchanges:
        cassette.append(exchange)
    cassette.close()
    return path


@pytest.fixture(scope="module")
def cassette(tmp_path_factory: pytest.TempPathFactory) -> Path:
    json_ = (("Content-Type", "application/json"),)
    return write(
        tmp_path_factory.mktemp("replay") / "recorded.jsonl",
        recorded("DELETE", DELETE, 200, b'{"answer":1}', json_),
        recorded("DELETE", DELETE, 400, b'{"answer":2}', json_),
        recorded("DELETE", DELETE, 400, b'{"answer":3}', json_),
        recorded("DELETE", "/v1/S/rcs/agent/888", 200, b'{"a":1}', json_),
        recorded("DELETE", "/v1/S/rcs/agent/888", 400, b'{"a":2}', json_),
        recorded("DELETE", "/v1/S/rcs/agent/888", 400, b'{"a":3}', json_),
        recorded(
            "GET", TESTERS, 200, GZIPPED, (*json_, ("Content-Encoding", "gzip"), ("X-Upstream", "1")), "agent_number=5"
        ),
        recorded("GET", TESTERS, 200, NOT_UTF8, (("Content-Type", "application/octet-stream"),), "agent_number=6"),
    )


@pytest.fixture(scope="module")
def observations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live report's `exchanges`: a 401 for the no_key probe and a 400, both in the data.error layout."""
    no_key = recorded(
        "GET", TESTERS, 401, OBSERVED_401, (("Content-Type", "application/json"), ("WWW-Authenticate", "key"))
    )
    not_found = recorded(
        "GET",
        TESTERS,
        400,
        b'{"code":"RCS904","message":"Failed","data":{"error":{"error_code":"PROV_ERROR","error_message":"{}"}}}',
        (("Content-Type", "application/json"),),
        "agent_number=0000000000",
    )
    report = tmp_path_factory.mktemp("live") / "drift.json"
    items = [{**json.loads(no_key.to_line()), "probe": "no_key"}, json.loads(not_found.to_line())]
    report.write_text(json.dumps({"items": [], "exchanges": items}))
    return report


@pytest.fixture(scope="module")
def server(cassette: Path, observations: Path) -> Iterator[ServerProcess]:
    running = start_server(("--workers", "2", "--replay", str(cassette), "--calibrate", str(observations)))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def strict(cassette: Path) -> Iterator[ServerProcess]:
    running = start_server(("--workers", "2", "--replay", str(cassette), "--replay-strict"))
    yield running
    running.stop()


def fresh(url: str, method: str, **kwargs: object) -> httpx.Response:
    """One request on a connection of its own, so the kernel may hand it to either worker."""
    with httpx.Client(timeout=10) as http:
        return http.request(method, url, **kwargs)  # type: ignore[arg-type]


# -- replay ------------------------------------------------------------------------------------


def test_replay__gzip_body__raw_bytes_on_the_wire_and_decoded_by_httpx(server: ServerProcess) -> None:
    url = f"{server.url}/in{TESTERS}?agent_number=5"
    with httpx.Client(timeout=10) as http, http.stream("GET", url, headers=HEADERS) as response:
        raw = b"".join(response.iter_raw())
        assert raw == GZIPPED
        assert response.headers["Content-Length"] == str(len(GZIPPED))
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["X-Upstream"] == "1"
        assert response.headers["X-Mock-Source"] == "replay"
    assert fresh(url, "GET", headers=HEADERS).content == PLAIN


def test_replay__bytes_that_are_not_utf8__answered_byte_for_byte(server: ServerProcess) -> None:
    response = fresh(f"{server.url}/in{TESTERS}?agent_number=6", "GET", headers=HEADERS)
    assert (response.status_code, response.content) == (200, NOT_UTF8)
    assert response.headers["Content-Type"] == "application/octet-stream"


def test_replay__repeated_delete__answers_1_2_3_3_3_across_both_workers_then_reset_rewinds(
    server: ServerProcess,
) -> None:
    url = f"{server.url}/in{DELETE}"
    assert fresh(f"{server.url}/__mock/reset", "POST").status_code == 200
    bodies = [fresh(url, "DELETE", headers=HEADERS).json()["answer"] for _ in range(5)]
    assert bodies == [1, 2, 3, 3, 3]
    assert fresh(f"{server.url}/__mock/reset", "POST").status_code == 200
    assert fresh(url, "DELETE", headers=HEADERS).json()["answer"] == 1


def test_replay__concurrent_requests__two_workers_never_hand_out_one_position_twice(server: ServerProcess) -> None:
    url = f"{server.url}/in/v1/S/rcs/agent/888"
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _i: fresh(url, "DELETE", headers=HEADERS).json()["a"], range(12)))
    assert Counter(answers) == {1: 1, 2: 1, 3: 10}
    # Both workers answered some (a journal id's low 10 bits are its writer's slot, core/_journal.py).
    journal = fresh(f"{server.url}/__mock/journal", "GET").json()
    assert len({e["id"] % 1024 for e in journal if e["path"] == "/in/v1/S/rcs/agent/888"}) == 2


def test_replay__journal__every_replayed_answer_with_its_cassette_line(server: ServerProcess) -> None:
    fresh(f"{server.url}/in{TESTERS}?agent_number=6", "GET", headers=HEADERS)
    entry = fresh(f"{server.url}/__mock/journal", "GET").json()[0]
    assert (entry["source"], entry["cassette"], entry["status"]) == ("replay", "recorded.jsonl:8", 200)
    # named as any answer is, by the API's router: the operation, the SID of the path, the agent asked for
    assert (entry["operation"], entry["sid"], entry["agent_number"]) == ("getTestersByAgent", SID, "6")


def test_replay__no_match__falls_through_to_the_normal_mock(server: ServerProcess) -> None:
    response = fresh(f"{server.url}/in{TESTERS}?agent_number=48900", "GET", headers=HEADERS)
    assert (response.status_code, response.headers["X-Mock-Source"]) == (200, "state")


def test_replay_strict__no_match__is_the_mocks_own_404(strict: ServerProcess) -> None:
    response = fresh(f"{strict.url}/in{TESTERS}?agent_number=48900", "GET", headers=HEADERS)
    assert response.status_code == 404
    assert response.json()["code"] == "MOCK404"
    assert response.json()["data"]["error"] == {
        "error_code": "NOT_IN_CASSETTE",
        "error_message": f"no recorded exchange matches GET /in{TESTERS}?agent_number=48900",
    }
    assert fresh(f"{strict.url}/in{TESTERS}?agent_number=6", "GET", headers=HEADERS).content == NOT_UTF8
    assert fresh(f"{strict.url}/__mock/health", "GET").json()["replay"]["strict"] is True


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (
            ["--replay", "{broken}"],
            "cannot read cassette {broken}: no exchange in it (broken.jsonl:1: not a version 1 exchange)",
        ),
        (
            ["--calibrate", "{broken}"],
            "cannot read cassette {broken}: no exchange in it (broken.jsonl:1: not a version 1 exchange)",
        ),
        (["--replay", "{missing}"], "cannot read cassette {missing}: cannot read: No such file or directory"),
        (["--replay-strict"], "--replay-strict needs --replay FILE"),
    ],
)
def test_replay__unusable_flags__one_line_and_exit_2(tmp_path: Path, flags: list[str], line: str) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b'{"v":2}\n')
    names = {"broken": broken, "missing": tmp_path / "missing.jsonl"}
    done = subprocess.run(
        [sys.executable, "-m", "mock_server", "--port", "0", *(f.format(**names) for f in flags)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["kaleyra-mock: " + line.format(**names)]
    assert done.stdout == ""


# -- calibrate ---------------------------------------------------------------------------------


def test_calibrate__observed_401__answered_as_observed_and_listed_in_health(server: ServerProcess) -> None:
    response = fresh(
        f"{server.url}/in{TESTERS}?agent_number=48900", "GET", headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.content) == (401, OBSERVED_401)
    assert response.headers["X-Mock-Source"] == "observed"
    assert response.headers["X-Mock-Example"] == "missing_api_key"
    assert response.headers["WWW-Authenticate"] == "key"
    calibration = fresh(f"{server.url}/__mock/health", "GET").json()["calibration"]
    assert [(a["example"], a["operation"], a["status"], a["rule"]) for a in calibration["applied"]] == [
        ("missing_api_key", "getTestersByAgent", 401, "probe"),
        ("agent_not_found", "getTestersByAgent", 400, "content"),
    ]
    assert calibration["applied"][0]["source"] == "drift.json#/exchanges/0"
    assert calibration["error_layout"] == "data"


def test_calibrate__other_errors__take_the_observed_layout_and_keep_their_source(server: ServerProcess) -> None:
    response = fresh(f"{server.url}/in{TESTERS}?agent_number=99429", "GET", headers=HEADERS)  # rate_limited, magic
    assert response.status_code == 429
    assert response.headers["X-Mock-Source"] == "magic"
    assert response.json()["data"]["error"]["error_code"] == "RATE_LIMITED"


def test_calibrate__client__reads_the_calibrated_error_over_http(server: ServerProcess) -> None:
    with (
        KaleyraRCS(api_key="k", sid=SID, base_url=f"{server.url}/in") as client,
        pytest.raises(KaleyraApiError) as caught,
    ):
        client.get_testers_by_agent("99404")
    assert (caught.value.status, caught.value.code, caught.value.error_code) == (400, "RCS904", "PROV_ERROR")
