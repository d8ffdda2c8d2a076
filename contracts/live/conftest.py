"""The one session of probes and the drift report at the end (options in contracts/conftest.py).

Run it as `make live` (`pytest contracts --target live`). With another target every test here is
skipped with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

from contracts._support import REPORTS, Target

from . import _report
from ._drift import CONTRADICTS, ItemResult, judge
from ._probes import LIVE_CASSETTE, DriftRun, LiveSettings, SettingsError, redact

_RUN = pytest.StashKey[DriftRun]()
_RESULTS = pytest.StashKey[list[ItemResult]]()
_HERE = Path(__file__).resolve().parent


def _is_live(config: pytest.Config) -> bool:
    return bool(config.getoption("--target", default="inprocess") == "live")


@pytest.fixture(scope="session")
def drift(request: pytest.FixtureRequest) -> DriftRun:
    """Every probe, sent once per session within the bounds; skipped unless `--target live` with credentials."""
    config = request.config
    if not _is_live(config):
        pytest.skip("the live smoke suite runs only with --target live (it asks a real Kaleyra pod)")
    pod = (os.environ.get("KALEYRA_POD") or "in").lower()
    if pod not in ("in", "na"):
        pytest.exit(f"KALEYRA_POD must be in or na, not {pod!r}", returncode=pytest.ExitCode.USAGE_ERROR)
    target: Target = request.getfixturevalue("target")  # skips with its reason without KALEYRA_API_KEY/SID
    try:
        settings = LiveSettings.from_env(
            os.environ,
            destructive_flag=bool(config.getoption("--destructive", default=False)),
            base_url=target.root,
            api_key=target.api_key,
            sid=target.sid,
            pod=pod,
        )
    except SettingsError as exc:
        pytest.exit(f"live smoke suite: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    run = DriftRun(settings)
    config.stash[_RUN] = run
    run.send_all()
    config.stash[_RESULTS] = judge(run.evidence)
    return run


@pytest.fixture(scope="session")
def drift_results(drift: DriftRun, request: pytest.FixtureRequest) -> dict[str, ItemResult]:
    return {r.item.id: r for r in request.config.stash[_RESULTS]}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Nothing pytest prints or writes (tracebacks, captured output, JUnit XML) may carry the api key."""
    report: pytest.TestReport = yield
    key = os.environ.get("KALEYRA_API_KEY", "")
    if key and _is_live(item.config):
        if report.longrepr is not None and key in str(report.longrepr):
            report.longrepr = redact(str(report.longrepr), key)
        report.sections = [(title, redact(text, key)) for title, text in report.sections]
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the report; a contradiction of something the spec marks documented fails the run."""
    config = session.config
    run = config.stash.get(_RUN, None)
    results = config.stash.get(_RESULTS, None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if run is None or results is None:
        if _is_live(config) and reporter is not None and _selected_here(session):
            reporter.write_line("drift report not written: no probe was sent (see the skip reasons)")
        return
    folder = Path(config.getoption("--drift-report", default=None) or REPORTS)
    doc = _report.build(run, results)
    md, _ = _report.write(doc, folder)
    _report.write_cassette(run.exchanges, folder)
    if reporter is not None:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(doc["verdicts"].items()))
        reporter.write_line(
            f"drift report: {md}, drift.json and {LIVE_CASSETTE} ({counts}; {run.budget.spent} requests)"
        )
        for r in results:
            if r.verdict == CONTRADICTS:
                what = "documented, fails the run" if r.fails_run else "x-assumed, reported"
                reporter.write_line(f"  {r.item.id}: CONTRADICTS ({what})", red=r.fails_run, yellow=not r.fails_run)
    if doc["fails_run"] and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _selected_here(session: pytest.Session) -> bool:
    return any(Path(str(i.path)).resolve().is_relative_to(_HERE) for i in session.items)
