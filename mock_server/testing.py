"""Starting the real server from a test or a script: a subprocess on a free loopback port."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

__all__ = ["ServerProcess", "group_pids", "group_rss_kib", "start_server"]


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
