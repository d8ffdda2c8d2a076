"""The stores side by side over HTTP: SQLite (one server), Redis with one replica, Redis with two.

`measure_stores(seconds)` starts a redis-server of its own (Debian's, on a free loopback port, no
persistence), then each set-up in turn, each replica being `kaleyra-mock` with its default 2
workers, and measures with wrk at each connection count:

- GET testers (`get`), and
- the real DELETE (`delete`: agent 48400 of a SID never seen before on every request, so every
  answer must be a 200; `non_200` counts those that were not), state reset before each point.

With two replicas, one wrk per replica runs at the same time with the same connection count (so
twice the connections in all) and their req/s are summed; p50/p99 are the worse of the two. Each
point lasts `seconds` (whole seconds, as wrk takes them), after a 1 s warm-up per set-up.

`python -m benchmarks.stores [--seconds S]` prints the table (and the JSON with --json). Needs wrk
and redis-server (Debian: apt-get install wrk redis-server) and the [redis] extra.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.run import (
    CONNECTIONS,
    GET_PATH,
    HEADERS,
    _real_delete,
    _stop,
    _wait_for,
    _warm,
    _wrk_script,
    progress,
    start_mock,
    wrk,
)
from mock_server.testing import RedisServer, free_port

__all__ = ["SETUPS", "main", "measure_stores", "table"]

SETUPS = ("sqlite", "redis_1_replica", "redis_2_replicas")


def _together(jobs: Sequence[Callable[[], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Runs each job (a no-argument callable returning a wrk point) on its own thread, at once."""
    results: list[dict[str, Any] | BaseException] = [RuntimeError("no result")] * len(jobs)

    def run(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return [r for r in results if isinstance(r, dict)]


def _combined(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The replicas' points as one: req/s, requests and failures summed, latencies the worse."""
    out: dict[str, Any] = {
        "rps": round(sum(p["rps"] for p in points), 1),
        "p50_ms": max(p["p50_ms"] for p in points),
        "p99_ms": max(p["p99_ms"] for p in points),
        "requests": sum(p["requests"] for p in points),
        "non_2xx": sum(p["non_2xx"] for p in points),
        "socket_errors": sum(p["socket_errors"] for p in points),
    }
    if all("non_200" in p for p in points):
        out["non_200"] = sum(p["non_200"] for p in points)
    if len(points) > 1:
        out["per_replica_rps"] = [p["rps"] for p in points]
    return out


def _measure_setup(
    name: str, extra: list[tuple[str, ...]], seconds: float, connections: Sequence[int], scratch: Path
) -> dict[str, Any]:
    progress(f"  stores: {name}, {len(connections)} GET and {len(connections)} DELETE points of {seconds:g} s…")
    procs = []
    try:
        roots = []
        for args in extra:
            port = free_port()
            procs.append(start_mock(port, args))
            roots.append(f"http://127.0.0.1:{port}")
        for root in roots:
            _wait_for(f"{root}{GET_PATH}", timeout=60, headers=HEADERS)
        script = _wrk_script(scratch)
        headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items())
        folders = []
        for n in range(len(roots)):  # one script file per replica: each wrk its own SIDs
            folder = scratch / f"{name}-{n}"
            folder.mkdir(exist_ok=True)
            folders.append(folder)

        def warm(root: str) -> dict[str, Any]:
            _warm(f"{root}{GET_PATH}", 1, script)
            return {}

        def get_point(root: str, c: int) -> dict[str, Any]:
            return wrk(f"{root}{GET_PATH}", c, seconds, script)

        def delete_point(root: str, folder: Path, c: int) -> dict[str, Any]:
            return _real_delete(root, c, seconds, folder, headers)

        _together([functools.partial(warm, root) for root in roots])
        get: dict[str, Any] = {}
        delete: dict[str, Any] = {}
        for c in connections:
            get[str(c)] = _combined(_together([functools.partial(get_point, root, c) for root in roots]))
            httpx.post(f"{roots[0]}/__mock/reset", json={}, timeout=10).raise_for_status()
            pairs = zip(roots, folders, strict=True)
            jobs = [functools.partial(delete_point, root, folder, c) for root, folder in pairs]
            delete[str(c)] = _combined(_together(jobs))
        return {"replicas": len(roots), "get": get, "delete": delete}
    finally:
        for proc in procs:
            _stop(proc)


def measure_stores(wrk_seconds: float, connections: Sequence[int] = CONNECTIONS) -> dict[str, Any]:
    """GET testers and the real DELETE at each connection count on SQLite (one server, its default
    temp file), Redis with one replica and Redis with two (one prefix); req/s, p50, p99 per point.
    Takes about 2 x len(connections) x 3 x wrk_seconds, plus start-ups."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk (Debian)")
    with tempfile.TemporaryDirectory(prefix="kaleyra-bench-stores-") as tmp:
        scratch = Path(tmp)
        redis = RedisServer(scratch / "redis").start()
        url = redis.url
        try:
            setups: dict[str, list[tuple[str, ...]]] = {
                "sqlite": [()],
                "redis_1_replica": [("--store", url, "--store-prefix", "bench-one")],
                "redis_2_replicas": [("--store", url, "--store-prefix", "bench-two")] * 2,
            }
            results: dict[str, Any] = {
                name: _measure_setup(name, extra, wrk_seconds, connections, scratch) for name, extra in setups.items()
            }
        finally:
            redis.stop()
    results["settings"] = {
        "seconds_per_point": max(1, round(wrk_seconds)),
        "connections": list(connections),
        "workers_per_replica": 2,
        "two_replicas": "one wrk per replica at once, each with the connection count; req/s summed",
    }
    return results


def table(results: dict[str, Any]) -> str:
    connections = results["settings"]["connections"]
    header = ["store", "load", *[f"{c} conn req/s" for c in connections], "non-200"]
    rows = [header]
    for name in SETUPS:
        for load in ("get", "delete"):
            points = results[name][load]
            bad = sum(p.get("non_200", p["non_2xx"]) + p["socket_errors"] for p in points.values())
            rows.append([name, load.upper(), *[f"{points[str(c)]['rps']:,.0f}" for c in connections], str(bad)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for r in rows:
        cells = [cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stores", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk duration per point (default 3)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON after the table")
    args = parser.parse_args(argv)
    try:
        results = measure_stores(args.seconds)
    except RuntimeError as exc:
        print(f"benchmarks.stores: {exc}", file=sys.stderr)
        return 2
    print(table(results))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
