"""`make bench` and `make soak` stopped with SIGTERM (a CI job's timeout, `kill`) stop the servers
they started: those run in sessions of their own, so nothing else would. Each runner's `main`
runs in a process of its own with its first phase replaced by one that starts a real mock, as the
phases do, and waits in it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mock_server.testing import group_pids

ROOT = Path(__file__).resolve().parents[2]

_PHASE = """
import sys, time
import {module} as runner
from mock_server.testing import start_server


def phase(*_args, **_kwargs):
    server = start_server()
    try:
        print(server.proc.pid, flush=True)
        time.sleep(60)
    finally:
        server.stop()
    return {{}}


if hasattr(runner, "shutil"):  # the bench asks for wrk first; it is never run
    runner.shutil.which = lambda _name: "/usr/bin/wrk"
runner.{phase} = phase
sys.exit(runner.main(["--quick"]))
"""


@pytest.mark.server
@pytest.mark.parametrize(("module", "phase"), [("benchmarks.run", "throughput"), ("soak.run", "fuzz_server")])
def test_runner__sigterm_stops_the_servers_it_started(module: str, phase: str) -> None:
    code = _PHASE.format(module=module, phase=phase)
    runner = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    server_pid = 0
    try:
        assert runner.stdout is not None
        server_pid = int(runner.stdout.readline())
        assert group_pids(server_pid), "the mock was not running"
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while group_pids(server_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert group_pids(server_pid) == []
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for pid in group_pids(server_pid) if server_pid else []:
            os.kill(pid, signal.SIGKILL)
