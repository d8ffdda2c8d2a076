"""What the SQLite store costs per call, for two checkouts side by side in one run.

    python -m benchmarks.store_costs [--rounds 3] [--calls 20000] OTHER_CHECKOUT...
    python -m benchmarks.store_costs --alternatives   # the journal writes that were candidates

Each checkout (this one first, then every OTHER_CHECKOUT, e.g. the main branch's) is measured in
a child process with that checkout first on sys.path, in interleaved rounds, so both meet the
same machine load. Only the engine's and the store's public faces are used, which both keep.
Figures are µs per call (median of the rounds), `time.perf_counter` over many calls; `_cpu` is
`time.process_time` (every thread of the process) per call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _child(calls: int) -> dict[str, float]:
    """Runs inside the checkout being measured; prints one JSON object."""
    from mock_server.core import (
        ApiRequest,
        Engine,
        MockConfig,
        SpecIndex,
        SqliteStore,
        StateData,
        default_seed_document,
        state_validator,
    )

    spec = SpecIndex.load()
    seed = StateData.from_document(default_seed_document(spec), state_validator(spec))
    folder = tempfile.mkdtemp(prefix="store-costs-")
    store = SqliteStore(Path(folder) / "s.sqlite3", seed=seed)
    other = SqliteStore(Path(folder) / "s.sqlite3")  # another connection: "another worker"
    on = Engine(spec, store, MockConfig(journal=True))
    off = Engine(spec, store, MockConfig(journal=False))
    path = "/in/v1/S/rcs/agent/testersbyagent"

    def get(sid: str = "S") -> ApiRequest:
        return ApiRequest(
            "getTestersByAgent",
            "GET",
            path,
            "in",
            sid,
            query=(("agent_number", "48900"),),
            api_key="k",
            content_type="application/json",
        )

    def per_call(fn: Callable[[int], object], n: int = calls) -> float:
        for i in range(min(n, 200)):
            fn(-i - 1)
        started = time.perf_counter()
        for i in range(n):
            fn(i)
        return (time.perf_counter() - started) / n * 1e6

    request = get()
    out: dict[str, float] = {}
    out["get_unchanged_journal_off"] = per_call(lambda _i: off.handle(request))
    out["get_unchanged_journal_on"] = per_call(lambda _i: on.handle(request))
    # CPU of every thread of the process: a journal written by a thread of its own is counted too.
    cpu = time.process_time()
    done = per_call(lambda _i: on.handle(request))
    store.journal(pod=None, operation=None, status=None, limit=1)
    out["get_unchanged_journal_on_cpu"] = (time.process_time() - cpu) * 1e6 / (calls + min(calls, 200))
    out["get_unchanged_journal_on"] = min(out["get_unchanged_journal_on"], done)
    entry = {"time": "2026-12-01T00:00:00Z", "pod": "in", "method": "GET", "path": path, "status": 200}

    def journal_writes() -> float:
        started = time.perf_counter()
        for _ in range(calls):
            store.record(dict(entry))
        store.journal(pod=None, operation=None, status=None, limit=1)  # every entry written
        return (time.perf_counter() - started) / calls * 1e6

    journal_writes()
    out["journal_write"] = journal_writes()
    started = time.perf_counter()
    for _ in range(50):
        store.journal(pod=None, operation=None, status=None, limit=1000)
    out["journal_read_1000"] = (time.perf_counter() - started) / 50 * 1e6
    n = calls // 4
    deletes = [
        ApiRequest(
            "deleteAgent",
            "DELETE",
            f"/in/v1/D{i}/rcs/agent/48400",
            "in",
            f"D{i}",
            path_agent="48400",
            api_key="k",
            content_type="application/json",
        )
        for i in range(-200, n)
    ]
    out["delete_journal_on"] = per_call(lambda i: on.handle(deletes[i + 200]), n)

    def after_other_commit(i: int) -> None:  # another worker's DELETE, then our GET must see it
        other.delete_agent("in", f"O{i}", "48400")
        on.handle(get(f"O{i}"))

    def other_commit_only(i: int) -> None:
        other.delete_agent("in", f"P{i}", "48400")

    out["get_after_other_commit"] = per_call(after_other_commit, n) - per_call(other_commit_only, n)
    store.close()
    other.close()
    return out


def _alternatives(calls: int) -> dict[str, float]:
    """The journal writes that were candidates, on this machine: µs per entry, one entry per call."""
    import sqlite3

    folder = tempfile.mkdtemp(prefix="journal-alternatives-")
    entry = {"time": "2026-12-01T00:00:00Z", "pod": "in", "method": "GET", "path": "/in/v1/S/x", "status": 200}
    encode = json.JSONEncoder(separators=(",", ":")).encode
    out: dict[str, float] = {}
    fd = os.open(os.path.join(folder, "w0.0.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    started = time.perf_counter()
    for _ in range(calls):
        os.write(fd, f"\n[{time.time_ns()},{encode(entry)}]".encode())
    out["o_append_line"] = (time.perf_counter() - started) / calls * 1e6
    os.close(fd)
    for sync in ("OFF", "NORMAL"):
        db = sqlite3.connect(os.path.join(folder, f"journal-{sync}.sqlite3"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={sync}")
        db.execute("CREATE TABLE journal (id INTEGER PRIMARY KEY, at_ns INTEGER, entry TEXT)")
        started = time.perf_counter()
        for _ in range(calls):
            db.execute("INSERT INTO journal (at_ns, entry) VALUES (?, ?)", (time.time_ns(), encode(entry)))
        out[f"sqlite_insert_wal_synchronous_{sync.lower()}"] = (time.perf_counter() - started) / calls * 1e6
        db.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("others", nargs="*", help="other checkouts to measure beside this one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--alternatives", action="store_true", help="the journal writes that were candidates")
    args = parser.parse_args(argv)
    if args.alternatives:
        rounds = [_alternatives(args.calls) for _ in range(args.rounds)]
        for name in rounds[0]:
            print(f"{name:<36} {statistics.median(r[name] for r in rounds):8.1f} µs per entry")
        return 0
    if args.child:
        print(json.dumps(_child(args.calls)))
        return 0
    here = str(Path(__file__).resolve().parent.parent)
    checkouts = [here, *args.others]
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in checkouts}
    for _ in range(args.rounds):
        for checkout in checkouts:
            env = {**os.environ, "PYTHONPATH": checkout}
            done = subprocess.run(
                [sys.executable, __file__, "--child", "--calls", str(args.calls)],
                env=env,
                cwd=checkout,
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            runs[checkout].append(json.loads(done.stdout.strip().splitlines()[-1]))
    names = list(runs[here][0])
    width = max(len(n) for n in names)
    print(f"µs per call, median of {args.rounds} interleaved rounds of {args.calls} calls")
    print(" " * width + "".join(f"  {c[-28:]:>28}" for c in checkouts))
    for name in names:
        values = [statistics.median(r[name] for r in runs[c]) for c in checkouts]
        print(f"{name:<{width}}" + "".join(f"  {v:>28.1f}" for v in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
