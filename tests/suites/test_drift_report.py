"""The live smoke suite and its doc-drift report, proven offline.

The pure tests tie `contracts/live/_drift.ITEMS` to the README's two lists and to the spec's
marks and check the judges on made-up answers. The `server` tests run `pytest contracts/live
--target live` in a subprocess against stand-ins on loopback: the real mock server (default and
`--error-layout error`) and a small WSGI stand-in of our own that contradicts a documented item.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from contracts._support import CONTRACT_API_KEY, CONTRACT_SID, SPEC, contract_seed
from contracts.live._drift import (
    CANNOT_TELL,
    CONFIRMS,
    CONTRADICTS,
    ITEMS,
    Answer,
    Evidence,
    judge,
    mark_problems,
)
from contracts.live._probes import PROBES, DriftRun, LiveSettings, RateLimiter, SettingsError, redact
from tests._spec import ROOT

KEY, SID = CONTRACT_API_KEY, CONTRACT_SID
START_DEADLINE_S = 20.0
STOP_DEADLINE_S = 10.0
RUN_DEADLINE_S = 120.0
# No cache written by the inner runs; schemathesis' and hypothesis' plugins (2 s of start-up each
# run, unused by the live suite) left out.
QUICK = ("-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest")
EXPECTED_IDS = (
    "D1-na-host",
    "D2-testers-path",
    "D3-testers-method",
    "D4-content-type",
    "D5-agent-number-position",
    "D6-sample-tester",
    "D7-stray-space",
    "D8-typo-and-json-string",
    "D9-missing-agent-number",
    "D10-masked-samples",
    "A1-error-envelope",
    "A2-testers-errors",
    "A3-other-errors",
    "A4-variants-alike",
    "A5-tester-fields",
    "A6-any-sid-any-key",
    "A7-mock-own-errors",
)


# -- the items against the README and the spec ------------------------------------------------


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _readme_entries() -> dict[str, str]:
    """D1… for the table rows of "Where the Kaleyra docs disagree", A1… for the bullets of "What is assumed"."""
    entries = {}
    for line in _readme_section("Where the Kaleyra docs disagree").splitlines():
        match = re.match(r"\| (\d+) \|", line)
        if match:
            entries[f"D{match.group(1)}"] = line
    bullets = re.split(r"\n- ", "\n" + _readme_section("What is assumed").split("\n- ", 1)[1])
    for number, bullet in enumerate(b for b in bullets if b.strip()):
        entries[f"A{number + 1}"] = bullet
    return entries


def test_items__one_per_readme_item_in_order() -> None:
    entries = _readme_entries()
    assert [i.id.split("-", 1)[0] for i in ITEMS] == list(entries), "an item per README row and bullet, in order"
    for item in ITEMS:
        assert item.readme_anchor in entries[item.id.split("-", 1)[0]], (item.id, item.readme_anchor)


def test_items__ids_are_stable_and_unique() -> None:
    assert tuple(i.id for i in ITEMS) == EXPECTED_IDS
    parts = [c.id for i in ITEMS for c in i.claims]
    assert len(parts) == len(set(parts))
    assert all(c.id.startswith(i.id + ".") for i in ITEMS for c in i.claims)


def test_parts__carry_the_mark_the_spec_gives_them() -> None:
    assert mark_problems() == []


def test_parts__every_probe_a_judge_reads_is_one_the_suite_sends() -> None:
    """A judge that names a probe nobody sends would say 'not part of this run' forever."""
    unsent = {p.name: Answer(p.name, p.name, reason="the reason given") for p in PROBES}
    for result in judge(Evidence(unsent, "48900", "48400")):
        for part in result.parts:
            assert "not part of this run" not in part.finding.observed, part.claim.id
            assert part.finding.verdict == CANNOT_TELL, part.claim.id


# -- the judges, on made-up answers ----------------------------------------------------------


TESTERS = SPEC.example("getTestersByAgent", "testers").value


def _answers(**changes: tuple[int, Any]) -> dict[str, Answer]:
    """Every probe answered the way the default mock answers it, but for `changes` (probe: (status, body))."""
    mock_like: dict[str, tuple[int, Any]] = {p.name: (200, TESTERS) for p in PROBES}
    for probe, (op, name) in {
        "no_key": ("getTestersByAgent", "missing_api_key"),
        "wrong_key": ("getTestersByAgent", "invalid_api_key"),
        "text_plain": ("getTestersByAgent", "unsupported_media_type"),
        "unknown_agent": ("getTestersByAgent", "agent_not_found"),
        "missing_agent": ("getTestersByAgent", "missing_agent_number"),
        "repeated_agent": ("getTestersByAgent", "bad_request"),
        "invalid_json": ("postTestersByAgent", "invalid_json"),
        "delete_first": ("deleteAgent", "agent_deleted"),
        "delete_again": ("deleteAgent", "agent_not_found"),
        "testers_after_delete": ("getTestersByAgent", "agent_not_found"),
        "delete_no_number_slash": ("deleteAgentWithoutNumber", "missing_agent_number"),
        "delete_no_number": ("deleteAgentWithoutNumber", "missing_agent_number"),
    }.items():
        example = SPEC.example(op, name)
        mock_like[probe] = (example.status, example.value)
    mock_like["not_found_path"] = (404, SPEC.shared["not_found"].value)
    mock_like["get_delete_path"] = (405, SPEC.shared["method_not_allowed"].value)
    mock_like.update(changes)
    return {
        name: Answer(
            name,
            name,
            sent=True,
            status=status,
            headers={"allow": "DELETE"} if name == "get_delete_path" else {},
            text=json.dumps(body),
            body=body,
            is_json=True,
        )
        for name, (status, body) in mock_like.items()
    }


def _verdicts(answers: dict[str, Answer]) -> dict[str, tuple[str, bool]]:
    return {
        p.claim.id: (p.finding.verdict, p.fails_run)
        for r in judge(Evidence(answers, "48900", "48400"))
        for p in r.parts
    }


def test_judges__mock_like_answers_confirm_every_askable_part_but_the_content_type_rule() -> None:
    verdicts = _verdicts(_answers())
    askable = {c.id for i in ITEMS for c in i.claims if c.askable}
    not_confirmed = {k: v for k, v in verdicts.items() if k in askable and v[0] != CONFIRMS}
    assert not_confirmed == {
        "D4-content-type.missing": (CONTRADICTS, False),  # the mock accepts a missing Content-Type
        "A3-other-errors.429": (CANNOT_TELL, False),
    }


def test_judges__a_404_for_the_documented_path_fails_the_run() -> None:
    verdicts = _verdicts(_answers(baseline=(404, SPEC.shared["not_found"].value)))
    assert verdicts["D2-testers-path.sample"] == (CONTRADICTS, True)
    assert verdicts["D2-testers-path.wsgw"][0] == CANNOT_TELL  # nothing to compare a variant with


def test_judges__the_constant_under_a_top_level_error_is_reported_not_failed() -> None:
    def relaid(example: dict[str, Any]) -> dict[str, Any]:
        body = dict(example)
        body["error"] = body.pop("data")["error"]
        body["data"] = {}
        return body

    no_key = SPEC.example("getTestersByAgent", "missing_api_key")
    deleted_again = SPEC.example("deleteAgent", "agent_not_found")
    verdicts = _verdicts(_answers(no_key=(401, relaid(no_key.value)), delete_again=(400, relaid(deleted_again.value))))
    assert verdicts["A1-error-envelope.layout"] == (CONTRADICTS, False)
    assert verdicts["A3-other-errors.no-key"] == (CONFIRMS, False)  # the values, wherever the constant sits
    assert verdicts["D8-typo-and-json-string.json-string"] == (CONFIRMS, False)


def test_judges__the_typo_fixed_fails_the_run_and_an_empty_list_for_an_unknown_agent_is_reported() -> None:
    fixed = SPEC.example("deleteAgent", "agent_deleted").value | {"message": "Agent deleted successfully"}
    verdicts = _verdicts(_answers(delete_first=(200, fixed), unknown_agent=(200, [])))
    assert verdicts["D8-typo-and-json-string.typo"] == (CONTRADICTS, True)
    assert verdicts["A2-testers-errors.unknown-agent"] == (CONTRADICTS, False)


def test_judges__a_live_like_401_without_the_envelope_is_reported_with_its_body() -> None:
    results = judge(Evidence(_answers(no_key=(401, {"error": "Unauthorized"})), "48900", "48400"))
    part = next(p for r in results for p in r.parts if p.claim.id == "A3-other-errors.no-key")
    assert part.finding.verdict == CONTRADICTS
    assert '{"error": "Unauthorized"}' in part.finding.observed


# -- the bounds ----------------------------------------------------------------------------------


def test_rate_limiter__spaces_requests_and_never_waits_longer_than_one_interval() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    limiter.wait()
    limiter.wait()
    now[0] += 0.2
    limiter.wait()
    now[0] += 5
    limiter.wait()
    assert slept == pytest.approx([0.5, 0.3])
    assert RateLimiter(0).wait() == 0.0


def _settings(env: dict[str, str], *, flag: bool = False, base: str = "https://rcs-api.in.kaleyra.io") -> LiveSettings:
    return LiveSettings.from_env(env, destructive_flag=flag, base_url=base, api_key=KEY, sid=SID, pod="in")


@pytest.mark.parametrize(
    "env",
    [
        {"KALEYRA_RATE_LIMIT": "0"},
        {"KALEYRA_RATE_LIMIT": "50"},
        {"KALEYRA_RATE_LIMIT": "-1"},
        {"KALEYRA_RATE_LIMIT": "nan"},
        {"KALEYRA_REQUEST_BUDGET": "0"},
        {"KALEYRA_REQUEST_BUDGET": "2.5"},
        {"KALEYRA_TIMEOUT": "0"},
        {"KALEYRA_HOST_HEADER_PROBES": "1", "KALEYRA_BASE_URL": "https://example.invalid"},
        {"KALEYRA_AGENT_NUMBER": ".."},
    ],
)
def test_settings__unsafe_or_meaningless_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        _settings(env)


def test_settings__no_rate_limit_only_on_loopback_and_the_key_never_in_repr() -> None:
    local = _settings({"KALEYRA_RATE_LIMIT": "0", "KALEYRA_BASE_URL": "x"}, base="http://127.0.0.1:1/in")
    assert local.rate == 0
    assert KEY not in repr(local)


@pytest.mark.parametrize(
    ("flag", "env", "destructive"),
    [
        (True, {"KALEYRA_ALLOW_DESTRUCTIVE": "1", "KALEYRA_DELETE_AGENT_NUMBER": "48400"}, True),
        (False, {"KALEYRA_ALLOW_DESTRUCTIVE": "1", "KALEYRA_DELETE_AGENT_NUMBER": "48400"}, False),
        (True, {"KALEYRA_ALLOW_DESTRUCTIVE": "true", "KALEYRA_DELETE_AGENT_NUMBER": "48400"}, False),
        (True, {"KALEYRA_ALLOW_DESTRUCTIVE": "1"}, False),
        (
            True,
            {"KALEYRA_ALLOW_DESTRUCTIVE": "1", "KALEYRA_DELETE_AGENT_NUMBER": "48900", "KALEYRA_AGENT_NUMBER": "48900"},
            False,
        ),
    ],
)
def test_settings__deletes_need_the_flag_the_variable_and_an_explicit_other_agent(
    flag: bool, env: dict[str, str], destructive: bool
) -> None:
    settings = _settings(env, flag=flag)
    assert settings.destructive is destructive
    assert bool(settings.destructive_reason) is not destructive


def test_probes__on_the_na_pod_both_real_hosts_are_asked_and_a_read_only_run_sends_no_delete() -> None:
    """No socket: httpx's MockTransport records where each request would have gone."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=TESTERS)

    settings = LiveSettings.from_env(
        {"KALEYRA_AGENT_NUMBER": "48900", "KALEYRA_ALLOW_DESTRUCTIVE": "1", "KALEYRA_DELETE_AGENT_NUMBER": "48400"},
        destructive_flag=False,
        base_url="https://rcs-api.na.kaleyra.io",
        api_key=KEY,
        sid=SID,
        pod="na",
    )
    run = DriftRun(settings)
    run.limiter = RateLimiter(0)  # the default 1/s, unslept: this transport is no server
    run.send_all(transport=httpx.MockTransport(answer))
    assert {r.url.host for r in seen} == {host for host, pod in SPEC.pod_hosts.items() if pod == "na"}
    assert {r.method for r in seen} == {"GET", "POST"}
    assert len(seen) == run.budget.spent == len([p for p in PROBES if not p.destructive])
    # the probes' three ways of sending a key: none, the right one, and the made-up wrong one
    assert {r.headers.get("api-key") for r in seen} == {None, KEY, "drift-probe-wrong-key-0000000000"}
    assert all(
        a.reason.startswith("destructive probes off (missing: --destructive)")
        for a in run.answers.values()
        if not a.sent
    )


def test_redact__the_key_in_any_form_becomes_stars() -> None:
    key = 'k/"ey+1'
    text = f"{key} {json.dumps(key)} k%2F%22ey%2B1"
    assert key not in redact(text, key)
    assert redact(text, key).count("***") == 3


# -- running the suite in a subprocess -------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    output: str
    report: dict[str, Any] | None
    markdown: str
    seconds: float

    def part(self, part_id: str) -> dict[str, Any]:
        assert self.report is not None, self.output
        return next(p for i in self.report["items"] for p in i["parts"] if p["id"] == part_id)

    def item(self, item_id: str) -> dict[str, Any]:
        assert self.report is not None, self.output
        return next(i for i in self.report["items"] if i["id"] == item_id)

    def parts(self) -> Iterable[dict[str, Any]]:
        assert self.report is not None, self.output
        return (p for i in self.report["items"] for p in i["parts"])


def run_live(report_dir: Path, *args: str, suite: str = "contracts/live", **env: str) -> Run:
    """`pytest contracts/live --target live` with only the KALEYRA_* variables given here
    (`suite="contracts"` is what `make live` runs)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KALEYRA_") and k != "PYTEST_ADDOPTS"}
    started = time.monotonic()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", suite, "--target", "live", *QUICK),
            *("--drift-report", str(report_dir), *args),
        ],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE_S,
        check=False,
    )
    seconds = time.monotonic() - started
    js, md = report_dir / "drift.json", report_dir / "drift.md"
    report = json.loads(js.read_text()) if js.exists() else None
    return Run(done.returncode, done.stdout + done.stderr, report, md.read_text() if md.exists() else "", seconds)


def stand_in_env(in_url: str, **more: str) -> dict[str, str]:
    return {
        "KALEYRA_BASE_URL": in_url,
        "KALEYRA_API_KEY": KEY,
        "KALEYRA_SID": SID,
        "KALEYRA_AGENT_NUMBER": "48900",
        "KALEYRA_RATE_LIMIT": "0",
        **more,
    }


FULL = {"KALEYRA_ALLOW_DESTRUCTIVE": "1", "KALEYRA_DELETE_AGENT_NUMBER": "48400", "KALEYRA_HOST_HEADER_PROBES": "1"}


def _no_key_anywhere(run: Run) -> None:
    assert KEY not in run.output
    assert KEY not in run.markdown
    assert run.report is None or KEY not in json.dumps(run.report)


def test_live_suite__without_credentials_every_test_skips_with_the_reason(tmp_path: Path) -> None:
    run = run_live(tmp_path)
    assert run.returncode == 0, run.output
    assert "19 skipped" in run.output
    assert "set KALEYRA_API_KEY and KALEYRA_SID" in run.output
    assert "drift report not written" in run.output
    assert run.report is None


def test_live_suite__with_another_target_every_test_skips_with_the_reason(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KALEYRA_") and k != "PYTEST_ADDOPTS"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "contracts/live", *QUICK, "-rs"],
        cwd=ROOT,
        env=clean | stand_in_env("http://127.0.0.1:9/in"),
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    assert "19 skipped" in done.stdout
    assert "runs only with --target live" in done.stdout


def test_live_suite__no_rate_limit_against_a_remote_target_stops_before_any_request(tmp_path: Path) -> None:
    env = stand_in_env("https://kaleyra-drift-test.invalid")  # .invalid never resolves: nothing can leave
    run = run_live(tmp_path, **env)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.output
    assert "allowed only against a loopback stand-in" in run.output
    assert run.report is None


# -- the mock server as the stand-in ---------------------------------------------------------------


@dataclass
class MockServer:
    proc: subprocess.Popen[str]
    base: str

    @property
    def in_url(self) -> str:
        return self.base + "/in"

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.base + path, json=body, timeout=10.0)
        response.raise_for_status()
        return response.json()

    def reset(self, *, keys: bool) -> None:
        """Back to the default seed; `keys`: the default account accepts only the contract key (401 otherwise)."""
        self.control("POST", "/__mock/reset")
        if keys:
            account = self.control("GET", "/__mock/default-account")
            self.control("PUT", "/__mock/default-account", account | {"api_keys": [KEY]})

    def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.control("GET", "/__mock/journal?limit=1000")
        return entries


def _lines(stream: Any, sink: queue.Queue[str | None]) -> None:
    for line in stream:
        sink.put(line)
    sink.put(None)


@contextmanager
def mock_server(state: Path, *args: str) -> Iterator[MockServer]:
    """`python -m mock_server --port 0` on loopback (its own store file); SIGTERM at the end, killed if it lingers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "--port", "0", "--workers", "1", "--state", str(state), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        base = _banner(proc, lines)
        _wait_healthy(proc, base)
        yield MockServer(proc, base)
    finally:
        _stop(proc)
        reader.join(timeout=5)


def _banner(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> str:
    deadline = time.monotonic() + START_DEADLINE_S
    seen: list[str] = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            proc.wait(timeout=STOP_DEADLINE_S)
            pytest.fail(f"the mock exited ({proc.returncode}) before its banner: {''.join(seen)}")
        seen.append(line)
        match = re.search(r"IN pod:\s+(http://127\.0\.0\.1:\d+)/in\s*$", line)
        if match:
            return match.group(1)
    pytest.fail(f"no banner within {START_DEADLINE_S} s: {''.join(seen)}")


def _wait_healthy(proc: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the mock exited ({proc.returncode})")
        with suppress(httpx.TransportError):
            if httpx.get(base + "/__mock/health", timeout=2.0).status_code == 200:
                return
        time.sleep(0.05)
    pytest.fail(f"{base}/__mock/health did not answer within {START_DEADLINE_S} s")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_DEADLINE_S)


@pytest.fixture(scope="module")
def default_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    with mock_server(tmp_path_factory.mktemp("mock") / "state.sqlite3") as server:
        yield server


def _documented_not_confirmed(run: Run) -> dict[str, str]:
    return {
        p["id"]: f"{p['verdict']}: {p['observed']}"
        for p in run.parts()
        if p["mark"] == "documented" and p["askable"] and p["verdict"] != CONFIRMS
    }


@pytest.mark.server
def test_documented_command__against_the_default_mock_is_read_only_and_contradicts_nothing_documented(
    default_mock: MockServer, tmp_path: Path
) -> None:
    """The command CI runs: no listed keys, no --destructive (though the variables allow it): no DELETE is sent."""
    default_mock.reset(keys=False)
    env = stand_in_env(default_mock.in_url, KALEYRA_ALLOW_DESTRUCTIVE="1", KALEYRA_DELETE_AGENT_NUMBER="48400")
    run = run_live(tmp_path, **env)
    assert run.returncode == 0, run.output
    assert run.report is not None
    assert run.report["documented_contradictions"] == []
    assert not [e for e in default_mock.journal() if e["method"] == "DELETE"]
    assert run.part("D8-typo-and-json-string.typo")["verdict"] == CANNOT_TELL
    assert "--destructive" in run.part("D8-typo-and-json-string.typo")["observed"]
    assert run.part("D1-na-host.ai")["verdict"] == CANNOT_TELL
    # the default mock takes any key: reported against the 401 assumption, not failed
    assert (run.part("A3-other-errors.wrong-key")["verdict"], run.part("A3-other-errors.wrong-key")["fails_run"]) == (
        CONTRADICTS,
        False,
    )
    assert set(_documented_not_confirmed(run)) == {  # an IN run, and the parts a DELETE would have asked
        "D1-na-host.io",
        "D1-na-host.ai",
        "D5-agent-number-position.path",
        "D8-typo-and-json-string.typo",
        "D8-typo-and-json-string.json-string",
    }
    _no_key_anywhere(run)
    print(f"\ndocumented command against the default mock: {run.seconds:.2f} s")


@pytest.mark.server
def test_make_live__against_a_bare_mock_exits_0_and_reports_the_contradicted_assumptions(
    default_mock: MockServer, tmp_path: Path
) -> None:
    """`make live` runs every contract suite: against a `make run` mock, which takes any key, the
    assumed 401 for a wrong key is contradicted, and that is reported (xfail), not failed."""
    default_mock.reset(keys=False)
    run = run_live(tmp_path, "-rx", suite="contracts", **stand_in_env(default_mock.in_url))
    assert run.returncode == 0, run.output
    assert "XFAIL contracts/test_documented.py::test_auth__a_missing_or_wrong_key_is_refused_with_401" in run.output
    assert "x-assumed, contradicted" in run.output and "FAILED" not in run.output
    assert run.part("A3-other-errors.wrong-key")["verdict"] == CONTRADICTS
    _no_key_anywhere(run)


@pytest.mark.server
def test_full_run__against_the_default_mock_every_documented_part_confirms(
    default_mock: MockServer, tmp_path: Path
) -> None:
    default_mock.reset(keys=True)
    run = run_live(tmp_path, "--destructive", **stand_in_env(default_mock.in_url, **FULL))
    assert run.returncode == 0, run.output
    assert run.report is not None
    assert _documented_not_confirmed(run) == {}
    assert run.report["documented_contradictions"] == []
    journal = default_mock.journal()
    assert len(journal) == run.report["bounds"]["requests_sent"] <= run.report["bounds"]["request_budget"]
    deletes = {(e["path"], e["status"]) for e in journal if e["method"] == "DELETE"}
    assert deletes == {
        (f"/in/v1/{SID}/rcs/agent/48400", 200),
        (f"/in/v1/{SID}/rcs/agent/48400", 400),
        (f"/in/v1/{SID}/rcs/agent/", 400),
        (f"/in/v1/{SID}/rcs/agent", 400),
    }
    assert {e["pod"] for e in journal} == {"in", "na"}  # the NA hosts, by Host header
    assert run.part("A3-other-errors.wrong-key")["verdict"] == CONFIRMS
    assert run.part("A1-error-envelope.layout")["verdict"] == CONFIRMS
    for item_id in EXPECTED_IDS:
        assert f"| {item_id} |" in run.markdown
    _no_key_anywhere(run)
    print(f"\nfull run against the default mock: {run.seconds:.2f} s")


@pytest.mark.server
def test_budget__caps_the_requests_and_says_what_was_not_asked(default_mock: MockServer, tmp_path: Path) -> None:
    default_mock.reset(keys=True)
    run = run_live(tmp_path, **stand_in_env(default_mock.in_url, KALEYRA_REQUEST_BUDGET="5"))
    assert run.returncode == 0, run.output
    assert run.report is not None
    assert len(default_mock.journal()) == run.report["bounds"]["requests_sent"] == 5
    assert "the request budget (5) was spent" in run.markdown
    assert "left 14 probe(s) unsent" in run.output


@pytest.mark.server
def test_error_layout_error__is_reported_as_a_contradicted_assumption_and_the_run_passes(tmp_path: Path) -> None:
    with mock_server(tmp_path / "state.sqlite3", "--error-layout", "error") as server:
        server.reset(keys=True)
        run = run_live(tmp_path / "report", "--destructive", **stand_in_env(server.in_url, **FULL))
    assert run.returncode == 0, run.output
    layout = run.part("A1-error-envelope.layout")
    assert (layout["verdict"], layout["mark"], layout["fails_run"]) == (CONTRADICTS, "x-assumed", False)
    assert "under error" in layout["observed"]
    assert run.item("A1-error-envelope")["verdict"] == CONTRADICTS
    assert "A1-error-envelope | The error envelope" in run.markdown
    assert "CONTRADICTS (x-assumed: reported)" in run.markdown
    assert "XFAIL contracts/live/test_drift.py::test_drift[A1-error-envelope]" in run.output
    assert _documented_not_confirmed(run) == {}  # the values are read wherever the constant sits
    _no_key_anywhere(run)
    print(f"\n--error-layout error: {run.seconds:.2f} s")


# -- a stand-in that contradicts a documented item -------------------------------------------------


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _json_answer(start_response: Callable[..., Any], status: str, doc: Any) -> list[bytes]:
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _changed(app: WsgiApp, change: str) -> WsgiApp:
    """The mock, changed in one documented respect; its 404 for the probe path echoes the api key."""
    sample_path = re.compile(r"/in/v1/[^/]+/rcs/agent/testersbyagent")

    def changed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.endswith("/drift-probe-no-such-operation"):
            echo = f"no operation here for api-key {environ.get('HTTP_API_KEY', '')}"
            error = {"error_code": "NOT_FOUND", "error_message": echo}
            return _json_answer(
                start_response, "404 Not Found", {"code": "RCS404", "message": "Not found", "data": {"error": error}}
            )
        if change == "sample_path_404" and sample_path.fullmatch(path):
            return _json_answer(start_response, "404 Not Found", {"message": "no such route"})
        seen: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            seen.append((status, headers))
            return lambda _data: None

        chunks = app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, headers = seen[0]
        if change == "typo_fixed":
            body = body.replace(b"Agent deleted succesfully", b"Agent deleted successfully")
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return changed


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def stand_in(change: str) -> Iterator[str]:
    """The mock in-process behind `_changed`, served by wsgiref on a free loopback port, in a thread."""
    from mock_server.core import MemoryStore, StateData, state_validator
    from mock_server.web import create_app

    app = create_app(MemoryStore(StateData.from_document(contract_seed(), state_validator(SPEC))))
    server = make_server("127.0.0.1", 0, _changed(app, change), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=STOP_DEADLINE_S)


@pytest.mark.server
@pytest.mark.parametrize(
    ("change", "item", "part"),
    [
        ("typo_fixed", "D8-typo-and-json-string", "D8-typo-and-json-string.typo"),
        ("sample_path_404", "D2-testers-path", "D2-testers-path.sample"),
    ],
)
def test_a_documented_contradiction__fails_the_run_and_the_report_names_it(
    tmp_path: Path, change: str, item: str, part: str
) -> None:
    with stand_in(change) as base:
        run = run_live(tmp_path, "--destructive", "--showlocals", **stand_in_env(base + "/in", **FULL))
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.output
    assert run.report is not None
    assert item in run.report["documented_contradictions"]
    assert (run.part(part)["verdict"], run.part(part)["fails_run"]) == (CONTRADICTS, True)
    assert f"**The run fails**: the target contradicts what the spec marks documented in {item}" in run.markdown
    assert f"FAILED contracts/live/test_drift.py::test_drift[{item}]" in run.output
    if change == "typo_fixed":
        assert run.report["documented_contradictions"] == [item]
        assert "'Agent deleted successfully' (documented 'Agent deleted succesfully')" in run.part(part)["observed"]
    # the stand-in echoed the key in a body: the report has stars where it was
    _no_key_anywhere(run)
    assert "no operation here for api-key ***" in run.markdown
    print(f"\n{change}: {run.seconds:.2f} s")
