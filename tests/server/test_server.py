"""The real server: `python -m mock_server` with granian workers over one SQLite file, on loopback."""

from __future__ import annotations

import ipaddress
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server.testing import group_pids
from soak.run import STOP_LIMIT_S
from tests._spec import ROOT

pytestmark = pytest.mark.server

SID = "XXXXX6913850XXXX"
KEY = "XXXXX3b8497f58a94e84b671aca43XXXX"
HEADERS = {"Content-Type": "application/json", "api-key": KEY}
TIMEOUT = httpx.Timeout(10.0)
START_DEADLINE_S = 20.0
READY_DEADLINE_S = 15.0
STOP_DEADLINE_S = 10.0
SAMPLE_TESTERS = [
    {
        "phoneno": "91077XXXXXX79",
        "test_status": "",
        "status": "ACTIVE",
        "agent_no": "1102",
        "id": "9ded792d-e45e-436c-b313-7f68XXXXXXe85",
        "override_dcs_check": True,
        "carrierid": 0,
    }
]
AGENT_DELETED = {
    "code": "RCS902",
    "message": "Agent deleted succesfully",
    "data": {"status": "OK", "message": "Agent deleted", "message_key": "message"},
    "error": {},
}


# -- starting and stopping servers ------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str = ""
    banner: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    readers: list[threading.Thread] = field(default_factory=list)
    exit_code: int | None = None
    stop_seconds: float | None = None

    @property
    def host(self) -> str:
        return httpx.URL(self.base).host

    @property
    def port(self) -> int:
        port = httpx.URL(self.base).port
        assert port is not None
        return port

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def worker_pids(self) -> list[int]:
        """From granian's "Spawning worker-N with PID: X" lines (`--log-level info`)."""
        return [
            int(m.group(1)) for line in self.banner if (m := re.search(r"Spawning worker-\d+ with PID: (\d+)", line))
        ]

    def stop(self) -> int:
        """SIGTERM; it must exit 0 within STOP_DEADLINE_S, else it is killed and the test fails."""
        if self.exit_code is not None:
            return self.exit_code
        if self.proc.poll() is None:
            started = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"the server ignored SIGTERM for {STOP_DEADLINE_S} s; killed it")
            self.stop_seconds = time.monotonic() - started
        self._join_readers()
        self.exit_code = self.proc.returncode
        return self.exit_code

    def kill(self) -> None:
        """The whole process group this test started (granian's workers with it)."""
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._join_readers()
        store = self.temporary_store
        if store is not None:  # a killed CLI cannot remove its own temporary store
            shutil.rmtree(store, ignore_errors=True)

    @property
    def temporary_store(self) -> Path | None:
        """The CLI's own temporary store directory (no --state), from the banner's first line."""
        match = re.search(r"store (\S+)/state\.sqlite3\b", self.banner[0]) if self.banner else None
        if match is None or not Path(match.group(1)).name.startswith("kaleyra-mock-"):
            return None
        return Path(match.group(1))

    def _join_readers(self) -> None:
        for reader in self.readers:
            reader.join(timeout=5)


def _pump(stream: Any, sink: list[str], lines: queue.Queue[str | None] | None) -> None:
    for line in stream:
        sink.append(line)
        if lines is not None:
            lines.put(line)
    if lines is not None:
        lines.put(None)


def _launch(args: list[str]) -> Server:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, so a failed test can stop the workers too
    )
    server = Server(proc)
    assert proc.stdout is not None
    assert proc.stderr is not None
    server.readers = [
        threading.Thread(target=_pump, args=(proc.stdout, server.banner, server.lines), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, server.stderr, None), daemon=True),
    ]
    for reader in server.readers:
        reader.start()
    return server


def _next_line(server: Server, wanted: str, deadline: float) -> str:
    """The next stdout line that holds `wanted`, before the deadline; fail if the server exits first."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no {wanted!r} line within {START_DEADLINE_S} s; stdout {server.banner}")
        try:
            line = server.lines.get(timeout=left)
        except queue.Empty:
            continue
        if line is None:
            server.proc.wait(timeout=10)
            pytest.fail(f"the server exited ({server.proc.returncode}) before {wanted!r}: {''.join(server.stderr)}")
        if wanted in line:
            return line


def _wait_for_banner(server: Server) -> None:
    line = _next_line(server, "IN pod:", time.monotonic() + START_DEADLINE_S)
    match = re.search(r"(http://\S+)/in\s*$", line)
    assert match, line
    server.base = match.group(1)


def _wait_until_ready(server: Server, path: str, status: int) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    last: object = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"the server exited ({server.proc.returncode}): {''.join(server.stderr)}")
        try:
            response = httpx.get(server.url(path), headers=HEADERS, timeout=2.0)
            if response.status_code == status:
                return
            last = response.status_code
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.05)
    pytest.fail(f"GET {path} gave no {status} within {READY_DEADLINE_S} s (last: {last!r})")


@contextmanager
def running(
    *args: str, ready_path: str = "/__mock/health", ready_status: int = 200, started_workers: int = 0
) -> Iterator[Server]:
    """A server on a free loopback port; stopped with SIGTERM (exit 0 asserted) or killed, whatever happens.

    `started_workers`: also wait for granian's "Started worker-N" lines (needs `--log-level info`), for a
    test that counts the workers: health answers as soon as one is up. A stop needs no such wait (a worker
    still starting takes its SIGTERM once it can, `_rsgi.hold_stop_signals`).
    """
    server = _launch(["--port", "0", *args])
    try:
        _wait_for_banner(server)
        deadline = time.monotonic() + START_DEADLINE_S
        for _ in range(started_workers):
            _next_line(server, "Started worker-", deadline)
        _wait_until_ready(server, ready_path, ready_status)
        yield server
    except BaseException:
        server.kill()
        raise
    rc = server.stop()
    assert rc == 0, f"exit code {rc} after SIGTERM; stderr: {''.join(server.stderr)}"


@pytest.fixture(scope="module")
def shared() -> Iterator[Server]:
    with running("--workers", "2", "--log-level", "info", started_workers=2) as server:
        yield server
    assert server.stop_seconds is not None
    assert server.stop_seconds < STOP_DEADLINE_S


@pytest.fixture
def server(shared: Server) -> Iterator[Server]:
    """The shared server, reset to its seed before and after the test."""
    reset(shared)
    yield shared
    if shared.proc.poll() is None:
        reset(shared)


def reset(server: Server) -> None:
    response = httpx.post(server.url("/__mock/reset"), timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "reset"}


def get_testers_url(server: Server, pod: str, agent: str, sid: str = SID) -> str:
    return server.url(f"/{pod}/v1/{sid}/rcs/agent/testersbyagent?agent_number={agent}")


def delete_url(server: Server, pod: str, agent: str, sid: str = SID) -> str:
    return server.url(f"/{pod}/v1/{sid}/rcs/agent/{agent}")


def _socket_inodes(group: int) -> set[str]:
    """The socket inodes every process of a process group holds open (the server and its workers)."""
    inodes = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


def _listening_addresses(port: int, group: int) -> set[str]:
    """Local addresses (IPv4 and IPv6) the server's process group listens on at this port, from
    /proc/net/tcp{,6}: only its own sockets, since another program may listen on the same port
    number at another address (binding port 0 on 127.0.0.2 may pick one in use on 127.0.0.1)."""
    found = set()
    ours = _socket_inodes(group)
    for table in ("tcp", "tcp6"):
        proc_file = Path("/proc/net") / table
        if not proc_file.exists():
            continue
        for line in proc_file.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port and fields[9] in ours:  # 0A: LISTEN
                raw = bytes.fromhex(address)  # host-order 32-bit words
                packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(packed)))
    return found


def _run_cli(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    """A CLI run that must end by itself; if it starts serving instead, its whole group is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"`kaleyra-mock {' '.join(args)}` did not exit within {timeout} s; stdout {out!r}")
    return proc.returncode, out, err


def _is_agent_not_found(response: httpx.Response) -> bool:
    return (
        response.status_code == 400
        and response.headers.get("x-mock-example") == "agent_not_found"
        and response.json()["data"]["error"]["error_code"] == "PROV_ERROR"
    )


# -- the CLI without a server ------------------------------------------------------------------


def test_help() -> None:
    rc, out, err = _run_cli("--help")
    assert rc == 0, err
    assert out.startswith("usage: kaleyra-mock")
    for option in ("--port", "--workers", "--seed", "--state", "--no-control-plane", "--host"):
        assert option in out
    assert err == ""


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("seed.json", '{"accounts": 5}'),
        ("seed.json", '{"magic_agents": {"1": "no_such_example"}}'),
        ("seed.json", "[1, 2]"),
        ("seed.json", "{not json"),
        ("seed.yaml", "accounts:\n  - sid: a/b\n"),
        ("seed.yaml", "accounts: [unclosed\n"),  # not YAML at all
        ("missing.yaml", None),
    ],
)
def test_bad_seed_exits_2_with_a_message_and_no_traceback(tmp_path: Path, name: str, content: str | None) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    rc, out, err = _run_cli("--port", "0", "--seed", str(path))
    assert "Traceback" not in err, err
    assert rc == 2, err
    assert err.startswith("kaleyra-mock: cannot load seed"), err
    assert str(path) in err
    assert "IN pod:" not in out


@pytest.mark.parametrize("problem", ["not_a_database", "missing_directory"])
def test_unusable_state_file_exits_2_with_a_message(tmp_path: Path, problem: str) -> None:
    if problem == "not_a_database":
        state = tmp_path / "state.sqlite3"
        state.write_text("this is not an SQLite file\n" * 200)
    else:
        state = tmp_path / "no" / "such" / "dir" / "state.sqlite3"
    rc, out, err = _run_cli("--port", "0", "--state", str(state))
    assert "Traceback" not in err, err
    assert rc == 2, err
    assert err.startswith("kaleyra-mock:"), err
    assert str(state) in err
    assert "IN pod:" not in out


# -- the shared server ------------------------------------------------------------------------


def test_binds_loopback_by_default(server: Server) -> None:
    assert server.host == "127.0.0.1"
    assert any("control plane: http://127.0.0.1:" in line for line in server.banner)
    assert any(line.strip() == f"dashboard:     {server.url('/__mock/ui')}" for line in server.banner)
    assert _listening_addresses(server.port, server.proc.pid) == {"127.0.0.1"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.2:{server.port}/__mock/health", timeout=TIMEOUT)
    health = httpx.get(server.url("/__mock/health"), timeout=TIMEOUT).json()
    assert health == {
        "status": "ok",
        "pods": ["in", "na"],
        "store": "sqlite",
        "scenarios_armed": 0,
        "faults_armed": 0,
        "proxy": None,
    }


@pytest.mark.parametrize("pod", ["in", "na"])
def test_documented_sample_requests_on_both_pods(server: Server, pod: str) -> None:
    with httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:
        got = client.get(get_testers_url(server, pod, "48900"))
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/json"
        assert got.json() == SAMPLE_TESTERS
        deleted = client.delete(delete_url(server, pod, "48400"))
        assert deleted.status_code == 200
        assert deleted.json() == AGENT_DELETED
        assert _is_agent_not_found(client.delete(delete_url(server, pod, "48400")))
        other = "na" if pod == "in" else "in"
        assert client.get(get_testers_url(server, other, "48400")).json() == []  # the other pod keeps its agent


def test_documented_hosts_choose_the_pod(server: Server) -> None:
    with httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:
        path = f"/v1/{SID}/rcs/agent/48400"
        deleted = client.delete(server.url(path), headers={"Host": "rcs-api.na.kaleyra.io"})
        assert deleted.status_code == 200
        on_na = client.get(server.url("/na/v1/xxxxx6913850xxxx/rcs/agent/testersbyagent?agent_number=48900"))
        assert on_na.json() == SAMPLE_TESTERS
        assert _is_agent_not_found(client.get(get_testers_url(server, "na", "48400")))
        assert client.get(get_testers_url(server, "in", "48400")).status_code == 200
        journal = client.get(server.url("/__mock/journal?operation=deleteAgent")).json()
        assert [(e["pod"], e["status"]) for e in journal] == [("na", 200)]


def _read_syscalls(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscr:"):
            return int(line.split()[1])
    raise AssertionError(f"no syscr in /proc/{pid}/io")


def test_a_delete_is_seen_by_every_later_request(server: Server) -> None:
    pids = server.worker_pids
    assert len(pids) == 2
    with httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:
        assert client.delete(delete_url(server, "in", "48900")).status_code == 200
    before = {pid: _read_syscalls(pid) for pid in pids}
    outcomes = []
    for _ in range(40):
        with httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:  # a new connection each time
            outcomes.append(_is_agent_not_found(client.get(get_testers_url(server, "in", "48900"))))
    assert outcomes == [True] * 40
    # Both workers read their SQLite file while these were served (an idle worker makes no read calls).
    grew = {pid: _read_syscalls(pid) - before[pid] for pid in pids}
    assert all(n > 0 for n in grew.values()), grew
    with httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:
        assert client.get(get_testers_url(server, "na", "48900")).json() == SAMPLE_TESTERS


def test_64_concurrent_deletes_over_http_succeed_once(server: Server) -> None:
    barrier = threading.Barrier(64, timeout=30)

    def delete(_i: int) -> httpx.Response:
        with httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:
            barrier.wait()
            return client.delete(delete_url(server, "na", "48400"))

    with ThreadPoolExecutor(max_workers=64) as pool:
        responses = list(pool.map(delete, range(64), timeout=60))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == Counter({200: 1, 400: 63})
    assert sum(_is_agent_not_found(r) for r in responses) == 63
    assert [r.json() for r in responses if r.status_code == 200] == [AGENT_DELETED]
    journal = httpx.get(server.url("/__mock/journal?operation=deleteAgent&limit=200"), timeout=TIMEOUT).json()
    assert Counter(e["status"] for e in journal) == Counter({200: 1, 400: 63})


def test_connection_reset_fault_over_a_real_socket(server: Server) -> None:
    armed = httpx.post(server.url("/__mock/faults"), json={"fault": "connection_reset", "times": 1}, timeout=TIMEOUT)
    assert armed.status_code == 201
    assert armed.json()["remaining"] == 1
    with httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:
        with pytest.raises(httpx.TransportError) as dropped:
            client.get(get_testers_url(server, "in", "48900"))
        # Observed: "peer closed connection without sending complete message body (received 0 bytes, expected
        # 167)" or, when granian drops it before the status line, "Server disconnected without sending a response."
        assert type(dropped.value) is httpx.RemoteProtocolError
        after = client.get(get_testers_url(server, "in", "48900"))
    assert after.status_code == 200
    assert after.json() == SAMPLE_TESTERS
    assert httpx.get(server.url("/__mock/faults"), timeout=TIMEOUT).json() == []


def test_reset_brings_back_deleted_agents(server: Server) -> None:
    with httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:
        assert client.delete(delete_url(server, "in", "48400")).status_code == 200
        assert _is_agent_not_found(client.get(get_testers_url(server, "in", "48400")))
        reset(server)
        assert client.get(get_testers_url(server, "in", "48400")).json() == []


# -- servers of their own -------------------------------------------------------------------------


def test_state_file_survives_a_restart_and_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    args = ("--workers", "2", "--state", str(state), "--log-level", "info")
    with running(*args, started_workers=2) as first, httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:
        assert "resumed" not in first.banner[0]
        assert f"store {state}" in first.banner[0]
        assert client.delete(delete_url(first, "in", "48400")).status_code == 200
    assert first.exit_code == 0
    assert first.stop_seconds is not None
    assert first.stop_seconds < STOP_LIMIT_S, first.banner  # a graceful stop, granian killed no worker
    assert not any("Killing worker" in line for line in first.banner)
    assert len(first.worker_pids) == 2
    assert group_pids(first.proc.pid) == []  # no worker outlives the server
    assert state.is_file()  # SIGTERM removes no --state file
    with sqlite3.connect(state, timeout=10) as db:
        assert db.execute("SELECT pod, sid, agent_number FROM deleted_default").fetchall() == [("in", SID, "48400")]

    with running(*args, started_workers=2) as second, httpx.Client(headers=HEADERS, timeout=TIMEOUT) as client:
        assert "resumed" in second.banner[0]
        assert _is_agent_not_found(client.get(get_testers_url(second, "in", "48400")))
        assert _is_agent_not_found(client.delete(delete_url(second, "in", "48400")))
        assert client.get(get_testers_url(second, "na", "48400")).json() == []
        reset(second)
        assert client.get(get_testers_url(second, "in", "48400")).json() == []
        assert client.delete(delete_url(second, "in", "48400")).status_code == 200
    assert second.exit_code == 0
    assert second.stop_seconds is not None
    assert second.stop_seconds < STOP_LIMIT_S, second.banner
    assert group_pids(second.proc.pid) == []
    assert state.is_file()


def test_loopback_alias_host_keeps_the_control_plane() -> None:
    with running("--host", "127.0.0.2", "--workers", "1") as server:
        assert server.host == "127.0.0.2"
        assert _listening_addresses(server.port, server.proc.pid) == {"127.0.0.2"}
        health = httpx.get(server.url("/__mock/health"), timeout=TIMEOUT)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert any("control plane: http://127.0.0.2:" in line for line in server.banner)
        store_dir = server.temporary_store
        assert store_dir is not None
        assert store_dir.is_dir()
    assert "reachable from other machines" not in "".join(server.stderr)
    assert not store_dir.exists()  # without --state the temporary store goes away on SIGTERM


def test_no_control_plane_gives_403() -> None:
    ready = f"/in/v1/{SID}/rcs/agent/testersbyagent?agent_number=48900"
    with running("--workers", "1", "--no-control-plane", ready_path=ready) as server:
        assert any("control plane: disabled" in line for line in server.banner)
        for method, path in (("GET", "/__mock/health"), ("POST", "/__mock/reset"), ("GET", "/__mock/state")):
            response = httpx.request(method, server.url(path), timeout=TIMEOUT)
            assert response.status_code == 403, (method, path)
            assert response.json()["data"]["error"]["error_code"] == "CONTROL_PLANE_DISABLED"
        got = httpx.get(server.url(ready), headers=HEADERS, timeout=TIMEOUT)
        assert got.json() == SAMPLE_TESTERS


# -- the command line's flags reach the workers ------------------------------------------------


def test_flags__strict_content_type_default_pod_no_journal_and_latency_reach_the_workers() -> None:
    args = ["--workers", "2", "--strict-content-type", "--default-pod", "na", "--no-journal", "--latency-ms", "150"]
    with running(*args) as server:
        bare = httpx.get(server.url(f"/v1/{SID}/rcs/agent/testersbyagent?agent_number=48900"), headers={"api-key": KEY})
        assert bare.status_code == 415
        deleted = httpx.delete(server.url(f"/v1/{SID}/rcs/agent/48400"), headers=HEADERS, timeout=TIMEOUT)
        assert deleted.status_code == 200
        on_na = httpx.delete(delete_url(server, "na", "48400"), headers=HEADERS, timeout=TIMEOUT)
        assert _is_agent_not_found(on_na)  # the unprefixed delete went to the NA pod
        assert httpx.get(server.url("/__mock/journal"), timeout=TIMEOUT).json() == []
        started = time.perf_counter()
        httpx.get(get_testers_url(server, "in", "48900"), headers=HEADERS, timeout=TIMEOUT)
        assert time.perf_counter() - started >= 0.15


def test_flags__random_5xx_and_journal_limit_survive_a_reset() -> None:
    with running("--workers", "1", "--random-5xx", "1", "--fault-seed", "7", "--journal-limit", "3") as server:
        for _ in range(2):
            statuses = {
                httpx.get(get_testers_url(server, "in", "48900"), headers=HEADERS).status_code for _ in range(5)
            }
            assert statuses == {500}
            assert len(httpx.get(server.url("/__mock/journal"), timeout=TIMEOUT).json()) == 3
            reset(server)  # faults from flags are armed again after a reset


def test_port_in_use__a_second_server_exits_2_instead_of_sharing_it(server: Server) -> None:
    rc, _, err = _run_cli("--port", str(server.port))
    assert rc == 2
    assert "cannot listen" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("port", ["70000", "-5"])
def test_port_out_of_range_exits_2(port: str) -> None:
    rc, _, err = _run_cli("--port", port)
    assert rc == 2
    assert "--port" in err
    assert "Traceback" not in err


def test_connection_reset__leaves_no_traceback_in_the_log() -> None:
    with running("--workers", "1", "--log-level", "info") as server:
        httpx.post(server.url("/__mock/faults"), json={"fault": "connection_reset", "times": 2}, timeout=TIMEOUT)
        for _ in range(2):
            with pytest.raises(httpx.TransportError):
                httpx.get(get_testers_url(server, "in", "48900"), headers=HEADERS, timeout=TIMEOUT)
        assert httpx.get(get_testers_url(server, "in", "48900"), headers=HEADERS, timeout=TIMEOUT).status_code == 200
    output = "".join(server.banner) + "".join(server.stderr)
    assert "Traceback" not in output
    assert "ConnectionDropped" not in output


def test_get_testers_by_agent__raw_utf8_in_the_query_reads_as_in_process(server: Server) -> None:
    """Bytes a client sends unescaped (`?agent_number=é`) reach the mock as the WSGI app reads
    them in-process: UTF-8, not refused as if they were not."""
    from soak._wire import exchange

    target = f"/in/v1/{SID}/rcs/agent/testersbyagent?agent_number=é"
    head = f"GET {target} HTTP/1.1\r\nHost: {server.host}\r\napi-key: {KEY}\r\nConnection: close\r\n\r\n"
    answer = exchange(server.host, httpx.URL(server.base).port or 80, head.encode("utf-8"))
    assert (answer.status, answer.header("X-Mock-Example")) == (400, "agent_not_found")
    journal = httpx.get(server.url("/__mock/journal"), params={"limit": 1}, timeout=TIMEOUT).json()
    assert journal[0]["agent_number"] == "é"
