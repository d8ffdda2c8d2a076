"""One full run with a known api key, every output of it grepped for that key.

The promise: the key never appears in a log, the journal, a state dump, a report, a repr or
an exception message, whether of the client, the mock, the `kaleyra-rcs` CLI or the live suite.
Other tests check pieces in-process; this one runs the real server (2 workers, debug log,
`--state`), the client, its CLI and the live drift suite against it, with the right key, a
wrong one, the key padded with whitespace and the key put in a query string by mistake, and
greps every byte that came out.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from kaleyra_rcs import AgentNotFound, AuthenticationError, KaleyraError, KaleyraRCS, TransportError
from mock_server.core import PODS, SpecIndex
from tests._spec import ROOT

SPEC = SpecIndex.load()
MAGIC = {name: agent for agent, name in SPEC.magic_agents.items()}  # {example name: the agent number asking for it}

KEY = "sk-live-" + secrets.token_hex(12)  # a new one each run: nothing can have it by chance
WRONG = "sk-live-" + secrets.token_hex(12)
NEEDLES = (KEY, KEY.removeprefix("sk-live-"), WRONG, WRONG.removeprefix("sk-live-"))
SID = "LEAK-SID"
TESTER = {
    "phoneno": "15550001",
    "test_status": "",
    "status": "ACTIVE",
    "agent_no": "48900",
    "id": "tester-1",
    "override_dcs_check": False,
    "carrierid": 1,
}
START_S, STOP_S, CALL_S, CLI_S, LIVE_S = 20.0, 15.0, 10.0, 30.0, 60.0
QUICK = ("-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest")


class Outputs:
    """Everything a run produced, by name; the test greps all of it."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def add(self, name: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.items[f"{len(self.items):03d} {name}"] = text

    def leaks(self) -> list[tuple[str, str]]:
        return [(name, needle) for name, text in self.items.items() for needle in NEEDLES if needle in text]


# -- the server ------------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        assert parts.hostname is not None and parts.port is not None
        return parts.hostname, parts.port


def _banner_url(stdout: Path, proc: subprocess.Popen[bytes], deadline: float) -> str:
    """The root URL from the `IN pod:` banner line, as mock_server.testing reads it."""
    while time.monotonic() < deadline and proc.poll() is None:
        for line in stdout.read_text().splitlines():
            if "IN pod:" in line:
                return line.split()[-1].rsplit("/in", 1)[0]
        time.sleep(0.05)
    raise RuntimeError(f"no banner: {stdout.read_text()!r}")


def _wait_healthy(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/__mock/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("kaleyra-mock did not answer /__mock/health")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def running_server(tmp: Path) -> Iterator[Server]:
    seed = tmp / "seed.json"
    agents = {"48900": [TESTER], "48400": [], "48401": [], "48402": []}
    seed.write_text(
        json.dumps(
            {
                "default_account": {"rcs_enabled": True, "api_keys": [KEY], "agents": agents},
                "accounts": [{"pod": "*", "sid": SID, "api_keys": [KEY], "rcs_enabled": True, "agents": agents}],
            }
        )
    )
    out, err = tmp / "server.stdout", tmp / "server.stderr"
    argv = ["--port", "0", "--workers", "2", "--log-level", "debug", "--state", str(tmp / "state.sqlite3")]
    with out.open("wb") as out_file, err.open("wb") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mock_server", *argv, "--seed", str(seed)],
            cwd=ROOT,
            stdout=out_file,
            stderr=err_file,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_S
        url = _banner_url(out, proc, deadline)
        _wait_healthy(url, deadline)
        yield Server(proc, url, out, err)
    finally:
        _stop(proc)


# -- what is sent ----------------------------------------------------------------------------


def raw(server: Server, outputs: Outputs, method: str, path: str, key: str | None) -> int:
    """http.client, which sends a header value as given (httpx refuses surrounding whitespace)."""
    conn = http.client.HTTPConnection(*server.address, timeout=CALL_S)
    headers = {"Content-Type": "application/json"} | ({"api-key": key} if key is not None else {})
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    outputs.add(f"{method} {path} headers", repr(response.getheaders()))
    outputs.add(f"{method} {path} body", body)
    return response.status


TESTERS_PATH = "/{pod}/v1/" + SID + "/rcs/agent/testersbyagent?agent_number=48900"
# (method, path, api-key header, the status it must get): every way a user may hand the key over
CALLS: tuple[tuple[str, str, str | None, int], ...] = (
    ("GET", TESTERS_PATH, KEY, 200),
    ("GET", TESTERS_PATH, WRONG, 401),
    ("GET", TESTERS_PATH, f"  {KEY}  ", 200),  # whitespace around a header value is not part of it
    ("GET", TESTERS_PATH, f"\t{KEY} ", 200),
    ("GET", TESTERS_PATH, WRONG + " ", 401),
    ("GET", TESTERS_PATH + f"&api_key={KEY}", None, 401),  # the key in the query string: a user mistake
    ("GET", TESTERS_PATH + f"&api_key={KEY}", KEY, 200),
    ("GET", "/{pod}/wsgw/v1/agent/testersbyagent?agent_number=48900", KEY, 200),  # the SID-less path
    ("DELETE", "/{pod}/v1/" + SID + "/rcs/agent/48401", WRONG, 401),
    ("DELETE", "/{pod}/v1/" + SID + "/rcs/agent/48401", f" {KEY} ", 200),
    ("DELETE", "/{pod}/v1/" + SID + f"/rcs/agent/48402?api_key={KEY}", KEY, 200),
    ("DELETE", f"/{{pod}}/v1/OTHER-SID/rcs/agent/48400?api_key={WRONG}", None, 401),
)


def exercise_api(server: Server, outputs: Outputs) -> list[tuple[str, str, int]]:
    """Each call on both pods; the (pod, call, status) pairs that were not as expected."""
    unexpected = []
    for pod in PODS:
        for number, (method, path, key, expected) in enumerate(CALLS):
            status = raw(server, outputs, method, path.format(pod=pod), key)
            if status != expected:
                unexpected.append((pod, f"CALLS[{number}]", status))
    return unexpected


def _record_error(outputs: Outputs, name: str, exc: BaseException) -> None:
    outputs.add(f"{name} str", str(exc))
    outputs.add(f"{name} repr", repr(exc))
    outputs.add(f"{name} args", repr(exc.args))
    outputs.add(f"{name} __dict__", repr(vars(exc)))
    outputs.add(f"{name} traceback", "".join(traceback.format_exception(exc)))  # the causes too


def _expect_error(outputs: Outputs, name: str, kind: type[BaseException], call: Callable[[], object]) -> None:
    with pytest.raises(kind) as info:
        call()
    _record_error(outputs, name, info.value)


def exercise_client(server: Server, outputs: Outputs) -> None:
    for pod in PODS:
        base = f"{server.url}/{pod}"
        with KaleyraRCS(api_key=KEY, sid=SID, base_url=base, timeout=CALL_S) as client:
            outputs.add(f"client {pod} repr", repr(client) + str(client))
            outputs.add(f"client {pod} testers", repr(client.get_testers_by_agent("48900")))
            outputs.add(f"client {pod} delete", repr(client.delete_agent("48400")))
            _expect_error(outputs, f"client {pod} gone", AgentNotFound, partial(client.delete_agent, "48400"))
            _expect_error(
                outputs,
                f"client {pod} 401",
                AuthenticationError,
                partial(client.delete_agent, MAGIC["invalid_api_key"]),
            )
            _expect_error(
                outputs, f"client {pod} 502", KaleyraError, partial(client.get_testers_by_agent, MAGIC["gateway_error"])
            )
        with KaleyraRCS(api_key=WRONG, sid=SID, base_url=base, timeout=CALL_S) as wrong:
            outputs.add(f"client {pod} wrong repr", repr(wrong))
            _expect_error(
                outputs, f"client {pod} wrong", AuthenticationError, partial(wrong.get_testers_by_agent, "48900")
            )
    _expect_error(outputs, "client padded key", ValueError, partial(KaleyraRCS, api_key=f" {KEY} ", sid=SID))
    with KaleyraRCS(api_key=KEY, sid=SID, base_url=f"{server.url}/in", timeout=CALL_S) as client:
        arm(server, outputs, "faults", {"fault": "connection_reset", "times": 1, "match": {"sid": SID}})
        _expect_error(outputs, "client reset", TransportError, partial(client.get_testers_by_agent, "48900"))


def kaleyra_rcs(outputs: Outputs, key: str, base: str, *argv: str) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KALEYRA_")}
    env = clean | {"KALEYRA_API_KEY": key, "KALEYRA_SID": SID, "KALEYRA_BASE_URL": base}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kaleyra-rcs"), *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=CLI_S,
        check=False,
    )
    outputs.add(f"kaleyra-rcs {' '.join(argv)} stdout", done.stdout)
    outputs.add(f"kaleyra-rcs {' '.join(argv)} stderr", done.stderr)
    return done.returncode


def exercise_cli(server: Server, outputs: Outputs) -> list[int]:
    return [
        kaleyra_rcs(outputs, KEY, f"{server.url}/in", "testers", "--agent", "48900"),
        kaleyra_rcs(outputs, KEY, f"{server.url}/na", "delete-agent", MAGIC["agent_not_found"], "--yes"),
        kaleyra_rcs(outputs, WRONG, f"{server.url}/in", "testers", "--agent", "48900"),
        kaleyra_rcs(outputs, f" {KEY}\t", f"{server.url}/na", "testers", "--agent", "48900"),
    ]


# -- the control plane -----------------------------------------------------------------------


def control(server: Server, outputs: Outputs, method: str, path: str, body: Any = None) -> httpx.Response:
    response = httpx.request(method, f"{server.url}/__mock/{path}", json=body, timeout=CALL_S)
    outputs.add(f"control {method} {path}", f"{response.status_code} {response.headers!r} {response.text}")
    return response


def arm(server: Server, outputs: Outputs, kind: str, body: dict[str, Any]) -> None:
    assert control(server, outputs, "POST", kind, body).status_code == 201


def exercise_control(server: Server, outputs: Outputs) -> list[dict[str, Any]]:
    """Every dump there is, after putting the key into accounts through the control plane too."""
    agents: dict[str, list[Any]] = {"700": []}
    stored = control(server, outputs, "PUT", "accounts/in/OTHER", {"api_keys": [KEY, WRONG], "agents": agents})
    assert stored.status_code == 200
    assert control(server, outputs, "PUT", "accounts/na/OTHER", {"api_keys": KEY}).status_code == 400
    arm(server, outputs, "faults", {"fault": "latency", "params": {"ms": 1}, "match": {"sid": SID}})
    arm(server, outputs, "scenarios", {"scenario": "gateway_error", "times": 3, "match": {"sid": "OTHER"}})
    for path in ("faults", "scenarios", "default-account", f"accounts/in/{SID}", f"accounts/na/{SID}"):
        control(server, outputs, "GET", path)
    control(server, outputs, "GET", "accounts/in/OTHER")
    control(server, outputs, "GET", "health")
    state = control(server, outputs, "GET", "state")
    assert control(server, outputs, "PUT", "state", state.json()).status_code == 200  # a dump loads back
    journal: list[dict[str, Any]] = control(server, outputs, "GET", "journal?limit=1000").json()
    return journal


# -- the live drift suite, pointed at the mock ---------------------------------------------------


def run_live_suite(server: Server, outputs: Outputs, reports: Path) -> tuple[int, str]:
    """`--target live` takes its pod from KALEYRA_BASE_URL, so it can ask the mock; the report goes to tmp."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KALEYRA_") and k != "PYTEST_ADDOPTS"}
    env = clean | {
        "KALEYRA_BASE_URL": f"{server.url}/in",
        "KALEYRA_API_KEY": KEY,
        "KALEYRA_SID": SID,
        "KALEYRA_AGENT_NUMBER": "48900",
        "KALEYRA_RATE_LIMIT": "0",
        "KALEYRA_ALLOW_DESTRUCTIVE": "1",
        "KALEYRA_DELETE_AGENT_NUMBER": "48400",
        "KALEYRA_HOST_HEADER_PROBES": "1",
    }
    argv = ["contracts/live", "--target", "live", "--destructive", "--drift-report", str(reports), "-rA", *QUICK]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=LIVE_S,
        check=False,
    )
    outputs.add("live suite stdout", done.stdout)
    outputs.add("live suite stderr", done.stderr)
    for report in sorted(reports.iterdir()):
        outputs.add(f"live report {report.name}", report.read_bytes())
    return done.returncode, done.stdout.decode("utf-8", "replace")


def add_files(outputs: Outputs, *paths: Path) -> None:
    for path in paths:
        if path.exists():
            outputs.add(f"file {path.name}", path.read_bytes())


# -- the run ---------------------------------------------------------------------------------


def test_api_key__appears_in_no_output_of_a_full_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")  # the client's logs and httpx/httpcore's
    outputs = Outputs()
    state = tmp_path / "state.sqlite3"
    journal_dir = Path(f"{state}.journal.d")

    def store_files() -> list[Path]:  # the journal's files, as many as there were writers
        return [state, Path(f"{state}-wal"), Path(f"{state}-shm"), *sorted(journal_dir.glob("*"))]

    reports = tmp_path / "reports"
    reports.mkdir()
    with running_server(tmp_path) as server:
        unexpected = exercise_api(server, outputs)
        exercise_client(server, outputs)
        cli_codes = exercise_cli(server, outputs)
        journal = exercise_control(server, outputs)
        assert list(journal_dir.glob("*.log"))  # the journal is among the files read
        add_files(outputs, *store_files())  # while the workers hold the WAL
        control(server, outputs, "POST", "reset")
        live_rc, live_output = run_live_suite(server, outputs, reports)
        live_journal = control(server, outputs, "GET", "journal?limit=1000").json()
        control(server, outputs, "GET", "state")
    assert server.proc.returncode == 0
    add_files(outputs, server.stdout, server.stderr, *store_files())
    outputs.add("client logs", caplog.text)

    # the run did what it should, so the outputs are worth grepping
    assert unexpected == []
    assert cli_codes == [0, 5, 4, 2], cli_codes
    assert live_rc == 0, live_output
    assert {p.name for p in reports.iterdir()} == {"drift.md", "drift.json", "live-cassette.jsonl"}  # all grepped
    fingerprints = {"sha256:" + hashlib.sha256(key.encode()).hexdigest()[:8] for key in (KEY, WRONG)}
    assert {e["api_key"] for e in journal} == fingerprints | {None}  # keys only as fingerprints, or none sent
    # every API request of the run: CALLS on each pod; six client calls on each pod, then the reset one;
    # three CLI runs (the padded key is refused before anything is sent)
    assert len(journal) == len(CALLS) * len(PODS) + 6 * len(PODS) + 1 + 3, journal[:3]
    drift = json.loads((reports / "drift.json").read_text())
    assert len(live_journal) == drift["bounds"]["requests_sent"], live_journal
    # Bounds, not values: that there is something to grep. A debug log's lines and the outputs' sizes
    # vary with timing (the workers' start-up, timestamps), and no rule of the mock fixes them.
    server_log = server.stderr.read_text() + server.stdout.read_text()
    assert len(server_log.splitlines()) > 5, server_log
    assert len(outputs.items) > 100 and sum(map(len, outputs.items.values())) > 50_000

    assert outputs.leaks() == []
    canary = Outputs()
    canary.add("canary", f"x{KEY}x".encode())
    assert canary.leaks() == [("000 canary", KEY), ("000 canary", KEY.removeprefix("sk-live-"))]  # the grep works
