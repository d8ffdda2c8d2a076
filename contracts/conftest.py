"""`--target inprocess|URL|live` for every contract suite, and the coverage gate at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from contracts._support import REPORTS, Observations, Target

_OBSERVED = Observations()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kaleyra contracts")
    group.addoption(
        "--target",
        default=os.environ.get("KALEYRA_CONTRACT_TARGET", "inprocess"),
        help="inprocess (default), an http(s) URL of a running mock (e.g. http://127.0.0.1:8080), or live",
    )
    group.addoption("--no-coverage-gate", action="store_true", help="do not fail on unobserved documented answers")
    # The live smoke suite's options live here so that `pytest contracts --target live` knows them.
    group.addoption(
        "--destructive",
        action="store_true",
        help="live: also send DELETEs (needs KALEYRA_ALLOW_DESTRUCTIVE=1 and KALEYRA_DELETE_AGENT_NUMBER as well)",
    )
    group.addoption(
        "--drift-report",
        metavar="DIR",
        default=None,
        help=f"live: where drift.md and drift.json are written (default {REPORTS})",
    )


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    chosen = Target(request.config.getoption("--target"), _OBSERVED)
    if chosen.kind == "live" and not (chosen.api_key and chosen.sid):
        pytest.skip("live target: set KALEYRA_API_KEY and KALEYRA_SID (and KALEYRA_POD) to run against Kaleyra")
    if chosen.is_mock:
        chosen.reset()
    yield chosen
    if chosen.kind == "http":
        chosen.control("POST", "/__mock/reset")  # leave a running mock on its own seed, not ours


@pytest.fixture
def mock_target(target: Target) -> Iterator[Target]:
    """A mock target, reset before and after the test; live runs skip tests that need one."""
    if not target.is_mock:
        pytest.skip("needs the mock's control plane; the live API has none")
    target.reset()
    yield target
    target.reset()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The coverage gate: every documented answer of both operations seen on each pod."""
    config = session.config
    if not hasattr(config.option, "target") or config.getoption("--target") == "live":
        return
    if config.getoption("--no-coverage-gate") or _OBSERVED.responses == 0:
        return
    if config.option.keyword or config.option.markexpr or _narrowed(config):
        return  # a partial run cannot be expected to reach everything
    _OBSERVED.write(REPORTS)
    missing, missing_2xx = _OBSERVED.missing(), _OBSERVED.missing_2xx()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")  # -q leaves the cursor after the progress counter
    if missing or missing_2xx:
        if reporter is not None:
            reporter.write_line("coverage gate FAILED: never observed:", red=True)
            for row in missing:
                reporter.write_line(f"  pod={row[0]} {row[1]} {row[2]} {row[3]}", red=True)
            for pod, op in missing_2xx:
                reporter.write_line(f"  pod={pod} {op}: no 2xx at all", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        reporter.write_line(
            f"coverage gate passed: {len(_OBSERVED.required())} documented answers seen "
            f"over {_OBSERVED.responses} responses (table in reports/coverage.md)"
        )


def _narrowed(config: pytest.Config) -> bool:
    """True when only some contract files or tests were asked for."""
    return any("::" in arg or arg.endswith(".py") for arg in config.args)
