"""`make soak`, `make bench` and `make contracts` say on stderr which phase they are in, and how many
there are, before each one starts. Each runner's `main` runs in its short mode with its phases
stubbed (the phases themselves are tested where they live: tests/server/test_soak.py for soak), so
what is checked here is the runner: every phase announced, in order, before it runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import benchmarks.run
import contracts.serve
import soak.run


class _Phases:
    """Stubs that note the stderr written before each of them ran."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.err = ""
        self.seen: list[tuple[str, str]] = []  # (phase, the last line on stderr when it started)

    def stub(self, name: str, result: Any = None) -> Any:
        def phase(*_args: Any, **_kwargs: Any) -> Any:
            self.err += self.capsys.readouterr().err
            self.seen.append((name, self.err.splitlines()[-1] if self.err else ""))
            return {"ok": True} if result is None else result

        return phase


def _announced(seen: list[tuple[str, str]], prefix: str, count: int) -> list[str]:
    """The phases' own lines, checked to read `<prefix> i/count …` in order."""
    lines = [line for _name, line in seen]
    for number, line in enumerate(lines, 1):
        assert re.fullmatch(rf"{prefix} {number}/{count} .+…", line), lines
    return lines


def test_soak__quick_run_announces_each_of_its_phases(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    phases = _Phases(capsys)
    names = ["fuzz_server", "hostile_clients", "concurrent_deletes", "state_churn", "memory"]
    names += ["sigterm_under_load", "stop_times", "kill9_rounds"]
    for name in names:
        monkeypatch.setattr(soak.run, name, phases.stub(name))
    monkeypatch.setattr(soak.run, "REPORTS", tmp_path)
    assert soak.run.main(["--quick"]) == 0
    assert [name for name, _line in phases.seen] == names
    lines = _announced(phases.seen, "soak:", len(names))
    assert lines[0] == "soak: 1/8 fuzzing over a socket, 500 requests…"
    assert lines[-1] == "soak: 8/8 kill -9 during writes, 2 rounds…"
    assert (tmp_path / "soak.json").exists()


def test_bench__quick_run_announces_each_of_its_phases(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    phases = _Phases(capsys)
    names = ["throughput", "delete_throughput", "cold_start", "in_process", "suite_setup", "client_overhead"]
    names += ["memory", "stores"]
    for name in names:
        monkeypatch.setattr(benchmarks.run, name, phases.stub(name))
    monkeypatch.setattr(benchmarks.run, "_wrk_script", lambda folder: folder / "get.lua")
    monkeypatch.setattr(benchmarks.run.shutil, "which", lambda _name: "/usr/bin/wrk")  # wrk is never run
    monkeypatch.setattr(benchmarks.run, "RESULTS", tmp_path)
    assert benchmarks.run.main(["--quick"]) == 0
    assert [name for name, _line in phases.seen] == names
    lines = _announced(phases.seen, "benchmarks:", len(names))
    assert lines[0] == "benchmarks: 1/8 GET testers throughput…"
    assert lines[3] == "benchmarks: 4/8 in-process client, 200 calls…"
    assert lines[4] == "benchmarks: 5/8 a test's in-process set-up…"
    assert lines[7] == "benchmarks: 8/8 the stores: SQLite, Redis with 1 and 2 replicas…"


@pytest.mark.server
def test_contracts__run_announces_the_suites_and_each_pods_schemathesis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The real server starts and is reset between pods; pytest and schemathesis' CLI are stubbed."""
    phases = _Phases(capsys)
    done = subprocess.CompletedProcess[str]([], 0, stdout="", stderr="")
    run = phases.stub("subprocess.run", done)
    monkeypatch.setattr(contracts.serve, "subprocess", type("Subprocess", (), {"run": staticmethod(run)}))
    monkeypatch.setattr(contracts.serve, "REPORTS", tmp_path)
    assert contracts.serve.main([]) == 0
    assert _announced(phases.seen, "contracts:", 3) == [
        "contracts: 1/3 the contract suites over HTTP (pytest)…",
        "contracts: 2/3 schemathesis' CLI, pod in…",
        "contracts: 3/3 schemathesis' CLI, pod na…",
    ]
