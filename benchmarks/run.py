"""`make bench`: the figures of the benchmarks issue, each taken in one run so they compare as ratios.

Bounded in time (about 12 minutes at 5 s a point and 3 interleaved rounds, `make test` aside),
loopback only; every server it starts is stopped. Needs `wrk` (Debian: `apt-get install wrk`);
says so and exits 2 when it is missing. The stores' figure needs redis-server (skipped without).

    python -m benchmarks.run [--seconds 5] [--rounds 3] [--quick] [--skip-make-test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.peers import PEERS
from benchmarks.peers import missing as peer_missing
from mock_server.testing import exit_on_sigterm, free_port, group_rss_kib

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SID = "BENCH"
GET_PATH = f"/in/v1/{SID}/rcs/agent/testersbyagent?agent_number=48900"
HEADERS = {"api-key": "bench-key", "Content-Type": "application/json"}
CONNECTIONS = (1, 8, 64)
GRANIAN_OPTIONS = ["--interface", "wsgi", "--workers", "2", "--blocking-threads", "8", "--backpressure", "64"]
RSGI_OPTIONS = ["--interface", "rsgi", "--workers", "2", "--loop", "uvloop", "--runtime-mode", "st"]


def progress(line: str) -> None:
    """A line on stderr, flushed at once: the run takes minutes, and stdout is its report."""
    print(f"benchmarks: {line}", file=sys.stderr, flush=True)


def _wait_for(
    url: str, timeout: float = 20.0, headers: dict[str, str] | None = None, client: httpx.Client | None = None
) -> float:
    """Seconds until `url` answers 200; raises after `timeout`. A cold start passes a `client`
    made before the server was started: `httpx.get` builds one per try, about 20 ms of CPU
    (its TLS context) taken from the server starting beside it, and up to as much added to the time."""
    started = time.perf_counter()
    with contextlib.nullcontext(client) if client is not None else httpx.Client(timeout=1) as polling:
        while time.perf_counter() - started < timeout:
            try:
                if polling.get(url, headers=headers).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.002)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _env(tree: Path) -> dict[str, str]:
    """For a process running `tree`'s code (another checkout's packages first on the path).

    Bytecode may be cached, as on a user's machine (pip compiles an installed package; a checkout
    writes it at its first import): where PYTHONDONTWRITEBYTECODE is set, as on this VM, every
    start compiled the mock's own modules again, 0.09 s of a 0.6 s cold start."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if tree != ROOT:
        env["PYTHONPATH"] = str(tree)
    return env


def _start(cmd: list[str], tree: Path = ROOT) -> subprocess.Popen[bytes]:
    """`tree`: the checkout whose code runs."""
    return subprocess.Popen(
        cmd, cwd=tree, env=_env(tree), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def start_mock(port: int, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """The server `make run` starts (2 workers, SQLite, journal on)."""
    return _start([sys.executable, "-m", "mock_server", "--port", str(port), *extra])


def baseline_starter(tree: Path) -> Callable[[int], subprocess.Popen[bytes]]:
    """The server `make run` starts, from an earlier checkout (`--baseline`), in this venv."""

    def start(port: int) -> subprocess.Popen[bytes]:
        return _start([sys.executable, "-m", "mock_server", "--port", str(port)], tree)

    return start


def start_ceiling(port: int) -> subprocess.Popen[bytes]:
    granian = [sys.executable, "-m", "granian", *GRANIAN_OPTIONS, "--port", str(port), "--log-level", "error"]
    return _start([*granian, "--no-ws", "benchmarks.ceiling:app"])


def start_floor(port: int) -> subprocess.Popen[bytes]:
    """granian as the mock starts it, with a callable that imports nothing (benchmarks/floor.py)."""
    return _start([sys.executable, "-m", "benchmarks.floor", str(port)])


def start_ceiling_rsgi(port: int) -> subprocess.Popen[bytes]:
    """The same bare callable behind the mock's own server set-up (mock_server/web/_server.py)."""
    granian = [sys.executable, "-m", "granian", *RSGI_OPTIONS, "--port", str(port), "--log-level", "error"]
    return _start([*granian, "--no-ws", "--factory", "benchmarks.ceiling:rsgi_app"])


# -- wrk ----------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, connections: int, seconds: float, script: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    if not re.search(r"^\s+99%", out, re.MULTILINE):
        raise RuntimeError(f"wrk gave no latency distribution for {url} at {connections} connections:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    # Only the "Latency Distribution" lines start with the percentile: "+/- Stdev" may read "99%" too.
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    point: dict[str, Any] = {"rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": total, "non_2xx": errors}
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    point["socket_errors"] = sum(int(n) for n in sockets.groups()) if sockets else 0
    non_200 = re.search(r"^non_200: (\d+)$", out, re.MULTILINE)  # printed by _REAL_DELETE_SCRIPT's done()
    if non_200:
        point["non_200"] = int(non_200.group(1))
    return point


def _warm(url: str, seconds: float, script: Path) -> None:
    """Every worker, and WireMock's JIT, warmed before anything is measured."""
    cmd = ["wrk", "-t1", "-c64", f"-d{max(1, round(seconds))}s", "-s", str(script), url]
    subprocess.run(cmd, capture_output=True, timeout=seconds + 30, check=True)


def _wrk_script(folder: Path) -> Path:
    script = folder / "headers.lua"
    lines = [f'wrk.headers["{name}"] = "{value}"' for name, value in HEADERS.items()]
    script.write_text("\n".join(lines) + "\n")
    return script


# -- the figures ---------------------------------------------------------------------------------


def _median_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """One point standing for a target's rounds at one concurrency: the medians, the errors summed."""
    return {
        "rps": round(statistics.median(p["rps"] for p in points), 1),
        "p50_ms": round(statistics.median(p["p50_ms"] for p in points), 3),
        "p99_ms": round(statistics.median(p["p99_ms"] for p in points), 3),
        "requests": sum(p["requests"] for p in points),
        "non_2xx": sum(p["non_2xx"] for p in points),
        "socket_errors": sum(p["socket_errors"] for p in points),
    }


def _ratios(results: dict[str, Any], name: str, other: str, connections: tuple[int, ...]) -> dict[str, Any]:
    """mock / other at each concurrency, round by round (round i of one beside round i of the
    other): the median, and the worst, which a goal must clear."""
    out: dict[str, Any] = {}
    for c in connections:
        each = [
            a[str(c)]["rps"] / b[str(c)]["rps"]
            for a, b in zip(results[name]["rounds"], results[other]["rounds"], strict=True)
        ]
        out[str(c)] = round(statistics.median(each), 3)
        out[f"{c}_min"] = round(min(each), 3)
    return out


def _interleaved(
    starters: list[tuple[str, Callable[[int], subprocess.Popen[bytes]], str]],
    rounds: int,
    seconds: float,
    script: Callable[[str, int], Path],
    connections: tuple[int, ...],
    before_point: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Every target started at once, then `rounds` rounds, each measuring every target at every
    concurrency in turn: a slow patch of the machine hits all targets alike, never one alone."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    roots: dict[str, str] = {}
    results: dict[str, Any] = {}
    try:
        for name, start, path in starters:
            port = free_port()
            started = time.perf_counter()
            procs[name] = start(port)
            roots[name] = f"http://127.0.0.1:{port}"
            _wait_for(roots[name] + path, timeout=60, headers=HEADERS)
            results[name] = {"first_200_s": round(time.perf_counter() - started, 3), "rounds": []}
            _warm(roots[name] + path, seconds, script(name, 64))
        for number in range(1, rounds + 1):
            progress(
                f"  round {number}/{rounds}: {len(starters)} targets x {len(connections)} points of {seconds:g} s…"
            )
            for name, _start, path in starters:
                points = {}
                for c in connections:
                    if before_point is not None:
                        before_point(name, roots[name])
                    points[str(c)] = wrk(roots[name] + path, c, seconds, script(name, c))
                results[name]["rounds"].append(points)
        for name in procs:
            results[name]["rss_kib_after"] = group_rss_kib(procs[name].pid)  # the whole process tree
            for c in connections:
                results[name][str(c)] = _median_point([r[str(c)] for r in results[name]["rounds"]])
    finally:
        for proc in procs.values():
            _stop(proc)
    return results


def throughput(seconds: float, rounds: int, script: Path, scratch: Path, baseline: Path | None) -> dict[str, Any]:
    """Figures 1 and 2, GET testers at 1 / 8 / 64 connections: the mock, the ceilings and the
    peers (and `--baseline`'s mock), in interleaved rounds."""
    targets: list[tuple[str, Callable[[int], subprocess.Popen[bytes]], str]] = [
        ("mock", start_mock, GET_PATH),
        ("ceiling", start_ceiling, GET_PATH),
        ("ceiling_rsgi", start_ceiling_rsgi, GET_PATH),
    ]
    if baseline is not None:
        targets.insert(1, ("baseline", baseline_starter(baseline), GET_PATH))
    skipped: dict[str, str] = {}
    for name, path, starter in PEERS:
        why = peer_missing(name)
        if why is None:
            targets.append((name, lambda port, starter=starter: starter(port, scratch), path))  # type: ignore[misc]
        else:
            skipped[name] = why
            progress(f"{name} skipped: {why}")
    results = _interleaved(targets, rounds, seconds, lambda _name, _c: script, CONNECTIONS)
    for other in [name for name, _start, _path in targets if name != "mock"]:
        results[f"ratio_mock_to_{other}"] = _ratios(results, "mock", other, CONNECTIONS)
    if skipped:
        results["skipped"] = skipped
    return results


_DELETE_SCRIPT = """
wrk.method = "DELETE"
{headers}
local n = 0
-- Each agent is deleted twice: agent_deleted (200), then agent_not_found (400), as a cleanup job
-- that retries would see. A new SID each time, so the first delete keeps succeeding.
request = function()
  n = n + 1
  return wrk.format(nil, "/in/v1/DEL" .. math.floor(n / 2) .. "/rcs/agent/48400")
end
"""


_REAL_DELETE_SCRIPT = """
wrk.method = "DELETE"
{headers}
-- Every request deletes agent 48400 of a SID never seen before: each one must be a 200
-- (agent_deleted). The answers that are not are counted and printed by done().
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  n = 0
  non_200 = 0
end
request = function()
  n = n + 1
  return wrk.format(nil, "/in/v1/{tag}" .. n .. "/rcs/agent/48400")
end
response = function(status, headers, body)
  if status ~= 200 then
    non_200 = non_200 + 1
  end
end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("non_200")
  end
  io.write("non_200: " .. total .. "\\n")
end
"""
REAL_DELETE_CONNECTIONS = (8, 64)


def _real_delete_script(folder: Path, connections: int, headers: str) -> Path:
    """The real-DELETE wrk script, with a new tag each time: no SID repeats across points or rounds."""
    path = folder / f"real-delete-{connections}.lua"
    path.write_text(_REAL_DELETE_SCRIPT.format(headers=headers, tag=f"RD{connections}T{time.monotonic_ns()}"))
    return path


def _real_delete(root: str, connections: int, seconds: float, folder: Path, headers: str) -> dict[str, Any]:
    """One point of the real-DELETE load: a new SID on every request, so every answer is a 200."""
    point = wrk(f"{root}/", connections, seconds, _real_delete_script(folder, connections, headers))
    if "non_200" not in point:
        raise RuntimeError(f"the real-DELETE script printed no count of non-200 answers at {connections} connections")
    return point


def delete_throughput(seconds: float, rounds: int, folder: Path, baseline: Path | None) -> dict[str, Any]:
    """Figure 1 for DELETE: the mock against the ceiling.

    Two loads: `DELETE` twice per agent (200, then 400) at 1 / 8 / 64 connections, once; and the
    real DELETE (`real_delete`, a new SID on every request, every answer a 200) at 8 and 64 in
    interleaved rounds, the goal's load. The mock's state is reset before each point."""
    script = folder / "delete.lua"
    headers = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in HEADERS.items())
    script.write_text(_DELETE_SCRIPT.format(headers=headers))
    # ceiling_rsgi: the bare callable behind the mock's own server set-up, what that interface allows.
    starters: list[tuple[str, Callable[[int], subprocess.Popen[bytes]], str]] = [
        ("mock", start_mock, "/"),
        ("ceiling", start_ceiling, "/"),
        ("ceiling_rsgi", start_ceiling_rsgi, "/"),
    ]
    if baseline is not None:
        starters.insert(1, ("baseline", baseline_starter(baseline), "/"))

    def reset(name: str, root: str) -> None:
        if name in ("mock", "baseline"):
            httpx.post(f"{root}/__mock/reset", json={}, timeout=10).raise_for_status()

    def real_script(_name: str, connections: int) -> Path:
        return _real_delete_script(folder, connections, headers)

    # GET_PATH answers 200 on both, so the start-up wait works; the DELETE loads name their own paths.
    twice = _interleaved(
        [(n, s, GET_PATH) for n, s, _ in starters], 1, seconds, lambda _n, _c: script, CONNECTIONS, reset
    )
    results: dict[str, Any] = {name: {str(c): twice[name][str(c)] for c in CONNECTIONS} for name in twice}
    for name in twice:
        for c in CONNECTIONS:
            point = results[name][str(c)]
            point["share_not_2xx"] = round(point["non_2xx"] / max(1, point["requests"]), 3)
    results["ratio_mock_to_ceiling"] = {
        str(c): round(results["mock"][str(c)]["rps"] / results["ceiling"][str(c)]["rps"], 3) for c in CONNECTIONS
    }
    real = _interleaved(
        [(n, s, GET_PATH) for n, s, _ in starters], rounds, seconds, real_script, REAL_DELETE_CONNECTIONS, reset
    )
    for name, _start, _path in starters:
        for points in real[name]["rounds"]:
            for c in REAL_DELETE_CONNECTIONS:
                if "non_200" not in points[str(c)]:
                    raise RuntimeError(f"the real-DELETE script printed no count of non-200 answers ({name}, {c})")
    real["ratio_mock_to_ceiling"] = _ratios(real, "mock", "ceiling", REAL_DELETE_CONNECTIONS)
    real["ratio_mock_to_ceiling_rsgi"] = _ratios(real, "mock", "ceiling_rsgi", REAL_DELETE_CONNECTIONS)
    if baseline is not None:
        real["ratio_mock_to_baseline"] = _ratios(real, "mock", "baseline", REAL_DELETE_CONNECTIONS)
    real["mock_non_200"] = sum(p[str(c)]["non_200"] for p in real["mock"]["rounds"] for c in REAL_DELETE_CONNECTIONS)
    results["real_delete"] = real
    return results


def cold_start(runs: int = 5, baseline: Path | None = None) -> dict[str, Any]:
    """Figure 3: process start to the first 200 of GET testers, median of `runs`, beside the
    floor (granian started alike, with a callable that imports nothing: `benchmarks/floor.py`);
    with `--baseline`, its starts alternate with the mock's too."""
    starters: dict[str, Callable[[int], subprocess.Popen[bytes]]] = {"mock": start_mock, "floor": start_floor}
    if baseline is not None:
        starters["baseline"] = baseline_starter(baseline)
    times: dict[str, list[float]] = {name: [] for name in starters}
    with httpx.Client(timeout=1) as client:
        for run in range(runs + 1):  # the first start of each is not counted: it may write bytecode
            for name, start in starters.items():
                port = free_port()
                started = time.perf_counter()
                proc = start(port)
                try:
                    _wait_for(f"http://127.0.0.1:{port}{GET_PATH}", headers=HEADERS, client=client)
                    if run:
                        times[name].append(time.perf_counter() - started)
                finally:
                    _stop(proc)
    out: dict[str, Any] = {"median_s": round(statistics.median(times["mock"]), 3)}
    out["runs_s"] = [round(t, 3) for t in times["mock"]]
    out["floor_median_s"] = round(statistics.median(times["floor"]), 3)
    out["floor_runs_s"] = [round(t, 3) for t in times["floor"]]
    if baseline is not None:
        out["baseline_median_s"] = round(statistics.median(times["baseline"]), 3)
        out["baseline_runs_s"] = [round(t, 3) for t in times["baseline"]]
    return out


BLOCK = 100  # calls of one side of an in-process ratio before the other side's turn


def in_process(calls: int, rounds: int) -> dict[str, Any]:
    """Figure 4: the facade over the mock in-process, beside bare httpx on an `httpx.MockTransport`
    answering the same body (what a user's suite would pay with no mock at all), sync and async.
    Interleaved: each round times `calls` of each of the four, each ratio's two sides taking
    turns in blocks of `BLOCK` calls."""
    from kaleyra_rcs import AsyncKaleyraRCS, KaleyraRCS
    from mock_server.pytest_plugin import KaleyraMock
    from mock_server.web import create_app

    mock = KaleyraMock(create_app())
    path = f"/v1/{SID}/rcs/agent/testersbyagent"
    params = {"agent_number": "48900"}
    with httpx.Client(transport=mock.wsgi_transport(), base_url=mock.base_url("in")) as probe:
        answer = probe.get(path, params=params, headers=HEADERS)
    body, content_type = answer.content, answer.headers["content-type"]

    def reply(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    async def reply_async(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    # Calls per second of this thread's CPU time: all four run on this one thread and never wait,
    # so that is their cost; wall time on a shared VM also counts the time the thread was not
    # scheduled, which moved one 2,000-call round against the next by 40%. The two sides of a
    # ratio take turns in blocks of BLOCK calls, so a slow patch of the VM (CPU time moved too:
    # bare async httpx gave 2,473 and 3,525 calls a second in two runs) meets both alike.
    def rates(bare: Callable[[], object], facade: Callable[[], object]) -> tuple[float, float]:
        spent = [0.0, 0.0]
        for _ in range(calls // BLOCK):
            for side, call in enumerate((bare, facade)):
                started = time.thread_time()
                for _ in range(BLOCK):
                    call()
                spent[side] += time.thread_time() - started
        return calls / spent[0], calls / spent[1]

    async def rates_async(bare: Callable[[], Any], facade: Callable[[], Any]) -> tuple[float, float]:
        spent = [0.0, 0.0]
        for _ in range(calls // BLOCK):
            for side, call in enumerate((bare, facade)):
                started = time.thread_time()
                for _ in range(BLOCK):
                    await call()
                spent[side] += time.thread_time() - started
        return calls / spent[0], calls / spent[1]

    runs: dict[str, list[float]] = {"sync_bare": [], "sync_facade": [], "async_bare": [], "async_facade": []}

    async def measure() -> None:
        base = mock.base_url("in")
        with (
            httpx.Client(transport=httpx.MockTransport(reply), base_url=base) as bare,
            KaleyraRCS(api_key="k", sid=SID, base_url=base, transport=mock.wsgi_transport()) as facade,
        ):
            async with (
                httpx.AsyncClient(transport=httpx.MockTransport(reply_async), base_url=base) as abare,
                AsyncKaleyraRCS(api_key="k", sid=SID, base_url=base, transport=mock.asgi_transport()) as afacade,
            ):

                def bare_call() -> object:
                    return bare.get(path, params=params).json()

                async def abare_call() -> object:
                    return (await abare.get(path, params=params)).json()

                bare_call()
                facade.get_testers_by_agent("48900")
                await abare_call()
                await afacade.get_testers_by_agent("48900")
                for _ in range(rounds):
                    sync = rates(bare_call, lambda: facade.get_testers_by_agent("48900"))
                    runs["sync_bare"].append(sync[0])
                    runs["sync_facade"].append(sync[1])
                    asynchronous = await rates_async(abare_call, lambda: afacade.get_testers_by_agent("48900"))
                    runs["async_bare"].append(asynchronous[0])
                    runs["async_facade"].append(asynchronous[1])

    asyncio.run(measure())
    out: dict[str, Any] = {
        "calls": calls,
        "rounds": rounds,
        "runs": {k: [round(v) for v in r] for k, r in runs.items()},
    }
    for side in ("sync", "async"):
        each = [f / b for f, b in zip(runs[f"{side}_facade"], runs[f"{side}_bare"], strict=True)]
        out[f"{side}_rps"] = round(statistics.median(runs[f"{side}_facade"]))
        out[f"{side}_bare_rps"] = round(statistics.median(runs[f"{side}_bare"]))
        out[f"{side}_ratio"] = round(statistics.median(each), 3)
        out[f"{side}_ratio_min"] = round(min(each), 3)
    return out


# What the `kaleyra_mock` and `kaleyra_client` fixtures do for each test of a user's suite, and
# its one call; in a process of its own, so that a `--baseline` checkout runs its own code.
_SETUP_CODE = """
import statistics, sys, time
from kaleyra_rcs import KaleyraRCS
from mock_server.pytest_plugin import KaleyraMock
from mock_server.web import create_app

def one():
    mock = KaleyraMock(create_app())
    with KaleyraRCS(api_key="k", sid="S", base_url=mock.base_url("in"), transport=mock.wsgi_transport()) as client:
        client.get_testers_by_agent("48900")

for _ in range(5):
    one()
times = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    one()
    times.append(time.perf_counter() - started)
print(statistics.median(times) * 1000)
"""


def suite_setup(tests: int, rounds: int, baseline: Path | None = None) -> dict[str, Any]:
    """Figure 4b: per test of a user's suite, the in-process fixtures' set-up and one call (ms,
    median of `tests`), in interleaved rounds beside `--baseline`'s. A test that also sends a
    control request over HTTP (`/__mock/...`) pays about 15 ms more, for its app's control routes;
    the plugin's own helpers (`arm_scenario`, `reset`, ...) call the control plane directly."""
    trees = {"mock": ROOT, **({"baseline": baseline} if baseline is not None else {})}
    runs: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            done = subprocess.run(
                [sys.executable, "-c", _SETUP_CODE, str(tests)],
                cwd=tree,
                env=_env(tree),
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise RuntimeError(f"test set-up ({name}) failed: {done.stderr.strip()[-500:]}")
            runs[name].append(float(done.stdout.split()[-1]))
    out: dict[str, Any] = {"tests": tests, "runs_ms": {k: [round(v, 2) for v in r] for k, r in runs.items()}}
    for name, measured in runs.items():
        out[f"{name}_ms"] = round(statistics.median(measured), 2)
    return out


def client_overhead(calls: int) -> dict[str, Any]:
    """Figure 5: the facade against raw httpx, same server, sequential requests."""
    from kaleyra_rcs import KaleyraRCS

    port = free_port()
    proc = start_mock(port, ("--workers", "1"))
    try:
        base = f"http://127.0.0.1:{port}/in"
        _wait_for(f"http://127.0.0.1:{port}{GET_PATH}", headers=HEADERS)

        def timed(call: Callable[[], object]) -> float:
            call()
            started = time.perf_counter()
            for _ in range(calls):
                call()
            return (time.perf_counter() - started) / calls * 1e6

        with httpx.Client(base_url=base, headers=HEADERS) as raw:
            path = f"/v1/{SID}/rcs/agent/testersbyagent"
            raw_us = timed(lambda: raw.get(path, params={"agent_number": "48900"}).json())
        with KaleyraRCS(api_key="k", sid=SID, base_url=base) as client:
            facade_us = timed(lambda: client.get_testers_by_agent("48900"))
    finally:
        _stop(proc)
    return {"raw_httpx_us": round(raw_us), "facade_us": round(facade_us), "overhead_us": round(facade_us - raw_us)}


def memory(script: Path, checkpoints: tuple[int, ...]) -> dict[str, Any]:
    """Figure 6: the server's RSS after N requests with the journal on (it is bounded)."""
    port = free_port()
    proc = start_mock(port)
    url = f"http://127.0.0.1:{port}{GET_PATH}"
    out: dict[str, Any] = {}
    try:
        _wait_for(url, headers=HEADERS)
        probe = wrk(url, 64, 1, script)  # also learns the rate, to size the runs below
        done, rate = probe["requests"], max(500.0, probe["rps"])
        for target in checkpoints:
            while done < target:
                done += wrk(url, 64, max(1, min(30, round((target - done) / rate))), script)["requests"]
            out[str(target)] = {"requests": done, "rss_kib": group_rss_kib(proc.pid)}
        journal = httpx.get(f"http://127.0.0.1:{port}/__mock/journal?limit=100000", timeout=10).json()
        out["journal_entries"] = len(journal)
    finally:
        _stop(proc)
    first, last = (out[str(c)]["rss_kib"] for c in (checkpoints[0], checkpoints[-1]))
    out["growth"] = round(last / first - 1, 3)
    return out


def stores(seconds: float) -> dict[str, Any]:
    """Figure 8: GET and the real DELETE on each store (`benchmarks/stores.py`); skipped, with why,
    without redis-server or the `[redis]` extra."""
    from benchmarks.stores import measure_stores

    if shutil.which("redis-server") is None:
        why = "redis-server is missing (Debian: apt-get install redis-server)"
        progress(f"stores skipped: {why}")
        return {"skipped": why}
    return measure_stores(seconds)


def make_test_wall() -> dict[str, Any]:
    """Figure 7: `make test` (lint, types and every test) in the existing virtual environment."""
    started = time.perf_counter()
    done = subprocess.run(["make", "test"], cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    summary = re.findall(r"^(\d+ passed.*)$", done.stdout, re.MULTILINE)
    return {"wall_s": round(wall, 1), "exit_code": done.returncode, "pytest": summary[-1] if summary else None}


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        cell.ljust(width) if i == 0 else cell.rjust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    return [_row(header, widths), _row(["-" * w for w in widths], widths), *(_row(r, widths) for r in rows)]


def summary(figures: dict[str, Any]) -> str:
    """The printed report: the goals, the ratios, then each target's req/s, p99 at 64 connections and RSS."""
    lines: list[str] = []
    judged = figures.get("goals") or []
    if judged:
        rounds = figures.get("rounds")
        lines.append(f"Goals (each judged on its worst of {rounds} interleaved rounds)")
        rows = [
            [
                g["goal"],
                g["target"],
                "-" if g["measured"] is None else f"{g['measured']:g}",
                {True: "met", False: "NOT MET", None: "not measured"}[g["met"]],
                g["note"],
            ]
            for g in judged
        ]
        lines += _table(["goal", "target", "worst", "", "note"], rows)
        lines.append("")
    get = figures.get("throughput_get_testers", {})
    targets = [
        name for name, value in get.items() if isinstance(value, dict) and "1" in value and isinstance(value["1"], dict)
    ]
    if targets:
        conns = [f"@{c}" for c in CONNECTIONS]
        lines.append("GET testers")
        ratios = [name for name in get if name.startswith("ratio_mock_to_")]
        rows = [
            [
                name.replace("ratio_", "").replace("_to_", " / "),
                *(f"{get[name][str(c)]:.2f} ({get[name][f'{c}_min']:.2f})" for c in CONNECTIONS),
            ]
            for name in ratios
        ]
        lines += _table(["ratio: median (worst round)", *conns], rows)
        lines.append("")
        rows = []
        for name in targets:
            point = get[name]
            rss = point.get("rss_kib_after")
            rows.append(
                [
                    name,
                    *(f"{point[str(c)]['rps']:,.0f}" for c in CONNECTIONS),
                    f"{point['64']['p99_ms']:.2f}",
                    "-" if rss is None else f"{rss / 1024:,.1f}",
                    f"{sum(point[str(c)]['non_2xx'] + point[str(c)]['socket_errors'] for c in CONNECTIONS)}",
                ]
            )
        lines += _table(["req/s", *conns, "p99@64 ms", "RSS MiB", "errors"], rows)
        for name, why in get.get("skipped", {}).items():
            lines.append(f"skipped {name}: {why}")
    delete = figures.get("throughput_delete_agent", {})
    real = delete.get("real_delete")
    if real:
        lines += ["", "DELETE agent"]
        rows = [
            [
                "mock / ceiling, twice per agent",
                *(f"{delete['ratio_mock_to_ceiling'][str(c)]:.2f}" for c in CONNECTIONS),
            ]
        ]
        rows.append(["mock, twice per agent, req/s", *(f"{delete['mock'][str(c)]['rps']:,.0f}" for c in CONNECTIONS)])
        rows.append(
            [
                "mock / ceiling, real DELETE: median (worst)",
                "-",
                *(
                    f"{real['ratio_mock_to_ceiling'][str(c)]:.2f} ({real['ratio_mock_to_ceiling'][f'{c}_min']:.2f})"
                    for c in REAL_DELETE_CONNECTIONS
                ),
            ]
        )
        rows.append(
            [
                "mock / ceiling_rsgi, real DELETE: median (worst)",
                "-",
                *(
                    f"{real['ratio_mock_to_ceiling_rsgi'][str(c)]:.2f} "
                    f"({real['ratio_mock_to_ceiling_rsgi'][f'{c}_min']:.2f})"
                    for c in REAL_DELETE_CONNECTIONS
                ),
            ]
        )
        for name in [n for n in ("mock", "baseline", "ceiling", "ceiling_rsgi") if n in real]:
            rows.append(
                [
                    f"{name}, real DELETE, req/s",
                    "-",
                    *(f"{real[name][str(c)]['rps']:,.0f}" for c in REAL_DELETE_CONNECTIONS),
                ]
            )
        lines += _table(["", *(f"@{c}" for c in CONNECTIONS)], rows)
        p99 = {name: real[name]["64"]["p99_ms"] for name in ("mock", "ceiling")}
        lines.append(
            f"real DELETE p99@64: mock {p99['mock']:.2f} ms, ceiling {p99['ceiling']:.2f} ms; "
            f"mock answers that were not 200: {real['mock_non_200']}"
        )
    inproc = figures.get("in_process") or {}
    if "sync_rps" in inproc:
        lines += [
            "",
            "In-process, calls per CPU second (median of the rounds), the facade over the mock / bare httpx",
        ]
        for side in ("sync", "async"):
            lines.append(
                f"  {side}: {inproc[f'{side}_rps']:,} / {inproc[f'{side}_bare_rps']:,} = "
                f"{inproc[f'{side}_ratio']:.2f} (worst round {inproc[f'{side}_ratio_min']:.2f})"
            )
    setup = figures.get("test_setup") or {}
    if "mock_ms" in setup:
        against = f" (baseline {setup['baseline_ms']} ms)" if "baseline_ms" in setup else ""
        lines.append(
            f"  a test's set-up (kaleyra_mock + kaleyra_client + one API call): {setup['mock_ms']} ms{against}, "
            f"median of {setup['tests']} tests per round"
        )
    if "sqlite" in (figures.get("stores") or {}):
        from benchmarks.stores import table

        lines += ["", "Stores (req/s; two replicas: one wrk per replica at once, summed)", table(figures["stores"])]
    cold = figures.get("cold_start") or {}
    if "median_s" in cold:
        lines.append(f"Cold start (process start to first 200): median {cold['median_s']} s of {cold['runs_s']}")
        if "floor_median_s" in cold:
            lines.append(f"  floor (granian alone): median {cold['floor_median_s']} s of {cold['floor_runs_s']}")
        if "baseline_median_s" in cold:
            lines.append(f"  baseline: median {cold['baseline_median_s']} s of {cold['baseline_runs_s']}")
    return "\n".join(lines)


PEER_NAMES = tuple(name for name, _path, _start in PEERS)


def goals(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The speed goals of the benchmarks issue, each judged on its worst round (a goal counts
    only when it holds in every interleaved round), or None where a figure is missing."""
    get = figures.get("throughput_get_testers", {})
    real = figures.get("throughput_delete_agent", {}).get("real_delete", {})
    inproc = figures.get("in_process", {})
    out: list[dict[str, Any]] = []

    def goal(name: str, target: str, measured: float | None, met: bool | None, note: str = "") -> None:
        out.append({"goal": name, "target": target, "measured": measured, "met": met, "note": note})

    peers = [name for name in PEER_NAMES if name in get]
    for c in CONNECTIONS:
        if peers:
            best = max(peers, key=lambda name: get[name][str(c)]["rps"])
            worst = get[f"ratio_mock_to_{best}"][f"{c}_min"]
            goal(f"GET @{c} / best peer", ">= 1.0", worst, worst >= 1.0, best)
        else:
            goal(f"GET @{c} / best peer", ">= 1.0", None, None, "no peer measured")
    for c in (8, 64):
        worst = get.get("ratio_mock_to_ceiling", {}).get(f"{c}_min")
        goal(f"GET @{c} / ceiling", ">= 0.5", worst, None if worst is None else worst >= 0.5)
    for c in REAL_DELETE_CONNECTIONS:
        worst = real.get("ratio_mock_to_ceiling", {}).get(f"{c}_min")
        clean = real.get("mock_non_200") == 0
        goal(
            f"real DELETE @{c} / ceiling",
            ">= 0.25, every answer a 200",
            worst,
            None if worst is None else worst >= 0.25 and clean,
            f"{real.get('mock_non_200')} answers not 200",
        )
    starts = figures.get("cold_start", {})
    cold, floor, runs = starts.get("median_s"), starts.get("floor_median_s"), len(starts.get("runs_s", ()))
    goal(
        f"cold start, median of {runs} (s)" if runs else "cold start (s)",
        "<= 0.3",
        cold,
        None if cold is None else cold <= 0.3,
        "" if floor is None else f"granian alone: {floor} s",
    )
    if "wiremock_tuned" in get:
        mine = [r["64"]["p99_ms"] for r in get["mock"]["rounds"]]
        theirs = [r["64"]["p99_ms"] for r in get["wiremock_tuned"]["rounds"]]
        worst = max(a / b for a, b in zip(mine, theirs, strict=True))
        goal("p99 @64 / tuned WireMock's", "<= 1.0", round(worst, 3), worst <= 1.0)
    else:
        goal("p99 @64 / tuned WireMock's", "<= 1.0", None, None, "tuned WireMock not measured")
    if "wiremock" in get and get["wiremock"].get("rss_kib_after") and get["mock"].get("rss_kib_after"):
        share = round(get["mock"]["rss_kib_after"] / get["wiremock"]["rss_kib_after"], 3)
        goal("RSS after load / default WireMock's", "<= 0.5", share, share <= 0.5)
    else:
        goal("RSS after load / default WireMock's", "<= 0.5", None, None, "default WireMock not measured")
    for side in ("sync", "async"):
        worst = inproc.get(f"{side}_ratio_min")
        goal(f"in-process {side} / bare httpx", ">= 0.6", worst, None if worst is None else worst >= 0.6)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per point (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3; a goal holds in all)")
    parser.add_argument("--quick", action="store_true", help="short runs, to check the runner itself")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="an earlier checkout (git worktree add DIR 96a825d), its mock measured beside this one",
    )
    parser.add_argument("--skip-make-test", action="store_true", help="leave out figure 7 (`make test` wall time)")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if shutil.which("wrk") is None:
        print("benchmarks: wrk is missing; install it with `apt-get install wrk` (Debian)", file=sys.stderr)
        return 2
    seconds = 1.0 if args.quick else args.seconds
    rounds = 1 if args.quick else max(1, args.rounds)
    calls = 200 if args.quick else 2000
    checkpoints = (1_000, 5_000) if args.quick else (10_000, 100_000)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        script = _wrk_script(scratch)
        figures: dict[str, Any] = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "load_average_before": [round(x, 2) for x in os.getloadavg()],
            },
            "rounds": rounds,
        }
        steps: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
            (
                "throughput_get_testers",
                "GET testers throughput",
                lambda: throughput(seconds, rounds, script, scratch, args.baseline),
            ),
            (
                "throughput_delete_agent",
                "DELETE agent throughput",
                lambda: delete_throughput(seconds, rounds, scratch, args.baseline),
            ),
            ("cold_start", "cold start", lambda: cold_start(3 if args.quick else 5, args.baseline)),
            ("in_process", f"in-process client, {calls} calls", lambda: in_process(calls, rounds)),
            (
                "test_setup",
                "a test's in-process set-up",
                lambda: suite_setup(10 if args.quick else 100, rounds, args.baseline),
            ),
            ("client_overhead", f"client overhead, {calls} calls", lambda: client_overhead(calls)),
            ("memory", f"memory over {checkpoints[-1]} requests", lambda: memory(script, checkpoints)),
            ("stores", "the stores: SQLite, Redis with 1 and 2 replicas", lambda: stores(seconds)),
        ]
        if not (args.quick or args.skip_make_test):
            steps.append(("make_test", "`make test` wall time", make_test_wall))
        for number, (name, what, step) in enumerate(steps, 1):
            progress(f"{number}/{len(steps)} {what}…")
            figures[name] = step()
    figures["goals"] = goals(figures)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "quick.json" if args.quick else f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    (RESULTS / name).write_text(json.dumps(figures, indent=2) + "\n")
    print(summary(figures))
    print(f"benchmarks: every figure written to {RESULTS / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
