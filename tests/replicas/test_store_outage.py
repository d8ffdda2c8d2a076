"""Redis down, paused or unreachable: every API request answers 503 MOCK503 in the error envelope
within a bounded time, health says why, nothing crashes, and the replicas recover by themselves
when Redis is back. A start on an unreachable Redis is one line and exit 2."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mock_server.core import MockConfig, RedisStore
from mock_server.testing import ServerProcess, start_server
from mock_server.web import create_app
from tests._redis import MISSING, RedisServer, free_port

pytestmark = pytest.mark.time_budget(120)

HEADERS = {"api-key": "outage-key", "Content-Type": "application/json"}
BOUND_S = 3.0  # the most a request may take, and the most a change of Redis may take to be seen


@dataclass
class Answer:
    replica: int
    sent: float
    took: float
    status: int  # 0: no HTTP answer at all
    example: str
    code: str


class Load:
    """One client per replica sending GETs (and a DELETE every 5th) back to back until stopped."""

    def __init__(self, servers: list[ServerProcess]) -> None:
        self.servers = servers
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(len(servers))]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _run(self, n: int) -> None:
        port = int(self.servers[n].url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        i = 0
        while not self.stop.is_set():
            i += 1
            method, path = ("GET", "/in/v1/OUT/rcs/agent/testersbyagent?agent_number=48900")
            if i % 5 == 0:
                method, path = "DELETE", f"/in/v1/OUT{n}-{i}/rcs/agent/48400"
            sent = time.monotonic()
            try:
                conn.request(method, path, headers=HEADERS)
                response = conn.getresponse()
                body = response.read()
                status, example = response.status, response.getheader("X-Mock-Example") or ""
                code = json.loads(body).get("code", "") if status >= 400 else ""
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                status, example, code = 0, "", ""
            self.answers.append(Answer(n, sent, time.monotonic() - sent, status, example, code))
        conn.close()

    def first(self, replica: int, after: float, status: int, deadline: float) -> float:
        """Seconds from `after` to the first answer of `status` sent after it, waiting until `deadline`."""
        while time.monotonic() < deadline:
            for a in list(self.answers):
                if a.replica == replica and a.sent >= after and a.status == status:
                    return a.sent + a.took - after
            time.sleep(0.01)
        pytest.fail(f"replica {replica} gave no {status} within {deadline - after:.1f} s")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def two_replicas(own_redis: RedisServer) -> Iterator[list[ServerProcess]]:
    store = ["--store", own_redis.url, "--store-prefix", "outage"]
    servers: list[ServerProcess] = []
    try:
        for _ in range(2):
            servers.append(start_server(["--workers", "2", *store]))
        yield servers
    finally:
        for s in servers:
            s.stop()


def _health(server: ServerProcess) -> tuple[int, dict[str, object]]:
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/__mock/health")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _check_answers(load: Load) -> None:
    assert load.answers, "no request was answered"
    assert [a for a in load.answers if a.status == 0] == []  # never a dropped connection
    assert {a.status for a in load.answers} <= {200, 400, 503}
    for a in load.answers:
        if a.status == 503:
            assert (a.code, a.example) == ("MOCK503", "store_unavailable")
        if a.status == 400:
            assert a.example == "agent_not_found"  # a DELETE of an agent the restart brought back
    slowest = max(a.took for a in load.answers)
    assert slowest < BOUND_S, slowest


def test_redis_stopped_and_restarted__503s_then_200_again_by_itself(
    own_redis: RedisServer, two_replicas: list[ServerProcess]
) -> None:
    with Load(two_replicas) as load:
        time.sleep(1.0)
        stopped = time.monotonic()
        own_redis.stop()
        to_503 = [load.first(n, stopped, 503, stopped + BOUND_S) for n in (0, 1)]
        status, health = _health(two_replicas[1])
        assert status == 503
        assert health["status"] == "store_unavailable"
        assert f"127.0.0.1:{own_redis.port}" in str(health["store_error"])
        assert "refused" in str(health["store_error"]).lower()
        time.sleep(1.0)
        started = time.monotonic()
        own_redis.start()  # the same port, empty: the replicas fill it from their seed again
        to_200 = [load.first(n, started, 200, started + BOUND_S) for n in (0, 1)]
        time.sleep(1.0)
        recovered = time.monotonic()
    print(f"\nstopped -> first 503: {to_503} s; restarted -> first 200: {to_200} s")
    _check_answers(load)
    late = [a for a in load.answers if a.sent >= recovered - 0.5]
    assert late and all(a.status in (200, 400) for a in late)  # fully back, no 503 left
    assert all(s.proc.poll() is None for s in two_replicas)  # never crashed
    status, health = _health(two_replicas[0])
    assert (status, health["status"]) == (200, "ok")


def test_redis_paused__503_within_the_socket_timeout_then_200_on_resume(
    own_redis: RedisServer, two_replicas: list[ServerProcess]
) -> None:
    """SIGSTOP: connections stay open and nothing answers (a network partition, say)."""
    assert own_redis.proc is not None
    pid = own_redis.proc.pid
    with Load(two_replicas) as load:
        time.sleep(0.5)
        paused = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        try:
            to_503 = [load.first(n, paused, 503, paused + 2 * BOUND_S) for n in (0, 1)]
            status, health = _health(two_replicas[0])
            assert (status, health["status"]) == (503, "store_unavailable")
            assert "Timeout" in str(health["store_error"])
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        to_200 = [load.first(n, resumed, 200, resumed + BOUND_S) for n in (0, 1)]
        time.sleep(0.5)
    print(f"\npaused -> first 503: {to_503} s; resumed -> first 200: {to_200} s")
    _check_answers(load)
    assert all(s.proc.poll() is None for s in two_replicas)


def test_store_unavailable__rendered_in_the_configured_error_layout() -> None:
    """In-process, on a port nothing listens on: the API's 503, in the `error` layout."""
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", prefix="nobody")
    client = create_app(store, MockConfig(error_layout="error")).test_client()
    r = client.get("/in/v1/S/rcs/agent/testersbyagent?agent_number=48900", headers=HEADERS)
    assert r.status_code == 503
    assert r.headers["X-Mock-Source"] == "store"
    assert r.headers["Retry-After"] == "1"
    body = r.get_json()
    assert body["code"] == "MOCK503"
    assert body["error"]["error_code"] == "STORE_UNAVAILABLE"
    assert "error" not in body["data"]
    control = client.get("/__mock/state")
    assert control.status_code == 503
    assert control.get_json()["data"]["error"]["error_code"] == "STORE_UNAVAILABLE"
    health = client.get("/__mock/health")
    assert health.status_code == 503
    assert health.get_json()["status"] == "store_unavailable"
    store.close()


def _mock(*args: str, preamble: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys\n{preamble}\nfrom mock_server._cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, "--port", "0", *args], capture_output=True, text=True, timeout=60
    )


def test_start__unreachable_redis_is_one_line_and_exit_2() -> None:
    started = time.monotonic()
    done = _mock("--store", f"redis://127.0.0.1:{free_port()}/0")
    assert time.monotonic() - started < 20
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kaleyra-mock: cannot reach the store: Redis at redis://127.0.0.1:")
    assert "refused" in lines[0].lower()


def test_start__without_the_redis_client_names_the_extra() -> None:
    done = _mock("--store", "redis://127.0.0.1:6379/0", preamble="sys.modules['redis'] = None")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "pip install 'kaleyra-rcs-harness[redis]'" in lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--store", "redis://127.0.0.1:abc/0"], "port is not a number"),
        (["--store", "redis://127.0.0.1:6379/x"], "database number"),
        (["--store", "redis://127.0.0.1:6379/0?db=1"], "only ?prefix=NAME"),
        (["--store", "ftp://x"], "unknown store 'ftp'"),
        (["--store", "memory:"], "in-process only"),
        (["--store", "sqlite:///x.db", "--store-prefix", "p"], "prefix is for a Redis store"),
        (["--store", "sqlite:///x.db", "--state", "y.db"], "not both"),
    ],
)
def test_start__a_store_it_cannot_use_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mock_server", "--port", "0", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert says in lines[0]


def test_redis_fixture__a_missing_redis_server_fails_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a silent skip: without the executable, a Redis test fails with one line saying what to install."""
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no redis-server on it
    with pytest.raises(pytest.fail.Exception) as failed:
        RedisServer(tmp_path / "redis")
    assert str(failed.value) == MISSING
    assert "apt-get install redis-server" in MISSING
    assert "\n" not in MISSING
