"""`kaleyra-rcs`, the console script: JSON out, one exit code per error class, credentials from the environment.

`main()` is driven in-process against the plugin's `kaleyra_mock` through a `client_factory`
that routes the client to the mock (no socket); the installed script is run once as a
subprocess against `kaleyra_mock_server`. The api key never appears in anything it prints.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from kaleyra_rcs import (
    AgentNotFound,
    AuthenticationError,
    ContractViolation,
    GatewayError,
    InternalServerError,
    KaleyraApiError,
    KaleyraError,
    KaleyraRCS,
    MissingRequiredParams,
    RateLimited,
    RcsChannelDisabled,
    ServerError,
    TransportError,
)
from kaleyra_rcs._cli import EXIT_CODES, main
from tests._spec import Example, Spec

SECRET = "sk-live-SECRET-123"
SID = "CLI-SID"
TEST_BUDGET_S = 20

# What `kaleyra-rcs --help` documents (its epilog), written out here rather than read from the code.
DOCUMENTED_EXIT_CODES = {
    0: "ok",
    1: "other API error",
    2: "usage",
    3: "contract violation",
    4: "authentication",
    5: "agent not found",
    6: "missing parameter",
    7: "RCS disabled",
    8: "rate limited",
    9: "server error",
    10: "transport",
}

SPEC = Spec.load()
TESTERS = SPEC.examples("getTestersByAgent")["testers"].value
AGENT_DELETED = SPEC.examples("deleteAgent")["agent_deleted"].value
# {example name: the agent number that asks the mock for it}, from the spec's x-mock-magic-agent.
AGENT_FOR = {name: agent for agent, name in SPEC.magic_agents().items()}
pytestmark = pytest.mark.time_budget(TEST_BUDGET_S)


class TTY(io.StringIO):
    """A stdin that says it is a terminal, with the user's answer already typed."""

    def isatty(self) -> bool:
        return True


@dataclass
class Run:
    code: int
    out: str
    err: str
    factory_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    mock: Any
    env: dict[str, str]
    transport: httpx.BaseTransport | None = None

    def __call__(self, *argv: str, env: dict[str, str] | None = None, stdin: io.StringIO | None = None) -> Run:
        calls: list[dict[str, Any]] = []

        def factory(environ: dict[str, str] | None, **overrides: Any) -> KaleyraRCS:
            calls.append({"env": environ, **overrides})
            transport = self.transport or self.mock.wsgi_transport()
            return KaleyraRCS.from_env(environ, transport=transport, **overrides)

        out, err = io.StringIO(), io.StringIO()
        code = main(
            list(argv),
            env=self.env if env is None else env,
            stdin=stdin if stdin is not None else io.StringIO(""),
            stdout=out,
            stderr=err,
            client_factory=factory,
        )
        run = Run(code, out.getvalue(), err.getvalue(), calls)
        assert SECRET not in run.out and SECRET not in run.err, "the api key leaked into the output"
        return run


@pytest.fixture
def cli(kaleyra_mock: Any) -> Cli:
    env = {"KALEYRA_API_KEY": SECRET, "KALEYRA_SID": SID, "KALEYRA_BASE_URL": kaleyra_mock.base_url("in")}
    return Cli(kaleyra_mock, env)


def deleted(mock: Any) -> list[dict[str, str]]:
    result: list[dict[str, str]] = mock.state()["deleted_default_agents"]
    return result


# -- the two commands -----------------------------------------------------------------------


def test_testers_prints_the_documented_list(cli: Cli) -> None:
    run = cli("testers", "--agent", "48900")
    assert run.code == 0, run.err
    assert run.json == TESTERS
    assert run.out.endswith("\n") and run.out.count("\n") == 1
    assert run.factory_calls[0]["env"] is cli.env
    assert cli.mock.journal()[0]["sid"] == SID


def test_testers_of_an_agent_without_testers(cli: Cli) -> None:
    run = cli("testers", "--agent", "48400")
    assert (run.code, run.json) == (0, [])


def test_delete_then_delete_again(cli: Cli) -> None:
    first = cli("delete-agent", "48400", "--yes")
    assert first.code == 0, first.err
    assert first.json == AGENT_DELETED
    assert deleted(cli.mock) == [{"pod": "in", "sid": SID, "agent_number": "48400"}]
    second = cli("delete-agent", "48400", "--yes")
    assert second.code == 5
    error = second.json
    assert error["error"] == "AgentNotFound"
    assert (error["status"], error["code"], error["error_code"]) == (400, "RCS904", "PROV_ERROR")
    assert "Agent not found" in error["message"]
    assert second.err == ""


@pytest.mark.parametrize(("option", "pod"), [(("--pod", "na"), "na"), (("--pod", "in"), "in")])
def test_pod_option_without_base_url(cli: Cli, option: tuple[str, str], pod: str) -> None:
    """Without a base URL the real host is used; the mock reads the pod from its Host header."""
    env = {k: v for k, v in cli.env.items() if k != "KALEYRA_BASE_URL"}
    run = cli(*option, "delete-agent", "48400", "--yes", env=env)
    assert run.code == 0, run.err
    assert run.factory_calls[0]["pod"] == pod
    assert deleted(cli.mock) == [{"pod": pod, "sid": SID, "agent_number": "48400"}]


def test_pod_from_the_environment(cli: Cli) -> None:
    env = {"KALEYRA_API_KEY": SECRET, "KALEYRA_SID": SID, "KALEYRA_POD": "na"}
    assert cli("delete-agent", "48400", "--yes", env=env).code == 0
    assert deleted(cli.mock)[0]["pod"] == "na"


def test_base_url_option_wins_over_the_environment(cli: Cli) -> None:
    run = cli("--base-url", cli.mock.base_url("na"), "delete-agent", "48400", "--yes")
    assert run.code == 0, run.err
    assert deleted(cli.mock)[0]["pod"] == "na"


def test_timeout_and_retries_reach_the_client(cli: Cli) -> None:
    run = cli("--timeout", "3", "testers", "--agent", "48900", "--retries", "2")
    assert run.code == 0
    assert (run.factory_calls[0]["timeout"], run.factory_calls[0]["retries"]) == (3.0, 2)
    assert "retries" not in cli("delete-agent", "48400", "--yes").factory_calls[0]  # never for the DELETE


# -- one exit code per error class -------------------------------------------------------------

COMMANDS = {
    "getTestersByAgent": ("testers", "--agent", SPEC.operation("getTestersByAgent").parameter_example("agent_number")),
    "deleteAgent": ("delete-agent", SPEC.operation("deleteAgent").parameter_example("agent_number"), "--yes"),
}


# Every named error example of the operation in the spec: name -> (status, value).
ERROR_EXAMPLES = {
    op: {ex.name: (ex.status, ex.value) for ex in SPEC.examples(op).values() if ex.status >= 400} for op in COMMANDS
}
# The documented meaning of each named example (README, "The client"); any other is generic.
TYPED = {
    "invalid_api_key": AuthenticationError,
    "missing_api_key": AuthenticationError,
    "agent_not_found": AgentNotFound,
    "missing_agent_number": MissingRequiredParams,
    "rcs_not_enabled": RcsChannelDisabled,
    "rate_limited": RateLimited,
    "gateway_error": GatewayError,
    "internal_server_error": InternalServerError,
}
# The help's exit codes by class (DOCUMENTED_EXIT_CODES' meanings), most specific first.
EXIT_OF_CLASS: tuple[tuple[type[KaleyraError], int], ...] = (
    (ContractViolation, 3),
    (AuthenticationError, 4),
    (AgentNotFound, 5),
    (MissingRequiredParams, 6),
    (RcsChannelDisabled, 7),
    (RateLimited, 8),
    (ServerError, 9),
    (TransportError, 10),
    (KaleyraError, 1),
)


def expected_class(name: str, status: int) -> type[KaleyraApiError]:
    return TYPED.get(name, ServerError if status >= 500 else KaleyraApiError)


def expected_exit(cls: type[KaleyraError]) -> int:
    return next(code for base, code in EXIT_OF_CLASS if issubclass(cls, base))


SCENARIOS = [(op, name) for op, examples in ERROR_EXAMPLES.items() for name in examples]


def test_exit_code_table_matches_the_help() -> None:
    assert EXIT_CODES == EXIT_OF_CLASS
    assert {code for _, code in EXIT_CODES} | {0, 2} == set(DOCUMENTED_EXIT_CODES)
    # most specific first: the base class comes last, or it would swallow every other
    assert EXIT_CODES[-1][0] is KaleyraError


def test_every_typed_example_is_in_the_spec() -> None:
    """The oracle names only examples the spec has, and the walk found the typed ones."""
    assert set(TYPED) <= {name for _, name in SCENARIOS}


@pytest.mark.parametrize(("operation", "scenario"), SCENARIOS, ids=[f"{op}-{name}" for op, name in SCENARIOS])
def test_exit_code_per_scenario(cli: Cli, scenario: str, operation: str) -> None:
    """Every error example of the spec, armed: the JSON names it, the exit code follows from its class."""
    status, value = ERROR_EXAMPLES[operation][scenario]
    error_class = expected_class(scenario, status)
    cli.mock.arm_scenario(scenario, times=1, operation=operation)
    run = cli(*COMMANDS[operation])
    assert run.code == expected_exit(error_class), run.out + run.err
    error = run.json
    assert error["error"] == error_class.__name__
    assert (error["status"], error["code"], error["error_code"]) == (
        status,
        value["code"],
        value["data"]["error"]["error_code"],
    )
    assert deleted(cli.mock) == []  # a forced answer deletes nothing


MAGIC_TESTERS = [
    pytest.param(agent, SPEC.examples("getTestersByAgent")[name], id=f"{agent}-{name}")
    for agent, name in SPEC.magic_agents(["getTestersByAgent"]).items()
]


@pytest.mark.parametrize(("agent", "example"), MAGIC_TESTERS)
def test_exit_code_from_magic_agents(cli: Cli, agent: str, example: Example) -> None:
    """Each magic agent of the GET: the exit code of the class its example is documented to raise."""
    assert cli("testers", "--agent", agent).code == expected_exit(expected_class(example.name, example.status))


def test_exit_code_invalid_key_by_state(cli: Cli) -> None:
    cli.mock.control.put_account("in", SID, {"api_keys": ["another-key"], "agents": {"48400": []}})
    run = cli("delete-agent", "48400", "--yes")
    assert (run.code, run.json["error"], run.json["status"]) == (4, "AuthenticationError", 401)


@pytest.mark.parametrize("fault", ["empty_response", "malformed_body"])
@pytest.mark.parametrize("operation", list(COMMANDS))
def test_exit_code_contract_violation(cli: Cli, fault: str, operation: str) -> None:
    cli.mock.arm_fault(fault, times=1)
    run = cli(*COMMANDS[operation])
    assert run.code == 3
    assert run.json["error"] == "ContractViolation"
    assert run.json["status"] == 200


@pytest.mark.parametrize("operation", list(COMMANDS))
def test_exit_code_transport(cli: Cli, operation: str) -> None:
    attempts: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused (simulated)", request=request)

    cli.transport = httpx.MockTransport(refuse)
    run = cli(*COMMANDS[operation])
    assert run.code == 10
    assert run.json["error"] == "TransportError"
    assert run.json["status"] is None
    assert len(attempts) == 1  # --retries defaults to 0


def test_undocumented_status_is_a_contract_violation(cli: Cli) -> None:
    cli.transport = httpx.MockTransport(lambda request: httpx.Response(418, json={"code": "X", "message": "teapot"}))
    run = cli("testers", "--agent", "48900")
    assert (run.code, run.json["error"], run.json["status"]) == (3, "ContractViolation", 418)


def test_every_documented_code_is_reached(cli: Cli) -> None:
    """0 through 10: each one the help promises, each from a real run."""
    seen = {cli("testers", "--agent", "48900").code, cli("delete-agent", "48400").code}  # 0; 2 (not a tty)
    for agent in SPEC.magic_agents(["getTestersByAgent"]):
        seen.add(cli("testers", "--agent", agent).code)
    cli.mock.arm_scenario("unsupported_media_type", times=1)
    seen.add(cli("testers", "--agent", "48900").code)
    cli.mock.arm_fault("empty_response", times=1)
    seen.add(cli("testers", "--agent", "48900").code)
    cli.transport = httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)))
    seen.add(cli("testers", "--agent", "48900").code)
    assert seen == set(DOCUMENTED_EXIT_CODES)


# -- confirmation -------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["y\n", "yes\n"])
def test_refuses_without_yes_when_stdin_is_not_a_tty(cli: Cli, answer: str) -> None:
    run = cli("delete-agent", "48400", stdin=io.StringIO(answer))
    assert run.code == 2
    assert "--yes" in run.err and run.out == ""
    assert deleted(cli.mock) == []
    assert cli.mock.journal() == []  # nothing was sent


@pytest.mark.parametrize("answer", ["y\n", "Y\n", "yes\n", " YES \n"])
def test_tty_confirmation_yes_deletes(cli: Cli, answer: str) -> None:
    run = cli("delete-agent", "48400", stdin=TTY(answer))
    assert run.code == 0, run.err
    assert run.json == AGENT_DELETED
    assert "48400" in run.err and "[y/N]" in run.err  # the prompt, on stderr, not in the JSON
    assert deleted(cli.mock) == [{"pod": "in", "sid": SID, "agent_number": "48400"}]


@pytest.mark.parametrize("answer", ["n\n", "\n", "", "no\n", "yep\n"])
def test_tty_confirmation_other_answers_do_not_delete(cli: Cli, answer: str) -> None:
    run = cli("delete-agent", "48400", stdin=TTY(answer))
    assert run.code == 2
    assert run.out == ""
    assert "not deleted" in run.err
    assert deleted(cli.mock) == []
    assert cli.mock.journal() == []


# -- credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "named"),
    [("KALEYRA_API_KEY", "KALEYRA_API_KEY"), ("KALEYRA_SID", "KALEYRA_SID")],
)
def test_missing_credentials(cli: Cli, drop: str, named: str) -> None:
    env = {k: v for k, v in cli.env.items() if k != drop}
    for argv in (("testers", "--agent", "48900"), ("delete-agent", "48400", "--yes")):
        run = cli(*argv, env=env)
        assert run.code == 2
        assert named in run.err and run.out == ""
        assert SID not in run.err or drop == "KALEYRA_SID"
    assert cli.mock.journal() == []


def test_missing_key_from_os_environ(kaleyra_mock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No env= passed: main reads os.environ."""
    monkeypatch.delenv("KALEYRA_API_KEY", raising=False)
    monkeypatch.setenv("KALEYRA_SID", SID)
    out, err = io.StringIO(), io.StringIO()
    assert main(["testers", "--agent", "48900"], stdout=out, stderr=err) == 2
    assert "KALEYRA_API_KEY" in err.getvalue()


def test_bad_pod_in_the_environment(cli: Cli) -> None:
    run = cli("testers", "--agent", "48900", env={**cli.env, "KALEYRA_POD": "eu"})
    assert run.code == 2
    assert "pod" in run.err


def test_bad_pod_option_is_a_usage_error(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli("--pod", "eu", "testers", "--agent", "48900")
    assert info.value.code == 2
    assert "--pod" in capsys.readouterr().err


@pytest.mark.parametrize("timeout", ["-1", "nan", "inf"])
def test_unusable_timeout_is_a_usage_error(cli: Cli, timeout: str) -> None:
    """Over a socket these crash today with a traceback and exit 1 (the code of "other API error")."""
    try:
        code = cli("--timeout", timeout, "testers", "--agent", "48900").code
    except SystemExit as exc:  # argparse's own usage error is as good
        code = int(exc.code or 0)
    assert code == 2
    assert cli.mock.journal() == []


def test_key_never_printed(cli: Cli) -> None:
    """`Cli` checks every run; here, every kind of run at once, including the prompt."""
    cli("testers", "--agent", "48900")
    cli("delete-agent", "48400", stdin=TTY("y\n"))
    cli("delete-agent", "48400", "--yes")
    for agent in (AGENT_FOR["invalid_api_key"], AGENT_FOR["gateway_error"], AGENT_FOR["rate_limited"]):
        cli("testers", "--agent", agent)
    cli.mock.arm_fault("malformed_body", times=1)
    cli("testers", "--agent", "48900")
    assert SECRET not in json.dumps(cli.mock.journal())
    assert SECRET not in json.dumps(cli.mock.state())


# -- the installed console script ----------------------------------------------------------------


def console_script() -> str:
    candidate = Path(sys.executable).with_name("kaleyra-rcs")
    found = str(candidate) if candidate.exists() else shutil.which("kaleyra-rcs")
    assert found, "the kaleyra-rcs console script is not installed"
    return found


def script_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALEYRA_")}
    env.update({"KALEYRA_API_KEY": SECRET, "KALEYRA_SID": "SCRIPT-SID", **extra})
    return env


@pytest.mark.server
def test_console_script_against_the_real_server(kaleyra_mock_server: Any) -> None:
    kaleyra_mock_server.reset()
    argv = [console_script(), "--base-url", kaleyra_mock_server.in_url, "testers", "--agent", "48900"]
    done = subprocess.run(argv, env=script_env(), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == TESTERS
    assert SECRET not in done.stdout + done.stderr
    journal = httpx.get(f"{kaleyra_mock_server.url}/__mock/journal", timeout=5).json()
    assert (journal[0]["pod"], journal[0]["sid"], journal[0]["status"]) == ("in", "SCRIPT-SID", 200)


@pytest.mark.server
def test_console_script_error_exit_code(kaleyra_mock_server: Any) -> None:
    kaleyra_mock_server.reset()
    env = script_env(KALEYRA_BASE_URL=kaleyra_mock_server.na_url)
    argv = [console_script(), "delete-agent", AGENT_FOR["agent_not_found"], "--yes"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 5, done.stderr
    assert json.loads(done.stdout)["error"] == "AgentNotFound"
    assert SECRET not in done.stdout + done.stderr


def test_console_script_help_lists_exit_codes() -> None:
    done = subprocess.run(
        [console_script(), "--help"], env=script_env(), capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse rewraps the epilog
    assert "Exit codes:" in text
    for code, meaning in DOCUMENTED_EXIT_CODES.items():
        assert f"{code} {meaning}" in text, f"--help does not document exit code {code} ({meaning})"
    assert "KALEYRA_API_KEY" in text
    assert SECRET not in done.stdout
