"""Two real `kaleyra-mock` replicas on two ports over one real redis-server, through real sockets:
the guarantees workers have on one machine hold across replicas. Each test runs at least 1,000
rounds, and sends the second request to the other replica the instant the first is answered."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from mock_server.testing import ServerProcess, start_server
from tests._redis import RedisServer

pytestmark = pytest.mark.time_budget(240)

ROUNDS = 1000
HEADERS = {"api-key": "replica-key", "Content-Type": "application/json"}


class Http:
    """One keep-alive connection to one replica (a new one if the server closed it)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, str, bytes]:
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=HEADERS)
                response = self.conn.getresponse()
                return response.status, response.getheader("X-Mock-Example") or "", response.read()
            except (ConnectionError, http.client.RemoteDisconnected):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, _, data = self.request(method, path, body)
        assert status in (200, 201), (status, data)
        return json.loads(data)

    def close(self) -> None:
        self.conn.close()


def _testers(sid: str, agent: str) -> str:
    return f"/in/v1/{sid}/rcs/agent/testersbyagent?agent_number={agent}"


def _agent(sid: str, agent: str) -> str:
    return f"/in/v1/{sid}/rcs/agent/{agent}"


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    store = ["--store", redis_server.url, "--store-prefix", "replicas-module"]
    a = start_server(["--workers", "2", *store])
    try:
        b = start_server(["--workers", "2", *store])
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def pair(replicas: tuple[ServerProcess, ServerProcess]) -> Iterator[tuple[Http, Http]]:
    """A keep-alive connection to each replica, on a freshly reset state."""
    a, b = Http(replicas[0].url), Http(replicas[1].url)
    a.json("POST", "/__mock/reset")
    yield a, b
    a.close()
    b.close()


def test_start__a_second_replica_joins_the_state_the_first_serves(
    replicas: tuple[ServerProcess, ServerProcess], pair: tuple[Http, Http]
) -> None:
    a = pair[0]
    assert a.request("DELETE", _agent("JOIN", "48400"))[0] == 200
    c = start_server(["--workers", "1", "--store", _url(replicas), "--store-prefix", "replicas-module"])
    try:
        status, example, _ = Http(c.url).request("DELETE", _agent("JOIN", "48400"))
        assert (status, example) == (400, "agent_not_found")  # not seeded again: the state went on
    finally:
        c.stop()


def _url(replicas: tuple[ServerProcess, ServerProcess]) -> str:
    health = Http(replicas[0].url).json("GET", "/__mock/health")
    return str(health["store_detail"]["url"])


def test_delete_agent__concurrent_deletes_through_both_replicas_one_success(pair: tuple[Http, Http]) -> None:
    """Four clients, two on each replica, delete the same agent of a new SID each round."""
    a, b = pair
    extra = [Http(f"http://{a.host}:{a.port}"), Http(f"http://{b.host}:{b.port}")]
    clients = [a, b, *extra]
    barrier = threading.Barrier(len(clients), timeout=30)
    results: list[list[tuple[int, str]]] = [[] for _ in clients]
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            for i in range(ROUNDS):
                barrier.wait()
                status, example, _ = clients[n].request("DELETE", _agent(f"RACE{i}", "48400"))
                results[n].append((status, example))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=200)
    for c in extra:
        c.close()
    assert errors == []
    for i in range(ROUNDS):
        outcomes = sorted(r[i] for r in results)
        assert outcomes == [(200, "agent_deleted")] + [(400, "agent_not_found")] * 3, (i, outcomes)


def test_delete_agent__seen_by_the_next_request_on_the_other_replica(pair: tuple[Http, Http]) -> None:
    """The reader's look-up is warm (just answered 200) when the other replica deletes."""
    clients = pair
    for i in range(ROUNDS):
        writer, reader = clients[i % 2], clients[1 - i % 2]
        sid = f"SEEN{i}"
        assert reader.request("GET", _testers(sid, "48900"))[:2] == (200, "testers")
        assert writer.request("DELETE", _agent(sid, "48900"))[:2] == (200, "agent_deleted")
        assert reader.request("GET", _testers(sid, "48900"))[:2] == (400, "agent_not_found"), i


def test_scenario__armed_for_n_is_taken_exactly_n_times_across_replicas(pair: tuple[Http, Http]) -> None:
    a, b = pair
    armed = a.json("POST", "/__mock/scenarios", {"scenario": "gateway_error", "times": ROUNDS})
    assert armed["remaining"] == ROUNDS
    counts = [0, 0]
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            for _ in range(700):
                status, example, _ = pair[n].request("GET", _testers("SCEN", "48900"))
                if example == "gateway_error":
                    counts[n] += 1
                else:
                    assert (status, example) == (200, "testers")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=200)
    assert errors == []
    assert sum(counts) == ROUNDS, counts
    assert counts[0] > 0 and counts[1] > 0  # both replicas took some
    assert b.json("GET", "/__mock/scenarios") == []


def test_scenario__used_up_on_one_replica_is_gone_on_the_other(pair: tuple[Http, Http]) -> None:
    for i in range(ROUNDS):
        first, second = pair[i % 2], pair[1 - i % 2]
        first.json("POST", "/__mock/scenarios", {"scenario": "gateway_error", "times": 1})
        assert first.request("GET", _testers("ONCE", "48900"))[1] == "gateway_error"
        assert second.request("GET", _testers("ONCE", "48900"))[:2] == (200, "testers"), i


def test_reset_and_state_load__seen_by_the_next_request_on_the_other_replica(pair: tuple[Http, Http]) -> None:
    state = pair[0].json("GET", "/__mock/state")
    without = json.loads(json.dumps(state))
    del without["default_account"]["agents"]["48900"]
    for i in range(ROUNDS):
        control, api = pair[i % 2], pair[1 - i % 2]
        assert api.request("GET", _testers("LOAD", "48900"))[:2] == (200, "testers")
        control.json("PUT", "/__mock/state", without)
        assert api.request("GET", _testers("LOAD", "48900"))[:2] == (400, "agent_not_found"), i
        control.json("POST", "/__mock/reset")
        assert api.request("GET", _testers("LOAD", "48900"))[:2] == (200, "testers"), i


def test_journal__a_read_on_one_replica_holds_what_the_other_just_answered(pair: tuple[Http, Http]) -> None:
    for i in range(ROUNDS):
        api, control = pair[i % 2], pair[1 - i % 2]
        path = _testers(f"J{i}", "48900")
        assert api.request("GET", path)[0] == 200
        newest = control.json("GET", "/__mock/journal?limit=1")
        assert [(e["sid"], e["status"]) for e in newest] == [(f"J{i}", 200)], i


def test_health__shows_the_redis_store_and_both_replicas(
    replicas: tuple[ServerProcess, ServerProcess], pair: tuple[Http, Http]
) -> None:
    for client in pair:  # every worker has answered something within the heartbeat's second
        for _ in range(20):
            client.request("GET", _testers("H", "48900"))
    health = pair[1].json("GET", "/__mock/health")
    assert health["status"] == "ok"
    assert health["store"] == "redis"
    assert health["store_detail"]["prefix"] == "replicas-module"
    ports = {r["id"].split(":")[1] for r in health["store_detail"]["replicas"]}
    assert {str(urlsplit(s.url).port) for s in replicas} <= ports
    assert all(r["seen_s_ago"] < 10 for r in health["store_detail"]["replicas"])


def test_reset__touches_only_its_own_prefix(redis_server: RedisServer, pair: tuple[Http, Http]) -> None:
    other = start_server(["--workers", "1", "--store", f"{redis_server.url}?prefix=another-mock"])
    try:
        mine, theirs = pair[0], Http(other.url)
        assert theirs.request("DELETE", _agent("PFX", "48400"))[0] == 200
        assert mine.request("GET", _testers("PFX", "48400"))[:2] == (200, "testers")  # not seen here
        mine.json("POST", "/__mock/reset")
        assert theirs.request("DELETE", _agent("PFX", "48400"))[:2] == (400, "agent_not_found")  # kept
        assert theirs.json("GET", "/__mock/journal?limit=5") != []
        theirs.close()
    finally:
        other.stop()
