"""`kaleyra-mock` / `python -m mock_server`: serve both pods on one port."""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import sqlite3
import ssl
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ._extra import SERVER, missing_extra, require_extra
from .core import (
    DEFAULT_CASSETTE_LIMIT,
    DEFAULT_JOURNAL_LIMIT,
    INVALID_JSON,
    MAX_DEPTH,
    PODS,
    Armed,
    CassetteError,
    ReplayIndex,
    SpecIndex,
    StateData,
    StateError,
    Store,
    StoreUnavailable,
    calibrate,
    default_seed_document,
    load_observations,
    load_yaml,
    merge_seed,
    open_store,
    sqlite_url,
    state_validator,
    store_path,
    strict_json,
    too_deep,
)

__all__ = ["build_parser", "main"]

DEFAULT_UPSTREAM_TIMEOUT = 30.0  # the web layer's default too (`_front.py`); a test holds them equal


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kaleyra-mock",
        description="A stateful mock of Kaleyra's RCS agent API, IN and NA pods on one port.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=2, help="worker processes, sharing one store (default 2)")
    p.add_argument(
        "--default-pod",
        choices=["in", "na"],
        default="in",
        help="pod for requests with neither a Kaleyra Host nor an /in or /na prefix",
    )
    p.add_argument("--seed", type=Path, help="seed file (JSON or YAML) laid over the default seed")
    p.add_argument("--state", type=Path, help="SQLite file that keeps the state across restarts (reloaded on start)")
    p.add_argument(
        "--store",
        metavar="URL",
        help="where the state lives: sqlite:///PATH (as --state PATH) or redis://HOST:PORT/DB (Redis or Valkey, "
        "shared by several mock replicas; needs the [redis] extra). Default: a SQLite file in a temp dir",
    )
    p.add_argument(
        "--store-prefix",
        metavar="NAME",
        help="with a Redis store: the key prefix of this mock (default: the URL's ?prefix=NAME, else kaleyra-mock); "
        "mocks with other prefixes share the server without seeing each other",
    )
    p.add_argument(
        "--strict-content-type",
        action="store_true",
        help="answer 415 when Content-Type is missing (default: only when it is not application/json)",
    )
    p.add_argument(
        "--control-plane",
        dest="control_plane",
        action="store_true",
        default=None,
        help="enable /__mock/ even when bound to a non-loopback address",
    )
    p.add_argument("--no-control-plane", dest="control_plane", action="store_false", help="disable /__mock/")
    p.add_argument(
        "--journal-limit",
        type=int,
        default=DEFAULT_JOURNAL_LIMIT,
        help=f"request journal size (default {DEFAULT_JOURNAL_LIMIT})",
    )
    p.add_argument("--no-journal", action="store_true", help="keep no request journal")
    p.add_argument(
        "--error-layout",
        choices=["error", "data"],
        default="data",
        help="where errors carry their constant: data.error.error_code (the default, on the best evidence: "
        "README) or a top-level error.error_code (the other reading)",
    )
    p.add_argument("--latency-ms", type=float, default=0, help="fault: delay every API response by this much")
    p.add_argument(
        "--random-5xx",
        type=float,
        default=0,
        metavar="RATE",
        help="fault: answer this share (0..1) of API requests with a documented 5xx",
    )
    p.add_argument("--fault-seed", type=int, help="seed for --random-5xx, for repeatable runs")
    p.add_argument(
        "--read-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="the most a client may take to send a request's headers, and again its body "
        "(default 10; a body cut short answers 408)",
    )
    proxy = p.add_argument_group("proxy and record (learning from a sandbox or the real pods)")
    proxy.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="POD=URL",
        help="forward every API request of POD (in or na) to URL (https:// for the real pods, http:// for any "
        "server), as it came, api-key included; the control plane stays local. Give it once per pod",
    )
    proxy.add_argument("--upstream-ca", type=Path, metavar="FILE", help="a CA bundle (PEM) to trust for the upstreams")
    proxy.add_argument(
        "--upstream-timeout",
        type=float,
        default=DEFAULT_UPSTREAM_TIMEOUT,
        metavar="SECONDS",
        help=f"the most an upstream may take to answer; then 504 (default {DEFAULT_UPSTREAM_TIMEOUT:g})",
    )
    proxy.add_argument("--record", type=Path, metavar="FILE", help="append every proxied exchange to this cassette")
    proxy.add_argument(
        "--record-limit",
        type=int,
        default=DEFAULT_CASSETTE_LIMIT,
        metavar="BYTES",
        help=f"stop recording when the cassette reaches this size; proxying goes on (default {DEFAULT_CASSETTE_LIMIT})",
    )
    proxy.add_argument(
        "--keep-personal-data",
        action="store_true",
        help="record phone numbers, e-mail addresses and cookie values as they came (masked by default)",
    )
    learned = p.add_argument_group("replay and calibrate (offline, from cassettes)")
    learned.add_argument(
        "--replay",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="answer requests a cassette recorded with the recorded answer, byte for byte (repeatable; "
        "method, pod, path, raw query and Prefer must match; the n-th such request gets the n-th answer)",
    )
    learned.add_argument(
        "--replay-strict",
        action="store_true",
        help="with --replay: answer a request no cassette recorded with the mock's own 404 (MOCK404), "
        "not the normal mock",
    )
    learned.add_argument(
        "--calibrate",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="answer as the real API was observed to (cassettes, or a live report's `exchanges`; repeatable)",
    )
    p.add_argument("--log-level", default="error", choices=["debug", "info", "warning", "error"])
    return p


def _upstreams(values: Sequence[str]) -> dict[str, str]:
    """{pod: URL} from `--upstream POD=URL` flags; ValueError names the first one that is wrong."""
    upstreams: dict[str, str] = {}
    for value in values:
        pod, sep, url = value.partition("=")
        pod = pod.strip().lower()
        if not sep or pod not in PODS:
            raise ValueError(f"--upstream {value!r}: give POD=URL with POD in or na")
        parsed = urlsplit(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"--upstream {pod}=...: the URL must be http:// or https:// and name a host")
        if parsed.query or parsed.fragment:
            raise ValueError(f"--upstream {pod}=...: the URL may not carry a query or a fragment")
        try:
            parsed.port  # noqa: B018 - a port that is no number raises here
        except ValueError:
            raise ValueError(f"--upstream {pod}=...: the port is not a number from 0 to 65535") from None
        if pod in upstreams:
            raise ValueError(f"--upstream {pod}=... is given twice")
        upstreams[pod] = url.strip()
    return upstreams


def _shown(url: str) -> str:
    """An upstream as the banner shows it: never a user or password given in its URL."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _check_ca(path: Path) -> str | None:
    """Why the CA file cannot be used, or None."""
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        return f"--upstream-ca {path}: not a readable PEM CA bundle ({getattr(exc, 'strerror', None) or exc})"
    return None


def _claim_port(host: str, port: int) -> int:
    """A free port for 0; for any other, proof that nobody listens there. Granian binds
    with SO_REUSEPORT, so a second mock on a busy port would silently share it (and split
    the state between two stores); a plain bind fails instead."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host.strip("[]"), port))
        return int(s.getsockname()[1])


def _load_seed(spec: SpecIndex, path: Path | None) -> StateData:
    doc: dict[str, Any] = default_seed_document(spec)
    if path is not None:
        try:
            overlay = strict_json(path.read_bytes()) if path.suffix == ".json" else load_yaml(path)
        except (yaml.YAMLError, RecursionError) as exc:
            raise StateError(f"/: not valid YAML: {type(exc).__name__}") from None
        if overlay is INVALID_JSON:
            raise StateError(f"/: not strict JSON (UTF-8, no NaN, no name twice, at most {MAX_DEPTH} levels deep)")
        if not isinstance(overlay, dict):
            raise StateError("/: a seed file holds a JSON or YAML object")
        if too_deep(overlay):
            raise StateError(f"/: nested more than {MAX_DEPTH} levels deep")
        doc = merge_seed(doc, overlay)
    return StateData.from_document(doc, state_validator(spec))


def _remove(folder: Path) -> None:
    """A worker that is still closing its SQLite connection may write once more: retry briefly."""
    for _ in range(20):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.1)


def _prepare_store(args: argparse.Namespace, url: str, seed: StateData, resumable: bool) -> tuple[bool, str]:
    """Seed the shared store (or resume it) before any worker opens it: (resumed, how the banner
    names it). A Redis prefix another replica already serves is joined as it is: its state, armed
    scenarios and faults are kept (this replica's seed becomes what a reset goes back to)."""
    store: Store = open_store(url, journal_limit=args.journal_limit, prefix=args.store_prefix)
    try:
        shared = store.kind == "redis"
        resumed = resumable and store.is_initialized()
        if not resumed:  # the state first: the seed marks the file initialized, so a kill between
            store.load(seed)  # the two leaves a file the next start seeds again, never an empty one
        store.set_seed(seed)  # on a resumed file the new seed is what `reset` goes back to
        if not (shared and resumed):
            store.disarm("scenario", None)
            store.disarm("fault", None)
            standing = []
            if args.latency_ms:
                standing.append(Armed(0, "fault", "latency", None, params={"ms": args.latency_ms}))
            if args.random_5xx:
                params: dict[str, Any] = {"rate": args.random_5xx}
                if args.fault_seed is not None:
                    params["seed"] = args.fault_seed
                standing.append(Armed(0, "fault", "random_5xx", None, params=params))
            store.set_standing_faults(standing)
        detail = store.describe()
        shown = f"{detail['url']} prefix {detail['prefix']}" if shared else str(store_path(url))
    finally:
        store.close()
    return resumed, shown


def _exit_on_stop(signum: int, frame: object) -> None:
    """A stop asked for before granian serves: unwind through `finally`, with no traceback."""
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    # Until granian installs its own handlers; Ctrl-C used to end in a KeyboardInterrupt traceback.
    signal.signal(signal.SIGTERM, _exit_on_stop)
    signal.signal(signal.SIGINT, _exit_on_stop)
    args = build_parser().parse_args(argv)
    err = sys.stderr
    try:
        require_extra(*SERVER, imported=False)
        from .web import SpecRouter, is_loopback_host
        from .web._server import DEFAULT_READ_TIMEOUT, WorkerSettings, serve
    except ModuleNotFoundError as exc:
        line = missing_extra("kaleyra-mock", exc)
        if line is None:
            raise
        print(line, file=err, flush=True)
        return 2

    read_timeout = DEFAULT_READ_TIMEOUT if args.read_timeout is None else args.read_timeout
    for name, value, low, high in (
        ("--random-5xx", args.random_5xx, 0, 1),
        ("--latency-ms", args.latency_ms, 0, 120000),
        ("--read-timeout", read_timeout, 0.1, 60),
    ):
        if not low <= value <= high:
            print(f"kaleyra-mock: {name} must be between {low} and {high}", file=err)
            return 2
    if args.workers < 1 or args.journal_limit < 1:
        print("kaleyra-mock: --workers and --journal-limit must be at least 1", file=err)
        return 2
    if not 0 <= args.port <= 65535:
        print("kaleyra-mock: --port must be between 0 and 65535", file=err)
        return 2
    try:
        upstreams = _upstreams(args.upstream)
    except ValueError as exc:
        print(f"kaleyra-mock: {exc}", file=err)
        return 2
    problem = None
    if not 0.1 <= args.upstream_timeout <= 600:
        problem = "--upstream-timeout must be between 0.1 and 600"
    elif args.record_limit < 1:
        problem = "--record-limit must be at least 1"
    elif not upstreams and (args.record or args.upstream_ca or args.keep_personal_data):
        problem = "--record, --upstream-ca and --keep-personal-data need --upstream"
    elif args.upstream_ca is not None:
        problem = _check_ca(args.upstream_ca)
    if problem is not None:
        print(f"kaleyra-mock: {problem}", file=err)
        return 2

    spec = SpecIndex.load()
    try:
        seed = _load_seed(spec, args.seed)
    except (OSError, ValueError) as exc:
        print(f"kaleyra-mock: cannot load seed {args.seed}: {exc}", file=err)
        return 2

    if args.replay_strict and not args.replay:
        print("kaleyra-mock: --replay-strict needs --replay FILE", file=err)
        return 2
    if upstreams and (args.replay or args.calibrate):
        # A proxied pod is answered by its upstream alone: a replayed or calibrated answer there
        # would never be given, and beside it on the other pod would make one run two kinds of mock.
        print("kaleyra-mock: --replay and --calibrate answer offline: use them without --upstream", file=err)
        return 2
    replay_paths = [p.resolve() for p in args.replay]
    calibrate_paths = [p.resolve() for p in args.calibrate]
    try:  # read once here, for one clear line and exit 2; each worker reads them again itself
        replay = ReplayIndex.load(replay_paths) if replay_paths else None
        calibration = (
            calibrate(spec, load_observations(calibrate_paths), SpecRouter.of(spec).route) if calibrate_paths else None
        )
    except CassetteError as exc:
        print(f"kaleyra-mock: cannot read cassette {exc}", file=err)
        return 2

    loopback = is_loopback_host(args.host)
    control_plane = loopback if args.control_plane is None else args.control_plane
    if not loopback:
        print(
            f"kaleyra-mock: WARNING: bound to {args.host}, reachable from other machines; "
            f"control plane {'ENABLED by --control-plane' if control_plane else 'disabled'}",
            file=err,
        )

    if args.state is not None and args.store is not None:
        print("kaleyra-mock: give --state FILE or --store URL, not both", file=err)
        return 2
    tmpdir = None
    if args.store is not None:
        url, resumable = args.store, True
        if url.startswith("memory:"):
            print("kaleyra-mock: --store memory: is in-process only; workers are processes (sqlite, redis)", file=err)
            return 2
    elif args.state is not None:
        url, resumable = sqlite_url(str(args.state)), True
    else:
        tmpdir = tempfile.mkdtemp(prefix="kaleyra-mock-")
        url, resumable = sqlite_url(str(Path(tmpdir) / "state.sqlite3")), False
    try:
        try:
            resumed, shown_store = _prepare_store(args, url, seed, resumable)
        except ModuleNotFoundError as exc:
            print(f"kaleyra-mock: {exc}", file=err)
            return 2
        except ValueError as exc:
            print(f"kaleyra-mock: --store {url}: {exc}", file=err)
            return 2
        except StoreUnavailable as exc:
            print(f"kaleyra-mock: cannot reach the store: {exc}", file=err)
            return 2
        except (sqlite3.Error, OSError) as exc:
            print(f"kaleyra-mock: cannot use state file {store_path(url)}: {exc}", file=err)
            return 2

        try:
            port = _claim_port(args.host, args.port)
        except OSError as exc:
            print(f"kaleyra-mock: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=err)
            return 2
        host = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host
        base = f"http://{host}:{port}"
        lines = [
            f"Kaleyra RCS mock ({args.workers} workers, store {shown_store}{', resumed' if resumed else ''})",
            f"  IN pod:        {base}/in",
            f"  NA pod:        {base}/na",
            f"  control plane: {base}/__mock/" if control_plane else "  control plane: disabled",
            *([f"  dashboard:     {base}/__mock/ui"] if control_plane else []),
            *(f"  proxy:         {pod} -> {_shown(url)}" for pod, url in upstreams.items()),
            *([f"  recording:     {args.record}"] if args.record else []),
            "  Ctrl-C or SIGTERM stops it.",
        ]
        if replay is not None:
            strict = ", strict" if args.replay_strict else ""
            lines.insert(
                -1, f"  replay:        {replay.exchange_count()} exchanges, {len(replay.cassettes)} cassettes{strict}"
            )
            lines[-1:-1] = [f"  replay:        skipped {line}" for line in replay.skipped]
        if calibration is not None:
            lines.insert(
                -1,
                f"  calibrated:    {len(calibration.observed)} examples, {len(calibration.not_applied)} not applied"
                f", error layout {calibration.error_layout or 'unchanged'} (see /__mock/health)",
            )
        print("\n".join(lines), flush=True)

        settings = WorkerSettings(
            store_url=url,
            store_prefix=args.store_prefix,
            replica=f"{host}:{port}",
            default_pod=args.default_pod,
            strict_content_type=args.strict_content_type,
            control_plane=control_plane,
            loopback_hosts_only=loopback,
            journal=not args.no_journal,
            journal_limit=args.journal_limit,
            error_layout=args.error_layout,
            read_timeout=read_timeout,
            upstreams=upstreams,
            upstream_ca=str(args.upstream_ca) if args.upstream_ca else None,
            upstream_timeout=args.upstream_timeout,
            record=str(args.record.resolve()) if args.record else None,
            record_limit=args.record_limit,
            keep_personal_data=args.keep_personal_data,
            replay=tuple(str(p) for p in replay_paths),
            replay_strict=args.replay_strict,
            calibrate=tuple(str(p) for p in calibrate_paths),
        )
        serve(settings, host=args.host, port=port, workers=args.workers, log_level=args.log_level)
    finally:
        if tmpdir is not None:
            _remove(Path(tmpdir))
    return 0
