"""Starting the real server from a test or a script: a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

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
    url = None
    for line in proc.stdout:  # the banner comes first; the CLI prints nothing after it
        if "IN pod:" in line:
            url = line.split()[-1].rsplit("/in", 1)[0]
            break
    server = ServerProcess(proc, url or "")
    deadline = time.monotonic() + timeout
    while url is not None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/__mock/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop(timeout=5)
    raise RuntimeError(f"kaleyra-mock did not start (url: {url!r})")
