"""`make soak`: the reliability figures, long versions (tests/server/test_soak.py runs short ones in
`make test`). Every server it starts listens on 127.0.0.1 and is stopped; the whole run is bounded
(about 2 minutes on 2 cores). Results: reports/soak.json; exit 1 when a rule is broken.

    python -m soak.run [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from mock_server.core import SpecIndex, StateData, default_seed_document, state_validator
from mock_server.testing import ServerProcess, exit_on_sigterm, group_pids, group_rss_kib, start_server

from ._fuzz import KEY, fuzz
from ._hostile import Target, body_limits, conformance, depth, echoes, origins, stalled_clients

__all__ = [
    "concurrent_deletes",
    "fuzz_server",
    "hostile_clients",
    "kill9_rounds",
    "main",
    "memory",
    "progress",
    "sigterm_under_load",
    "state_churn",
    "stop_times",
]

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
HEADERS = {"api-key": KEY, "Content-Type": "application/json"}
GET = "/in/v1/SOAK/rcs/agent/testersbyagent?agent_number=48900"
SPEC = SpecIndex.load()
VALIDATOR = state_validator(SPEC)


def _server(*args: str, log: Path | None = None) -> ServerProcess:
    if log is None:
        return start_server(("--workers", "2", *args))
    with log.open("w") as stderr:  # the server keeps its own descriptor
        return start_server(("--workers", "2", *args), stderr=stderr)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _state(url: str) -> Any:
    return httpx.get(f"{url}/__mock/state", timeout=10).json()


# -- 2. bad input over a real socket --------------------------------------------------------------


def fuzz_server(requests: int, scratch: Path) -> dict[str, Any]:
    """Hostile requests; then the server must be up, its state unchanged, its log free of tracebacks."""
    log = scratch / "fuzz.log"
    server = _server("--log-level", "warning", log=log)
    try:
        before = _state(server.url)
        report = fuzz(*_host_port(server.url), requests)
        alive = httpx.get(f"{server.url}/__mock/health", timeout=10).status_code == 200
        after = _state(server.url)
        served = httpx.get(f"{server.url}{GET}", headers=HEADERS, timeout=10).status_code
    finally:
        exit_code = server.stop()
    text = log.read_text(errors="replace")
    return {
        **report.to_dict(),
        "alive_after": alive,
        "state_unchanged": before == after,
        "served_after": served,
        "tracebacks_in_log": text.count("Traceback"),
        "exit_code": exit_code,
        "ok": report.server_errors == 0
        and not report.problems
        and alive
        and before == after
        and served == 200
        and "Traceback" not in text
        and exit_code == 0,
    }


# -- 2b. hostile and careless clients, one check per class -------------------------------------------

HOSTILE_READ_TIMEOUT = 3.0


def hostile_clients(scratch: Path, quick: bool = False) -> dict[str, Any]:
    """Body limits, origins, depth, stalled clients, HTTP conformance and echoes (soak/_hostile.py),
    against one server started with a short read timeout; then its log must hold no traceback."""
    log = scratch / "hostile.log"
    server = _server("--read-timeout", str(HOSTILE_READ_TIMEOUT), "--log-level", "warning", log=log)
    target = Target(server.url)
    started = time.monotonic()
    try:
        checks = [
            body_limits(target, sizes=(8 * 1024 * 1024 + 1,) if quick else (8 * 1024 * 1024, 8 * 1024 * 1024 + 1)),
            origins(target),
            depth(target, depths=(1_000,) if quick else (100, 300, 1_000, 100_000)),
            stalled_clients(target, HOSTILE_READ_TIMEOUT, normal=100 if quick else 400),
            conformance(target),
            echoes(target),
        ]
        alive = httpx.get(f"{server.url}/__mock/health", timeout=10).status_code == 200
    finally:
        target.close()
        exit_code = server.stop()
    text = log.read_text(errors="replace")
    figures = {check.name: check.to_dict() for check in checks}
    statuses: Counter[str] = Counter()
    for check in checks:
        statuses.update({str(k): v for k, v in check.statuses.items()})
    unasked_5xx = sum(check.unasked_5xx for check in checks)
    return {
        **figures,
        "requests": sum(check.requests for check in checks),
        "statuses": dict(sorted(statuses.items())),
        "unasked_5xx": unasked_5xx,
        "tracebacks_in_log": text.count("Traceback"),
        "alive_after": alive,
        "exit_code": exit_code,
        "seconds": round(time.monotonic() - started, 1),
        "ok": all(check.to_dict()["ok"] for check in checks)
        and unasked_5xx == 0
        and "Traceback" not in text
        and alive
        and exit_code == 0,
    }


# -- load, shared by the figures below ---------------------------------------------------------------


def _load(url: str, requests: int, threads: int = 4, path: str = GET) -> Counter[str]:
    """`requests` GETs on keep-alive connections; outcomes counted by status or by failure."""
    host, port = _host_port(url)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    share = [requests // threads + (1 if i < requests % threads else 0) for i in range(threads)]

    def run(count: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        local: Counter[str] = Counter()
        for _ in range(count):
            try:
                conn.request("GET", path, headers=HEADERS)
                response = conn.getresponse()
                response.read()
                local[str(response.status)] += 1
            except (OSError, http.client.HTTPException) as exc:
                local[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.close()
        with lock:
            outcomes.update(local)

    workers = [threading.Thread(target=run, args=(n,)) for n in share]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return outcomes


# -- 3. bounded memory ----------------------------------------------------------------------------------


def memory(checkpoints: tuple[int, ...] = (10_000, 100_000)) -> dict[str, Any]:
    """RSS of the server (every worker) after each checkpoint of GETs, journal on."""
    server = _server()
    out: dict[str, Any] = {}
    done = 0
    started = time.monotonic()
    try:
        for target in checkpoints:
            outcomes = _load(server.url, target - done)
            done = target
            out[str(target)] = {"rss_kib": group_rss_kib(server.proc.pid), "outcomes": dict(outcomes)}
        entries = len(httpx.get(f"{server.url}/__mock/journal?limit=1000000", timeout=30).json())
    finally:
        server.stop()
    first, last = (out[str(c)]["rss_kib"] for c in (checkpoints[0], checkpoints[-1]))
    growth = last / first - 1
    return {
        **out,
        "journal_entries": entries,
        "growth": round(growth, 3),
        "seconds": round(time.monotonic() - started, 1),
        "ok": growth <= 0.10,
    }


# -- 1. concurrency -------------------------------------------------------------------------------------


def concurrent_deletes(rounds: int, threads: int = 64) -> dict[str, Any]:
    """`threads` DELETEs of one agent released together, per round: exactly one agent_deleted."""
    server = _server()
    host, port = _host_port(server.url)
    per_round: list[dict[str, int]] = []
    try:
        for r in range(rounds):
            path = f"/in/v1/RACE{r}/rcs/agent/48400"
            barrier = threading.Barrier(threads)
            seen: Counter[str] = Counter()
            lock = threading.Lock()

            def delete(
                path: str = path,
                barrier: threading.Barrier = barrier,
                seen: Counter[str] = seen,
                lock: threading.Lock = lock,
            ) -> None:
                conn = http.client.HTTPConnection(host, port, timeout=30)
                conn.connect()
                barrier.wait(30)
                try:
                    conn.request("DELETE", path, headers=HEADERS)
                    response = conn.getresponse()
                    response.read()
                    outcome = response.getheader("X-Mock-Example") or str(response.status)
                except (OSError, http.client.HTTPException) as exc:
                    outcome = type(exc).__name__
                finally:
                    conn.close()
                with lock:
                    seen[outcome] += 1

            workers = [threading.Thread(target=delete) for _ in range(threads)]
            for t in workers:
                t.start()
            for t in workers:
                t.join()
            per_round.append(dict(seen))
    finally:
        server.stop()
    expected = {"agent_deleted": 1, "agent_not_found": threads - 1}
    return {
        "rounds": rounds,
        "threads": threads,
        "outcomes": dict(sum((Counter(r) for r in per_round), Counter())),
        "ok": all(r == expected for r in per_round),
    }


def state_churn(seconds: float) -> dict[str, Any]:
    """Resets, state loads, seeds and deletes at once over HTTP; every dump taken meanwhile loads back."""
    server = _server()
    url = server.url
    seed = default_seed_document(SPEC)
    other = json.loads(json.dumps(seed))
    other["magic_agents"] = {}
    stop = time.monotonic() + seconds
    counts: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()

    def loop(name: str, action: Callable[[httpx.Client, random.Random], str | None]) -> None:
        rng = random.Random(name)  # noqa: S311 - repeatable, not secrets
        with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
            while time.monotonic() < stop:
                problem = action(client, rng)
                with lock:
                    counts[name] += 1
                    if problem:
                        problems.append(f"{name}: {problem}")

    def resets(client: httpx.Client, _rng: random.Random) -> str | None:
        status = client.post("/__mock/reset", json={}).status_code
        return None if status == 200 else f"reset answered {status}"

    def loads(client: httpx.Client, rng: random.Random) -> str | None:
        status = client.put("/__mock/state", json=seed if rng.random() < 0.5 else other).status_code
        return None if status == 200 else f"state load answered {status}"

    # Racing resets and loads, whether the agent is still there is timing: exactly these two answers.
    deleted = (SPEC.example("deleteAgent", "agent_deleted").status, "agent_deleted")
    not_found = (SPEC.example("deleteAgent", "agent_not_found").status, "agent_not_found")

    def deletes(client: httpx.Client, rng: random.Random) -> str | None:
        answer = client.delete(f"/{rng.choice(['in', 'na'])}/v1/C{rng.randrange(40)}/rcs/agent/48400")
        got = (answer.status_code, answer.headers.get("X-Mock-Example"))
        return None if got in (deleted, not_found) else f"delete answered {got}"

    def dumps(client: httpx.Client, _rng: random.Random) -> str | None:
        doc = client.get("/__mock/state").json()
        try:
            again = StateData.from_document(doc, VALIDATOR).to_document()
        except Exception as exc:
            return f"a dump does not load back: {exc}"
        return None if again == doc else "a dump changes when loaded back"

    workers = [
        threading.Thread(target=loop, args=(f"{name}{i}", fn))
        for name, fn, n in (("reset", resets, 1), ("load", loads, 1), ("delete", deletes, 3), ("dump", dumps, 2))
        for i in range(n)
    ]
    try:
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        final = _state(url)
        StateData.from_document(final, VALIDATOR)
    finally:
        server.stop()
    by_kind: Counter[str] = Counter()
    for name, n in counts.items():
        by_kind[name.rstrip("0123456789")] += n
    return {"seconds": seconds, "calls": dict(by_kind), "problems": problems[:20], "ok": not problems}


# -- 6. shutdown and persistence ---------------------------------------------------------------------------


def _keep_alive(
    host: str, port: int, done: threading.Event, step: Callable[[HTTPConnection, Counter[str]], None]
) -> Counter[str]:
    """`step` (a few requests, counting what they got) again and again on one keep-alive connection
    until `done`: an answer cut short counts as torn; a refused request, by its error, and the
    connection is opened again."""
    local: Counter[str] = Counter()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    while not done.is_set():
        try:
            step(conn, local)
        except http.client.IncompleteRead:
            local["torn"] += 1
        except (OSError, http.client.HTTPException) as exc:
            local[f"refused:{type(exc).__name__}"] += 1
            conn.close()
            time.sleep(0.01)
            conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.close()
    return local


def _get_testers(conn: HTTPConnection, local: Counter[str]) -> None:
    conn.request("GET", GET, headers=HEADERS)
    response = conn.getresponse()
    body = response.read()
    local["answered" if response.status == 200 and body.startswith(b"[") else "wrong"] += 1


def sigterm_under_load(after_s: float = 1.5, threads: int = 8) -> dict[str, Any]:
    """SIGTERM while keep-alive clients hammer the server: it exits 0 within a few seconds, and every
    request either got a whole answer or a clean refusal (never a torn response)."""
    server = _server("--log-level", "info")
    host, port = _host_port(server.url)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    done = threading.Event()

    def hammer() -> None:
        local = _keep_alive(host, port, done, _get_testers)
        with lock:
            outcomes.update(local)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for t in workers:
        t.start()
    time.sleep(after_s)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        exit_code = server.proc.wait(timeout=30)
    except Exception:
        exit_code = None
    stop_s = time.monotonic() - started
    done.set()
    for t in workers:
        t.join()
    server.stop()
    answered = outcomes["answered"]
    return {
        "exit_code": exit_code,
        "stop_seconds": round(stop_s, 2),
        "outcomes": dict(outcomes),
        "ok": exit_code == 0
        and stop_s < STOP_LIMIT_S
        and answered > 0
        and outcomes["torn"] == 0
        and outcomes["wrong"] == 0,
    }


# Ctrl-C or SIGTERM must end every process of the server within this, the worst of every try.
STOP_LIMIT_S = 1.0
# A server still running this long after the signal is killed, and the try fails.
STOP_GIVE_UP_S = 15.0
SIGNALS = {"sigint_group": signal.SIGINT, "sigterm_parent": signal.SIGTERM}


def _make_run(state: Path) -> list[str] | None:
    """`make run` on this interpreter's venv (the one `make soak` made), or None when make is
    missing or would first rebuild the venv: then that is not a stop being measured."""
    stamp = Path(sys.prefix) / ".installed"
    venv = f"VENV={sys.prefix}"
    try:
        fresh = subprocess.run(["make", "-s", "-q", "-C", str(ROOT), venv, str(stamp)], check=False).returncode == 0
    except OSError:
        return None
    if not fresh:
        return None
    args = f"ARGS=--workers 2 --state {state}"
    return ["make", "-s", "--no-print-directory", "-C", str(ROOT), "run", "PORT=0", venv, args]


def _stop_once(command: list[str], how: str, in_flight: bool, state: Path) -> dict[str, Any]:
    """One server (its group: `make`, the CLI, granian's workers) stopped by `how`; seconds until
    the last of its processes ended. In flight: GETs and DELETEs on keep-alive connections until
    then; every DELETE answered must be in the state file, and the file must pass SQLite's check."""
    server = start_server(command=command)
    host, port = _host_port(server.url)
    done = threading.Event()
    outcomes: Counter[str] = Counter()
    deleted: list[str] = []
    lock = threading.Lock()

    def hammer(n: int) -> None:
        mine: list[str] = []
        sids = (f"STOP{n}X{i}" for i in itertools.count())

        def get_then_delete(conn: HTTPConnection, local: Counter[str]) -> None:
            _get_testers(conn, local)
            sid = next(sids)
            conn.request("DELETE", f"/in/v1/{sid}/rcs/agent/48400", headers=HEADERS)
            response = conn.getresponse()
            response.read()
            if response.getheader("X-Mock-Example") == "agent_deleted":
                mine.append(sid)
                local["answered"] += 1
            else:
                local["wrong"] += 1

        local = _keep_alive(host, port, done, get_then_delete)
        with lock:
            outcomes.update(local)
            deleted.extend(mine)

    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(4 if in_flight else 0)]
    for t in workers:
        t.start()
    if in_flight:
        time.sleep(0.5)
    # Idle, the signal comes as soon as health answers, as a script's would: a worker may still be
    # starting then (granian lost such a stop, and killed the worker 5 s later).
    group = server.proc.pid
    started = time.monotonic()
    if how == "sigint_group":
        os.killpg(group, signal.SIGINT)  # what a terminal's Ctrl-C does
    else:
        server.proc.send_signal(SIGNALS[how])
    while group_pids(group) and time.monotonic() - started < STOP_GIVE_UP_S:
        time.sleep(0.005)
    seconds = time.monotonic() - started
    left = group_pids(group)
    if left:
        os.killpg(group, signal.SIGKILL)
    exit_code = server.proc.wait(timeout=10)
    done.set()
    for t in workers:
        t.join()
    with sqlite3.connect(state, timeout=10) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        kept = {sid for (sid,) in db.execute("SELECT sid FROM deleted_default WHERE agent_number = '48400'")}
    db.close()
    return {
        "seconds": seconds,
        "left_running": len(left),
        "exit_code": exit_code,
        "outcomes": dict(outcomes),
        "answered_deletes_lost": len(set(deleted) - kept),
        "integrity": integrity,
    }


def stop_times(tries: int, scratch: Path, make: bool = True) -> dict[str, Any]:
    """Ctrl-C (SIGINT to the process group) and SIGTERM to the parent, idle and with requests in
    flight, on `kaleyra-mock` and on `make run` (SIGTERM to make, which forwards it): the median
    and the worst time until every process ended, of `tries` servers each. A stop must be graceful
    too: no torn answer, every answered DELETE in the state file, the file whole."""
    ways: dict[str, Any] = {}
    skipped: list[str] = []
    launchers = ["kaleyra-mock"]
    if make and _make_run(scratch / "probe.sqlite3") is not None:
        launchers.append("make run")
    elif make:
        skipped.append("make run: make is missing, or this interpreter's venv is not one make has built")
    runs = 0
    for launcher in launchers:
        for how in SIGNALS:
            for load in ("idle", "in_flight"):
                results = []
                for _ in range(tries):
                    state = scratch / f"stop{runs}.sqlite3"
                    runs += 1
                    mock = [sys.executable, "-m", "mock_server", "--port", "0", "--workers", "2", "--state", str(state)]
                    command = mock if launcher == "kaleyra-mock" else _make_run(state)
                    assert command is not None
                    results.append(_stop_once(command, how, load == "in_flight", state))
                times = [r["seconds"] for r in results]
                outcomes: Counter[str] = Counter()
                for r in results:
                    outcomes.update(r["outcomes"])
                # make dies of the signal it forwarded, whatever its child's exit code; the CLI exits 0.
                codes = sorted({r["exit_code"] for r in results})
                ways[f"{launcher} {how} {load}"] = {
                    "tries": len(results),
                    "median_s": round(statistics.median(times), 3),
                    "worst_s": round(max(times), 3),
                    "left_running": sum(r["left_running"] for r in results),
                    "exit_codes": codes,
                    "outcomes": dict(outcomes),
                    "answered_deletes_lost": sum(r["answered_deletes_lost"] for r in results),
                    "integrity": sorted({r["integrity"] for r in results}),
                    "ok": max(times) < STOP_LIMIT_S
                    and all(r["left_running"] == 0 for r in results)
                    and (launcher != "kaleyra-mock" or codes == [0])
                    and outcomes["torn"] == 0
                    and outcomes["wrong"] == 0
                    and (load == "idle" or outcomes["answered"] > 0)
                    and all(r["answered_deletes_lost"] == 0 and r["integrity"] == "ok" for r in results),
                }
    worst = max((way["worst_s"] for way in ways.values()), default=None)
    return {
        "limit_s": STOP_LIMIT_S,
        "worst_s": worst,
        "ways": ways,
        "skipped": skipped,
        "ok": bool(ways) and all(way["ok"] for way in ways.values()),
    }


def kill9_rounds(rounds: int, scratch: Path) -> dict[str, Any]:
    """kill -9 of the whole server at a random moment while state documents are being loaded: the
    `--state` file always opens at one of the documents (old or new), never broken, and the next
    server starts on it."""
    path = scratch / "kill9.sqlite3"
    seed = default_seed_document(SPEC)
    docs = [seed]
    for n in range(2):
        doc = json.loads(json.dumps(seed))
        doc["magic_agents"] = {f"9990{n}": "agent_not_found"}
        docs.append(doc)
    rng = random.Random(9)  # noqa: S311 - repeatable, not secrets
    found: Counter[str] = Counter()
    problems: list[str] = []
    for r in range(rounds):
        server = _server("--state", str(path))
        stop = threading.Event()

        def writer(url: str = server.url, stop: threading.Event = stop) -> None:
            with httpx.Client(base_url=url, timeout=5) as client:
                n = 0
                while not stop.is_set():
                    try:
                        client.put("/__mock/state", json=docs[1 + n % 2])
                        client.get(GET, headers=HEADERS)
                    except httpx.HTTPError:
                        return
                    n += 1

        workers = [threading.Thread(target=writer) for _ in range(3)]
        for t in workers:
            t.start()
        time.sleep(rng.uniform(0.2, 0.8))
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        stop.set()
        for t in workers:
            t.join()
        try:
            restarted = _server("--state", str(path))
        except RuntimeError as exc:
            problems.append(f"round {r}: the server does not start on the file: {exc}")
            continue
        try:
            doc = _state(restarted.url)
            StateData.from_document(doc, VALIDATOR)
            match = next((i for i, d in enumerate(docs) if d == doc), None)
            if match is None:
                problems.append(f"round {r}: the state is none of the documents written")
            found["none of them" if match is None else "seed" if match == 0 else f"doc{match}"] += 1
        finally:
            restarted.stop()
    return {"rounds": rounds, "found": dict(found), "problems": problems, "ok": not problems}


# -- the run -----------------------------------------------------------------------------------------------


def progress(line: str) -> None:
    """A line on stderr, flushed at once: the run takes minutes, and stdout is its report."""
    print(f"soak: {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, to check the runner itself")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    quick = args.quick
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        figures: dict[str, Any] = {}
        fuzz_n, memory_n, kill9_n = (500, (2_000, 10_000), 2) if quick else (10_000, (10_000, 100_000), 15)
        stop_n = 1 if quick else 5
        steps: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
            ("fuzz", f"fuzzing over a socket, {fuzz_n} requests", lambda: fuzz_server(fuzz_n, scratch)),
            ("hostile", "hostile and careless clients", lambda: hostile_clients(scratch, quick)),
            ("concurrent_deletes", "concurrent deletes of one agent", lambda: concurrent_deletes(3 if quick else 50)),
            ("state_churn", "state churn: resets, loads, deletes, dumps", lambda: state_churn(2.0 if quick else 15.0)),
            ("memory", f"memory over {memory_n[-1]} requests", lambda: memory(memory_n)),
            ("sigterm_under_load", "SIGTERM under load", sigterm_under_load),
            ("stop", f"stop times, {stop_n} tries each way", lambda: stop_times(stop_n, scratch)),
            ("kill9", f"kill -9 during writes, {kill9_n} rounds", lambda: kill9_rounds(kill9_n, scratch)),
        ]
        for number, (name, what, step) in enumerate(steps, 1):
            progress(f"{number}/{len(steps)} {what}…")
            step_started = time.monotonic()
            figures[name] = step()
            print(
                f"soak: {name}: {'ok' if figures[name]['ok'] else 'FAILED'} ({time.monotonic() - step_started:.0f} s)",
                flush=True,
            )
    figures["seconds"] = round(time.monotonic() - started, 1)
    REPORTS.mkdir(exist_ok=True)
    out = REPORTS / "soak.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    failed = [name for name, fig in figures.items() if isinstance(fig, dict) and not fig.get("ok")]
    print(f"soak: {'FAILED: ' + ', '.join(failed) if failed else 'every rule held'} ({out})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
