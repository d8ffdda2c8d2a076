"""`make bench`: the figures of the benchmarks issue, each taken in one run so they compare as ratios.

Bounded in time (about four minutes at 5 s a point, `make test` aside), loopback only; every
server it starts is stopped.
Needs `wrk` (Debian: `apt-get install wrk`); says so and exits 2 when it is missing.

    python -m benchmarks.run [--seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
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
from mock_server.testing import group_rss_kib

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, timeout: float = 20.0, headers: dict[str, str] | None = None) -> float:
    """Seconds until `url` answers 200; raises after `timeout`."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if httpx.get(url, headers=headers, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _start(cmd: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def start_mock(port: int, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """The server `make run` starts (2 workers, SQLite, journal on)."""
    return _start([sys.executable, "-m", "mock_server", "--port", str(port), *extra])


def start_ceiling(port: int) -> subprocess.Popen[bytes]:
    granian = [sys.executable, "-m", "granian", *GRANIAN_OPTIONS, "--port", str(port), "--log-level", "error"]
    return _start([*granian, "--no-ws", "benchmarks.ceiling:app"])


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


def _measure(
    name: str, start: Callable[[int], subprocess.Popen[bytes]], path: str, seconds: float, script: Path
) -> dict[str, Any]:
    progress(f"  {name}: {len(CONNECTIONS)} points of {seconds:g} s…")
    port = _free_port()
    started = time.perf_counter()
    proc = start(port)
    try:
        url = f"http://127.0.0.1:{port}{path}"
        _wait_for(url, timeout=60, headers=HEADERS)
        first_200 = time.perf_counter() - started
        _warm(url, seconds, script)
        points = {str(c): wrk(url, c, seconds, script) for c in CONNECTIONS}
        rss = group_rss_kib(proc.pid)  # the whole process tree, after its runs
    finally:
        _stop(proc)
    return {"first_200_s": round(first_200, 3), "rss_kib_after": rss, **points}


def throughput(seconds: float, script: Path, scratch: Path) -> dict[str, Any]:
    """Figures 1 and 2, GET testers at 1 / 8 / 64 connections: the mock, the ceiling and the peers."""
    targets: list[tuple[str, Callable[[int], subprocess.Popen[bytes]], str]] = [
        ("mock", start_mock, GET_PATH),
        ("ceiling", start_ceiling, GET_PATH),
        ("ceiling_rsgi", start_ceiling_rsgi, GET_PATH),
    ]
    skipped: dict[str, str] = {}
    for name, path, starter in PEERS:
        why = peer_missing(name)
        if why is None:
            targets.append((name, lambda port, starter=starter: starter(port, scratch), path))  # type: ignore[misc]
        else:
            skipped[name] = why
            progress(f"{name} skipped: {why}")
    results: dict[str, Any] = {name: _measure(name, start, path, seconds, script) for name, start, path in targets}
    for other in [name for name in results if name != "mock"]:
        results[f"ratio_mock_to_{other}"] = {
            str(c): round(results["mock"][str(c)]["rps"] / results[other][str(c)]["rps"], 3) for c in CONNECTIONS
        }
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


def _real_delete(root: str, connections: int, seconds: float, folder: Path, headers: str) -> dict[str, Any]:
    """One point of the real-DELETE load: a new SID on every request, so every answer is a 200."""
    tag = f"RD{connections}T{time.monotonic_ns()}"
    script = folder / f"real-delete-{connections}.lua"
    script.write_text(_REAL_DELETE_SCRIPT.format(headers=headers, tag=tag))
    point = wrk(f"{root}/", connections, seconds, script)
    if "non_200" not in point:
        raise RuntimeError(f"the real-DELETE script printed no count of non-200 answers at {connections} connections")
    return point


def delete_throughput(seconds: float, folder: Path) -> dict[str, Any]:
    """Figure 1 for DELETE: the mock against the ceiling, state reset before each point.

    Two loads: `DELETE` twice per agent (200, then 400) at 1 / 8 / 64 connections, and the
    real-DELETE load (`real_delete`, a new SID on every request, every answer a 200) at 8 and 64."""
    script = folder / "delete.lua"
    headers = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in HEADERS.items())
    script.write_text(_DELETE_SCRIPT.format(headers=headers))
    results: dict[str, Any] = {}
    real: dict[str, Any] = {}
    for name, starter in (("mock", start_mock), ("ceiling", start_ceiling)):
        progress(f"  {name}: {len(CONNECTIONS)} points of {seconds:g} s…")
        port = _free_port()
        proc = starter(port)
        try:
            root = f"http://127.0.0.1:{port}"
            _wait_for(f"{root}{GET_PATH}", headers=HEADERS)
            points = {}
            for c in CONNECTIONS:
                if name == "mock":
                    httpx.post(f"{root}/__mock/reset", json={}, timeout=10).raise_for_status()
                point = wrk(f"{root}/", c, seconds, script)
                point["share_not_2xx"] = round(point["non_2xx"] / max(1, point["requests"]), 3)
                points[str(c)] = point
            results[name] = points
            real_points = {}
            for c in REAL_DELETE_CONNECTIONS:
                if name == "mock":
                    httpx.post(f"{root}/__mock/reset", json={}, timeout=10).raise_for_status()
                real_points[str(c)] = _real_delete(root, c, seconds, folder, headers)
            real[name] = real_points
        finally:
            _stop(proc)
    results["ratio_mock_to_ceiling"] = {
        str(c): round(results["mock"][str(c)]["rps"] / results["ceiling"][str(c)]["rps"], 3) for c in CONNECTIONS
    }
    real["ratio_mock_to_ceiling"] = {
        str(c): round(real["mock"][str(c)]["rps"] / real["ceiling"][str(c)]["rps"], 3) for c in REAL_DELETE_CONNECTIONS
    }
    real["mock_non_200"] = sum(real["mock"][str(c)]["non_200"] for c in REAL_DELETE_CONNECTIONS)
    results["real_delete"] = real
    return results


def cold_start(runs: int = 5) -> dict[str, Any]:
    """Figure 3: process start to the first 200 of GET testers, median of `runs`."""
    times = []
    for _ in range(runs):
        port = _free_port()
        started = time.perf_counter()
        proc = start_mock(port)
        try:
            _wait_for(f"http://127.0.0.1:{port}{GET_PATH}", headers=HEADERS)
            times.append(time.perf_counter() - started)
        finally:
            _stop(proc)
    return {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times]}


def in_process(calls: int) -> dict[str, Any]:
    """Figure 4: the facade against the mock through the in-process transports."""
    from kaleyra_rcs import AsyncKaleyraRCS, KaleyraRCS
    from mock_server.pytest_plugin import KaleyraMock
    from mock_server.web import create_app

    mock = KaleyraMock(create_app())
    with KaleyraRCS(api_key="k", sid=SID, base_url=mock.base_url("in"), transport=mock.wsgi_transport()) as client:
        client.get_testers_by_agent("48900")
        started = time.perf_counter()
        for _ in range(calls):
            client.get_testers_by_agent("48900")
        sync_rate = calls / (time.perf_counter() - started)

    async def run_async() -> float:
        client = AsyncKaleyraRCS(api_key="k", sid=SID, base_url=mock.base_url("in"), transport=mock.asgi_transport())
        async with client:
            await client.get_testers_by_agent("48900")
            started = time.perf_counter()
            for _ in range(calls):
                await client.get_testers_by_agent("48900")
            return calls / (time.perf_counter() - started)

    return {"sync_rps": round(sync_rate), "async_rps": round(asyncio.run(run_async())), "calls": calls}


def client_overhead(calls: int) -> dict[str, Any]:
    """Figure 5: the facade against raw httpx, same server, sequential requests."""
    from kaleyra_rcs import KaleyraRCS

    port = _free_port()
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
    port = _free_port()
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
    """The printed report: ratios first, then each target's req/s, p99 at 64 connections and RSS."""
    lines: list[str] = []
    get = figures.get("throughput_get_testers", {})
    targets = [
        name for name, value in get.items() if isinstance(value, dict) and "1" in value and isinstance(value["1"], dict)
    ]
    if targets:
        conns = [f"@{c}" for c in CONNECTIONS]
        lines.append("GET testers")
        ratios = [name for name in get if name.startswith("ratio_mock_to_")]
        rows = [
            [name.replace("ratio_", "").replace("_to_", " / "), *(f"{get[name][str(c)]:.2f}" for c in CONNECTIONS)]
            for name in ratios
        ]
        lines += _table(["ratio", *conns], rows)
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
                "mock / ceiling, real DELETE",
                "-",
                *(f"{real['ratio_mock_to_ceiling'][str(c)]:.2f}" for c in REAL_DELETE_CONNECTIONS),
            ]
        )
        for name in ("mock", "ceiling"):
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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per point (default 5)")
    parser.add_argument("--quick", action="store_true", help="short runs, to check the runner itself")
    parser.add_argument("--skip-make-test", action="store_true", help="leave out figure 7 (`make test` wall time)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("benchmarks: wrk is missing; install it with `apt-get install wrk` (Debian)", file=sys.stderr)
        return 2
    seconds = 1.0 if args.quick else args.seconds
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
            },
        }
        steps: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
            ("throughput_get_testers", "GET testers throughput", lambda: throughput(seconds, script, scratch)),
            ("throughput_delete_agent", "DELETE agent throughput", lambda: delete_throughput(seconds, scratch)),
            ("cold_start", "cold start", lambda: cold_start(3 if args.quick else 5)),
            ("in_process", f"in-process client, {calls} calls", lambda: in_process(calls)),
            ("client_overhead", f"client overhead, {calls} calls", lambda: client_overhead(calls)),
            ("memory", f"memory over {checkpoints[-1]} requests", lambda: memory(script, checkpoints)),
        ]
        if not (args.quick or args.skip_make_test):
            steps.append(("make_test", "`make test` wall time", make_test_wall))
        for number, (name, what, step) in enumerate(steps, 1):
            progress(f"{number}/{len(steps)} {what}…")
            figures[name] = step()
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "quick.json" if args.quick else f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    (RESULTS / name).write_text(json.dumps(figures, indent=2) + "\n")
    print(summary(figures))
    print(f"benchmarks: every figure written to {RESULTS / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
