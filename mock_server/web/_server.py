"""Serving the mock with granian: a parent that prepares the shared SQLite store, and
worker processes that each build their own app on it, behind `RsgiBridge`.

Granian, not gunicorn: on this 2-core machine a lean Flask app served 3,200 / 8,100 /
8,500 req/s at 1 / 8 / 64 connections under granian with 2 workers, against 1,900 /
4,900 / 3,800 (gthread) and 2,500 / 4,100 / 4,100 (sync) under gunicorn. Its RSGI
interface, not its WSGI one: see `_rsgi.py`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core import (
    DEFAULT_CASSETTE_LIMIT,
    DEFAULT_JOURNAL_LIMIT,
    MockConfig,
    ReplayIndex,
    SpecIndex,
    calibrate,
    load_observations,
    open_store,
)
from ._api import SpecRouter
from ._front import DEFAULT_UPSTREAM_TIMEOUT, Front, ProxySettings, assemble
from ._http import WSGIApp
from ._rsgi import RsgiBridge, hold_stop_signals, release_stop_signals

__all__ = ["DEFAULT_READ_TIMEOUT", "WORKER_ENV", "WorkerSettings", "serve", "worker_app"]

WORKER_ENV = "KALEYRA_MOCK_WORKER_SETTINGS"
# Seconds a client may take to send a request's headers, and again its body; an 8 MiB body
# takes milliseconds on loopback, so only a stalled or trickling client ever meets it.
DEFAULT_READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class WorkerSettings:
    """All a worker needs, passed through the environment (workers are new processes)."""

    # The store, as the command line named it (sqlite:///PATH, redis://HOST:PORT/DB).
    store_url: str
    default_pod: str = "in"
    store_prefix: str | None = None
    replica: str = ""  # host:port, how health names this replica (the worker's pid is added)
    strict_content_type: bool = False
    control_plane: bool = True
    loopback_hosts_only: bool = False
    journal: bool = True
    journal_limit: int = DEFAULT_JOURNAL_LIMIT
    error_layout: str = "data"
    read_timeout: float = DEFAULT_READ_TIMEOUT
    # Proxy mode: {pod: base URL}; the CA file to trust; and the cassette each worker appends to.
    upstreams: dict[str, str] = field(default_factory=dict)
    upstream_ca: str | None = None
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    record: str | None = None
    record_limit: int = DEFAULT_CASSETTE_LIMIT
    keep_personal_data: bool = False
    # Offline: cassettes to replay (each worker loads them itself), and cassettes or live reports
    # to calibrate from.
    replay: tuple[str, ...] = ()
    replay_strict: bool = False
    calibrate: tuple[str, ...] = ()

    def proxy(self) -> ProxySettings | None:
        if not self.upstreams:
            return None
        return ProxySettings(
            upstreams=dict(self.upstreams),
            ca_file=self.upstream_ca,
            timeout=self.upstream_timeout,
            record=self.record,
            record_limit=self.record_limit,
            keep_personal_data=self.keep_personal_data,
        )

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> WorkerSettings:
        doc = json.loads(os.environ[WORKER_ENV])
        lists = {name: tuple(doc.get(name, ())) for name in ("replay", "calibrate")}
        return cls(**{**doc, **lists})


def worker_app() -> RsgiBridge:
    settings = WorkerSettings.from_env()
    store = open_store(
        settings.store_url,
        journal_limit=settings.journal_limit,
        prefix=settings.store_prefix,
        replica=settings.replica or None,
    )
    spec = SpecIndex.load()
    replay = ReplayIndex.load([Path(p) for p in settings.replay]) if settings.replay else None
    observed = load_observations([Path(p) for p in settings.calibrate]) if settings.calibrate else None
    config = MockConfig(
        default_pod="na" if settings.default_pod == "na" else "in",
        strict_content_type=settings.strict_content_type,
        journal=settings.journal,
        error_layout="error" if settings.error_layout == "error" else "data",
        replay=replay,
        replay_strict=settings.replay_strict,
        calibration=None if observed is None else calibrate(spec, observed, SpecRouter.of(spec).route),
    )
    handle = assemble(store, config, spec=spec, proxy=settings.proxy())

    def control() -> WSGIApp:
        from ._app import control_app  # Flask: imported by a worker at its first control request

        return control_app(
            handle, control_plane=settings.control_plane, loopback_hosts_only=settings.loopback_hosts_only
        )

    return RsgiBridge(Front(handle, control), read_timeout=settings.read_timeout)


def serve(settings: WorkerSettings, *, host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Blocks until SIGINT or SIGTERM; granian then stops its workers gracefully."""
    from granian import Granian
    from granian.constants import Interfaces, Loops, RuntimeModes
    from granian.http import HTTP1Settings

    os.environ[WORKER_ENV] = settings.to_env()
    # Granian forks its workers from here (and again on a respawn): each is born with the stop
    # signals held, so one sent while it starts waits for its handlers (`_rsgi.py`).
    os.register_at_fork(before=hold_stop_signals, after_in_parent=release_stop_signals)
    options: dict[str, Any] = {
        "address": host,
        "port": port,
        "interface": Interfaces.RSGI,
        # Measured beside asyncio and rloop, and a multi-threaded runtime (ARCHITECTURE.md).
        "loop": Loops.uvloop,
        "runtime_mode": RuntimeModes.st,
        "workers": workers,
        "factory": True,
        "log_level": log_level,
        "log_access": False,
        "websockets": False,
        "http1_settings": HTTP1Settings(header_read_timeout=max(1, int(settings.read_timeout * 1000))),
        # A stop waits for the answers in flight (a few ms each; measured in `make soak`): only a
        # request that takes long on purpose (a --latency-ms delay, an upstream, a body still being
        # sent, up to --read-timeout) holds its worker this long, which is then killed.
        "workers_kill_timeout": 5,
    }
    Granian("mock_server.web._server:worker_app", **options).serve()
