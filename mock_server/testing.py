"""Starting the real server from a test or a script: a subprocess on a free loopback port; and a
real `redis-server` beside it (tests/_redis.py and benchmarks/stores.py start theirs here)."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

__all__ = [
    "REDIS_MISSING",
    "RedisMissing",
    "RedisServer",
    "ServerProcess",
    "exit_on_sigterm",
    "free_port",
    "group_pids",
    "group_rss_kib",
    "start_server",
]

REDIS_MISSING = "redis-server is missing: install Debian's package (apt-get install redis-server; `make test` does it)"


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C: each `finally` stops the servers it started. A runner's servers
    are in sessions of their own (Ctrl-C at a terminal reaches only the runner), so a runner that
    SIGTERM killed outright left them all running."""

    def unwind(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, unwind)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisMissing(RuntimeError):
    """No `redis-server` executable on PATH (the message is `REDIS_MISSING`)."""


class RedisServer:
    """One redis-server process (Debian's package) on a loopback port, in `folder`, no persistence;
    `stop()` and `start()` again keep its port (an outage, then back). Never a fake."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RedisMissing(REDIS_MISSING)
        self.executable = executable
        self.folder = folder
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.folder)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} on port {self.port}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class ServerProcess:
    """A running `kaleyra-mock`; `url` is its root (the pods are `url + "/in"` and `"/na"`)."""

    proc: subprocess.Popen[str]
    url: str

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, as a user would; SIGKILL for the whole group if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Reads the banner without blocking the caller; keeps draining so the pipe never fills, and
    closes it at the end (else the caller's run with `-W error` fails on a ResourceWarning)."""
    with stream:
        for line in stream:
            lines.put(line)
    lines.put(None)


def start_server(
    args: Sequence[str] = ("--workers", "1"),
    timeout: float = 30.0,
    stderr: IO[str] | int = subprocess.DEVNULL,
    command: Sequence[str] | None = None,
) -> ServerProcess:
    """Returns once `/__mock/health` answers; raises RuntimeError (and kills it) otherwise.
    `stderr` takes the server's log (an open file), which is dropped by default. `command`
    replaces `python -m mock_server --port 0 ARGS` (`make run PORT=0`, say): it must print the banner."""
    proc = subprocess.Popen(
        list(command) if command is not None else [sys.executable, "-m", "mock_server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    url = None
    while url is None and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:  # the process closed its stdout: it exited
            break
        if "IN pod:" in line:
            url = line.split()[-1].rsplit("/in", 1)[0]
    server = ServerProcess(proc, url or "")
    while url is not None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/__mock/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop(timeout=5)
    raise RuntimeError(f"kaleyra-mock did not start (url: {url!r})")


def _proc_stats() -> dict[int, list[str]]:
    """Every process's /proc/PID/stat fields after the command name: state, ppid, pgrp, ..."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # it ended while the directory was read
    return stats


def group_pids(pgid: int) -> list[int]:
    """The processes of a process group still running (a zombie has ended), from /proc (Linux).
    A server started here leads a group of its own: its workers, and `make`'s child, are in it."""
    return sorted(pid for pid, fields in _proc_stats().items() if int(fields[2]) == pgid and fields[0] != "Z")


def group_rss_kib(pid: int) -> int:
    """RSS of a process and all its descendants (granian's workers), from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for child, fields in _proc_stats().items():
        children.setdefault(int(fields[1]), []).append(child)
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total
