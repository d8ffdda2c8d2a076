"""Starting the real server from a test or a script: a subprocess on a free loopback port."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

import httpx

__all__ = ["ServerProcess", "start_server"]


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
    """Reads the banner without blocking the caller; keeps draining so the pipe never fills."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def start_server(args: Sequence[str] = ("--workers", "1"), timeout: float = 30.0) -> ServerProcess:
    """Returns once `/__mock/health` answers; raises RuntimeError (and kills it) otherwise."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
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
