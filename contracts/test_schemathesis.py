"""Schemathesis against the target, on each pod, with the settings of schemathesis.toml.

- stateless: every operation of openapi.yaml, all three phases (examples, coverage, fuzzing), positive
  and negative data, with every check the toml leaves on (ignored_auth, missing_required_header,
  unsupported_method, negative_data_rejection, positive_data_acceptance, response_schema_conformance,
  not_a_server_error, ...) and `deleted_agent_stays_deleted`;
- stateful: the OpenAPI link TestersOfDeletedAgent (deleteAgent -> getTestersByAgent), the mock back at
  the contract seed for every Hypothesis example, derandomized;
- `deleted_agent_stays_deleted` replaces `use_after_free`, which never fires here (the testers path is
  a sibling of the delete path, not below it), and is shown to fail on a mock that forgets deletes.

Every response, the checks' own probes included, goes into `target.observations` (the coverage gate).
A live target is skipped: these suites fuzz and delete agents; the live smoke suite covers live.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import hypothesis
import pytest
import schemathesis
from schemathesis.engine.recorder import ScenarioRecorder

from contracts._support import CONTRACT_API_KEY, CONTRACT_SID, PODS, ROOT, SPEC, Observations, Target, contract_seed
from mock_server.core import AccountInfo, MemoryStore, StateData, state_validator
from mock_server.web import create_app

CONFIG_FILE = ROOT / "schemathesis.toml"
SPEC_FILE = ROOT / "openapi.yaml"
LIVE_REASON = (
    "schemathesis fuzzes and deletes agents, so it runs against the mock only (in-process or a URL); "
    "the live smoke suite covers a real Kaleyra account"
)
INPROCESS_ROOT = "http://kaleyra-mock"  # with an app, only the path of a base URL matters

# Stateful budget per pod, in Hypothesis examples (scenarios); steps per scenario come from
# `[phases.stateful] max-steps` in schemathesis.toml.
STATEFUL_SCENARIOS = 40
# The broken-mock proof: derandomized, it fails within the first few scenarios.
BROKEN_SCENARIOS = 30


# -- what the run saw --------------------------------------------------------------------------------


@dataclass
class _Stats:
    """Cases per (suite, pod, phase), seconds per (suite, pod), and how often the custom check applied."""

    cases: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)  # suite -> (first start, last end)
    applied: Counter[tuple[str, str]] = field(default_factory=Counter)

    def timed(self, suite: str, started: float) -> None:
        first, _ = self.spans.get(suite, (started, started))
        self.spans[suite] = (min(first, started), time.perf_counter())

    def lines(self) -> list[str]:
        out = []
        for suite in ("stateless", "stateful"):
            for pod in PODS:
                counts = {phase: n for (s, p, phase), n in sorted(self.cases.items()) if (s, p) == (suite, pod)}
                if counts:
                    per_phase = ", ".join(f"{phase} {n}" for phase, n in counts.items())
                    out.append(f"schemathesis {suite} pod={pod}: {per_phase}")
            if suite in self.spans:
                first, last = self.spans[suite]
                out.append(f"schemathesis {suite}, both pods: {last - first:.1f} s wall")
        if self.applied:
            applied = ", ".join(f"{kind} on {pod} {n}" for (kind, pod), n in sorted(self.applied.items()))
            out.append(f"deleted_agent_stays_deleted applied: {applied}")
        return out


STATS = _Stats()


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the cases per phase when the module is done (shown with -q too)."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or not STATS.lines():
        return
    with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
        reporter.write_line("")
        for line in STATS.lines():
            reporter.write_line(line)


@dataclass
class _Histogram:
    """Statuses per operation in one pod's stateless run."""

    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, label: str, status: int) -> None:
        self.statuses[label][status] += 1

    def problems(self) -> list[str]:
        """A 2xx per operation (the documented 400 where the spec documents no 2xx), and more than one status."""
        out = []
        for label, documented in _documented_statuses().items():
            seen = self.statuses.get(label, Counter())
            wanted = {s for s in documented if 200 <= s < 300} or {400}  # deleteAgentWithoutNumber has no 2xx
            if not wanted & set(seen):
                out.append(f"{label}: never answered {sorted(wanted)}; statuses seen {dict(seen)}")
            if len(seen) < 2:
                out.append(f"{label}: a single distinct status ({dict(seen)})")
        return out


def _documented_statuses() -> dict[str, set[int]]:
    return {f"{op.method} {op.path}": {ex.status for ex in op.examples.values()} for op in SPEC.operations.values()}


# -- how a run reaches its app -------------------------------------------------------------------------


@dataclass
class _Sink:
    """Where every response goes: the coverage gate, and whether the mock may have left its seed.

    Nothing here arms scenarios or faults, so the only answer that changes the mock's state is a
    successful DELETE: between stateless cases a reset is needed only after one, and each case still
    starts from the contract seed without paying a reset (four control calls) every time.
    """

    observations: Observations
    reset: Callable[[], None]
    dirty: bool = True  # unknown until the first reset
    answers: Counter[tuple[str, int, str | None]] = field(default_factory=Counter)  # (pod, status, example)

    def record(self, method: str, path: str, status: int, example: str | None) -> None:
        self.observations.record(_pod_of(path), method, path, status, example)
        self.answers[(_pod_of(path), status, example)] += 1
        if method.upper() == "DELETE" and 200 <= status < 300:
            self.dirty = True

    def fresh(self, *, always: bool = False) -> None:
        """Back to the contract seed when anything may have changed since the last reset (or always)."""
        if self.dirty or always:
            self.reset()
            self.dirty = False


def _pod_of(path: str, default: str = "in") -> str:
    first = path.lstrip("/").split("/", 1)[0]
    return first if first in PODS else default


class _RecordingApp:
    """WSGI middleware: every response of an in-process mock goes to its sink.

    At the WSGI boundary it also sees the requests the checks send themselves (ignored_auth's
    probes, ours), which never pass through `Case.call` or its hooks.
    """

    def __init__(self, app: Any, sink: _Sink) -> None:
        self.app = app
        self.sink = sink

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")

        def recording_start_response(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            example = next((v for k, v in headers if k.lower() == "x-mock-example"), None)
            self.sink.record(method, path, int(status.split()[0]), example)
            return start_response(status, headers, *exc_info)

        return self.app(environ, recording_start_response)


@dataclass
class _Driver:
    """Base URL, api-key and recording for one pod of one app."""

    base_url: str
    api_key: str
    sink: _Sink
    over_http: bool

    def kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        """Transport arguments for `case.call`; the checks re-send their probes with them."""
        headers = {"api-key": self.api_key}
        if case.media_type is None and not any(k.lower() == "content-type" for k in case.headers or {}):
            # Mandatory on every Kaleyra call; a case with a body, or a coverage probe of a wrong
            # media type, keeps the type schemathesis chose (a negative case that drops api-key
            # still goes without it: schemathesis removes excluded headers after merging these).
            headers["Content-Type"] = "application/json"
        kwargs: dict[str, Any] = {"base_url": self.base_url, "headers": headers}
        if self.over_http:
            # `requests` response hooks reach every request made with these arguments, probes included.
            kwargs["hooks"] = {"response": [self._record_http]}
        return kwargs

    def _record_http(self, response: Any, *_args: Any, **_kwargs: Any) -> None:
        path = urlsplit(response.request.url).path
        self.sink.record(response.request.method, path, response.status_code, response.headers.get("X-Mock-Example"))


def _schema(app: Any = None) -> Any:
    """openapi.yaml with schemathesis.toml; with `app`, requests go in-process (WSGI transport)."""
    schema = schemathesis.openapi.from_path(SPEC_FILE, config=schemathesis.Config.from_path(CONFIG_FILE))
    schema.app = app
    return schema


_BY_TARGET: dict[int, tuple[Target, _Sink, Any]] = {}


def _for_target(target: Target) -> tuple[_Sink, Any]:
    """The target's sink and, in-process, its app behind the recording middleware (None over HTTP)."""
    if id(target) not in _BY_TARGET:
        sink = _Sink(target.observations, target.reset)
        app = _RecordingApp(target.app, sink) if target.app is not None else None
        _BY_TARGET[id(target)] = (target, sink, app)
    _, sink, app = _BY_TARGET[id(target)]
    return sink, app


def _target_driver(target: Target, pod: str) -> _Driver:
    return _Driver(target.base_url(pod), target.api_key, _for_target(target)[0], over_http=target.app is None)


@pytest.fixture(params=PODS)
def pod(request: pytest.FixtureRequest, target: Target) -> str:
    if not target.is_mock:
        pytest.skip(LIVE_REASON)
    return str(request.param)


# -- deleted_agent_stays_deleted ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sent:
    """A testers or delete request as it went on the wire: link parameters apply only sometimes."""

    kind: str  # "delete" or "testers"
    pod_root: str  # scheme://host/pod
    sid: str  # percent-decoded
    agent: str  # percent-decoded
    api_key: str | None
    from_state: bool  # Content-Type JSON or absent and no Prefer: the answer comes from the mock's state
    raw_path: tuple[str, ...]  # the path segments after the pod, percent-encoded as sent

    @property
    def target(self) -> tuple[str, str, str, str | None]:
        return (self.pod_root, self.sid, self.agent, self.api_key)


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None


def _sent(request: Any) -> _Sent | None:
    url = urlsplit(request.url)
    raw = url.path.split("/")[1:]
    prefix = raw.pop(0) if raw and raw[0] in PODS else ""
    parts = [unquote(p) for p in raw]
    method = (request.method or "").upper()
    if len(parts) != 5 or parts[0] != "v1" or not parts[1] or parts[2] != "rcs":
        return None  # the SID-less /wsgw path keeps its state under the key's account, not a SID
    if method == "DELETE" and parts[3] == "agent" and parts[4] not in ("", "testersbyagent"):
        kind, agent = "delete", parts[4]
    elif method in ("GET", "POST") and parts[3] in ("agent", "agenttester") and parts[4] == "testersbyagent":
        kind, agent = "testers", _testers_agent(url.query, request.body if method == "POST" else None)
    else:
        return None
    if not agent:
        return None
    content_type = _header(request.headers, "content-type")
    json_or_none = content_type is None or content_type.split(";")[0].strip().lower() == "application/json"
    from_state = json_or_none and _header(request.headers, "prefer") is None
    key = _header(request.headers, "api-key")
    return _Sent(kind, f"{url.scheme}://{url.netloc}/{prefix}", parts[1], agent, key, from_state, tuple(raw))


def _testers_agent(query: str, body: Any) -> str | None:
    """The agent a testers call asks for, when it names exactly one, without a conflicting body."""
    values = parse_qs(query, keep_blank_values=True).get("agent_number", [])
    from_body = None
    if body:
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("agent_number", ""), str):
            return None
        from_body = doc.get("agent_number") or None
    if len(values) > 1 or (values and from_body not in (None, values[0])):
        return None
    return values[0] if values else from_body


def _not_agent_not_found(response: Any) -> str | None:
    """None for the documented agent_not_found (400 RCS904 PROV_ERROR), else what came instead."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    if not error and isinstance(body.get("error"), dict):
        error = body["error"]  # --error-layout error
    code, constant = body.get("code"), error.get("error_code")
    example = _header(response.headers, "x-mock-example")  # the mock names its answer; a server may not
    if (response.status_code, code, constant) == (400, "RCS904", "PROV_ERROR") and example in (None, "agent_not_found"):
        return None
    return f"{response.status_code} code={code!r} error_code={constant!r} X-Mock-Example={example!r}"


@schemathesis.check
def deleted_agent_stays_deleted(ctx: schemathesis.CheckContext, response: Any, case: schemathesis.Case) -> None:
    """After a successful delete, the agent's testers and a second delete answer agent_not_found.

    Same pod, SID, agent number and api-key, all read from the requests as they were sent:
    - any later testers or delete request of the same scenario (the stateful link among them) is
      judged as it is;
    - every successful delete is followed at once by a GET testers and a DELETE of the same agent.
    """
    sent = _sent(response.request)
    if sent is None or not sent.from_state:
        return
    pod = sent.pod_root.rsplit("/", 1)[-1] or "?"
    problems = []
    for earlier in ctx.internals.find_all_cases():  # the scenario so far (stateful runs only)
        if earlier.id == case.id:
            break
        answer = ctx.internals.find_response(case_id=earlier.id)
        deleted = _sent(answer.request) if answer is not None and 200 <= answer.status_code < 300 else None
        if deleted is not None and deleted.kind == "delete" and deleted.target == sent.target:
            STATS.applied[(f"follow-up {sent.kind}", pod)] += 1
            wrong = _not_agent_not_found(response)
            if wrong is not None:
                problems.append(
                    f"{response.request.method} {response.request.url} after the successful "
                    f"DELETE {answer.request.url} answered {wrong}"
                )
            break
    if sent.kind == "delete" and 200 <= response.status_code < 300:
        STATS.applied[("probe", pod)] += 1
        schema = case.operation.schema
        headers = {"api-key": sent.api_key or "", "Content-Type": "application/json"}
        # Path parameters as the delete sent them, percent-encoded (schemathesis quotes only what it
        # generates); the query value is encoded by the transport.
        sid, agent = sent.raw_path[1], sent.raw_path[4]
        probes = {
            "GET testers": schema["/v1/{sid}/rcs/agent/testersbyagent"]["GET"].Case(
                path_parameters={"sid": sid}, query={"agent_number": sent.agent}, headers=headers
            ),
            "DELETE again": schema["/v1/{sid}/rcs/agent/{agent_number}"]["DELETE"].Case(
                path_parameters={"sid": sid, "agent_number": agent}, headers=headers
            ),
        }
        for what, probe in probes.items():
            answer = _probe_case(ctx, case, probe)
            probed = _sent(answer.request)
            assert probed is not None and probed.target == sent.target, f"{what} missed the agent: {answer.request.url}"
            wrong = _not_agent_not_found(answer)
            if wrong is not None:
                problems.append(f"{what} {answer.request.url} after the successful delete answered {wrong}")
    if problems:
        raise AssertionError("A deleted agent came back (expected 400 agent_not_found):\n" + "\n".join(problems))


def _probe_case(ctx: schemathesis.CheckContext, case: schemathesis.Case, probe: schemathesis.Case) -> Any:
    """Send `probe` with the transport arguments of `case` (app, base URL, api-key, hooks), recorded."""
    kwargs = dict(ctx.internals.transport_kwargs or {})
    kwargs.pop("session", None)
    if case.operation.app is not None:
        kwargs.setdefault("app", case.operation.app)
    ctx.internals.record_case(parent_id=case.id, case=probe)
    response = case.operation.schema.transport.send(probe, **kwargs)
    ctx.internals.record_response(case_id=probe.id, response=response)
    return response


# -- stateless ---------------------------------------------------------------------------------------------

SCHEMA = _schema()  # collected at import, before the target is known; `_bind` gives each case its app
HISTOGRAMS: dict[str, _Histogram] = defaultdict(_Histogram)


@pytest.fixture(scope="module")
def target_app(target: Target) -> Any:
    """The in-process mock behind the recording middleware; None over HTTP (base_url per call)."""
    if not target.is_mock:
        pytest.skip(LIVE_REASON)
    return _for_target(target)[1]


def _bind(case: schemathesis.Case, app: Any) -> None:
    """In-process, the operation's app routes `case.call` to the WSGI transport, the schema's app
    the checks' probes (ignored_auth's, ours); over HTTP both stay None."""
    case.operation.schema.app = app
    case.operation.app = app


@pytest.mark.parametrize("pod", PODS)
@SCHEMA.parametrize()
def test_stateless(case: schemathesis.Case, target: Target, target_app: Any, pod: str) -> None:
    """Every operation, every phase, positive and negative data, every check schemathesis.toml enables."""
    started = time.perf_counter()
    _bind(case, target_app)
    driver = _target_driver(target, pod)
    driver.sink.fresh()  # each case starts from the contract seed: replays and shrinking see the same mock
    assert case.meta is not None
    STATS.cases[("stateless", pod, case.meta.phase.name.value)] += 1
    kwargs = driver.kwargs(case)
    try:
        response = case.call(**kwargs)
        HISTOGRAMS[pod].add(case.operation.label, response.status_code)
        # headers= marks the api-key as explicit auth, so ignored_auth probes without it and with a wrong one
        case.validate_response(response, headers=kwargs["headers"], transport_kwargs=kwargs)
    finally:
        STATS.timed("stateless", started)


# What the stateless run must have provoked on each pod: evidence that the negative checks had
# something to judge, so that none of them passed because it never ran.
PROVOKED = {
    (401, "invalid_api_key"): "ignored_auth's wrong-key probe",
    (401, "missing_api_key"): "ignored_auth's no-key probe and missing_required_header",
    (405, "method_not_allowed"): "unsupported_method",
    (415, "unsupported_media_type"): "the coverage phase's Content-Type probes",
    (400, "missing_agent_number"): "negative_data_rejection (agent_number missing or empty)",
    (400, "agent_not_found"): "positive_data_acceptance (400 allowed) and deleted_agent_stays_deleted",
    (200, "agent_deleted"): "deleted_agent_stays_deleted's probes",
    (200, "testers"): "response_schema_conformance on a tester list",
}


@pytest.mark.parametrize("pod", PODS)
def test_stateless__every_operation_answered_2xx_and_more_than_one_status(target: Target, pod: str) -> None:
    """The guard: 401 is an allowed status for every check, so a run that only ever met 401 would pass."""
    if not target.is_mock:
        pytest.skip(LIVE_REASON)
    problems = HISTOGRAMS[pod].problems()
    answers = _for_target(target)[0].answers
    problems += [
        f"never answered {status} {name}, which {why} needs"
        for (status, name), why in PROVOKED.items()
        if not answers[(pod, status, name)]
    ]
    assert not problems, f"the stateless run on pod {pod} proves nothing for:\n" + "\n".join(problems)


def test_stateless_guard__fails_a_run_that_only_met_401() -> None:
    histogram = _Histogram()
    for label in _documented_statuses():
        histogram.add(label, 401)
        histogram.add(label, 401)
    assert len(histogram.problems()) == 2 * len(_documented_statuses())


def test_schemathesis_toml__keeps_the_kaleyra_checks_on() -> None:
    """The committed settings: no check or phase the contract relies on is switched off."""
    config = SCHEMA.config
    checks = config.checks_config_for()
    for name in (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "positive_data_acceptance",
        "negative_data_rejection",
        "missing_required_header",
        "ignored_auth",
        "unsupported_method",
        "allow_header_conformance",
        "deleted_agent_stays_deleted",
    ):
        assert checks.get_by_name(name=name).enabled, name
    assert not checks.use_after_free.enabled  # replaced by deleted_agent_stays_deleted
    assert "400" in checks.positive_data_acceptance.expected_statuses
    assert not {"401", "404"} & set(checks.positive_data_acceptance.expected_statuses)
    assert checks.not_a_server_error.expected_statuses == ["2xx", "3xx", "4xx"]
    assert checks.missing_required_header.expected_statuses == ["401"]
    phases = config.phases_for(operation=None)
    assert all(p.enabled for p in (phases.examples, phases.coverage, phases.fuzzing, phases.stateful))
    assert phases.stateful.max_steps >= 2  # a delete and its follow-up
    generation = config.generation_for()
    assert generation.deterministic and generation.database == "none"
    assert {mode.value for mode in generation.modes} == {"positive", "negative"}
    assert config.has_explicit_seed
    assert not config.analysis.constants.enabled  # generation must not depend on which modules are imported


# -- stateful ----------------------------------------------------------------------------------------------


def _workflow(schema: Any, driver: _Driver, pod: str | None) -> Any:
    """The schema's state machine, reset per scenario; `pod` counts cases (None: not the target)."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            driver.sink.fresh(always=True)  # every Hypothesis example starts from the contract seed
            if pod is not None:
                STATS.cases[("stateful", pod, "scenarios")] += 1

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return driver.kwargs(case)

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            if pod is not None:
                STATS.cases[("stateful", pod, "steps")] += 1

        def validate_response(
            self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            # headers= marks the api-key as explicit auth for ignored_auth (the WSGI transport does not)
            case.validate_response(
                response,
                additional_checks=additional_checks,
                headers=kwargs.get("headers"),
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    return Workflow


def _stateful_settings(scenarios: int) -> hypothesis.settings:
    return hypothesis.settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=scenarios,
        stateful_step_count=SCHEMA.config.phases_for(operation=None).stateful.max_steps,
        suppress_health_check=list(hypothesis.HealthCheck),  # one mock call per step is slow on purpose
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )


def test_stateful(target: Target, pod: str) -> None:
    """deleteAgent -> getTestersByAgent through the TestersOfDeletedAgent link."""
    before = Counter(STATS.applied)
    started = time.perf_counter()
    try:
        _workflow(_schema(_for_target(target)[1]), _target_driver(target, pod), pod).run(
            settings=_stateful_settings(STATEFUL_SCENARIOS)
        )
    finally:
        STATS.timed("stateful", started)
    applied = STATS.applied - before
    assert applied[("probe", pod)], "no successful delete in the stateful run"
    assert applied[("follow-up testers", pod)], (
        "no GET testers followed a successful delete of the same agent: the link was never exercised"
    )


# -- the custom check can fail -----------------------------------------------------------------------------


class _ForgetfulStore(MemoryStore):
    """A broken mock: a delete says "deleted" and removes nothing."""

    def delete_agent(self, pod: str, sid: str, agent: str, account: AccountInfo | None = None) -> bool:
        return self.testers(pod, sid, agent) is not None


def _broken() -> tuple[Any, _Driver]:
    """The broken mock in-process; its answers go to a throwaway sink, not the coverage gate."""
    store = _ForgetfulStore(StateData.from_document(contract_seed(), state_validator(SPEC)))
    sink = _Sink(Observations(), store.reset)
    driver = _Driver(f"{INPROCESS_ROOT}/in", CONTRACT_API_KEY, sink, over_http=False)
    return _schema(_RecordingApp(create_app(store), sink)), driver


def _delete_48400(schema: Any, driver: _Driver) -> tuple[schemathesis.Case, Any, dict[str, Any]]:
    driver.sink.fresh()
    case = schema["/v1/{sid}/rcs/agent/{agent_number}"]["DELETE"].Case(
        path_parameters={"sid": CONTRACT_SID, "agent_number": "48400"}
    )
    kwargs = driver.kwargs(case)
    response = case.call(**kwargs)
    assert response.status_code == 200, response.text
    return case, response, kwargs


def test_deleted_agent_stays_deleted__passes_on_the_mock(target: Target, pod: str) -> None:
    """The control: on the target, both probes after a delete answer agent_not_found."""
    case, response, kwargs = _delete_48400(_schema(_for_target(target)[1]), _target_driver(target, pod))
    case.validate_response(
        response, checks=[deleted_agent_stays_deleted], headers=kwargs["headers"], transport_kwargs=kwargs
    )


def test_deleted_agent_stays_deleted__probes_fail_on_a_mock_that_forgets_deletes(target: Target) -> None:
    if not target.is_mock:
        pytest.skip(LIVE_REASON)
    case, response, kwargs = _delete_48400(*_broken())
    with pytest.raises(BaseExceptionGroup) as raised:
        case.validate_response(
            response, checks=[deleted_agent_stays_deleted], headers=kwargs["headers"], transport_kwargs=kwargs
        )
    message = str(raised.value)
    assert "A deleted agent came back" in message
    assert "GET testers" in message and "DELETE again" in message


def test_deleted_agent_stays_deleted__judges_a_later_request_of_the_scenario(target: Target) -> None:
    """A GET testers recorded after the delete, as the stateful link sends it, is judged as sent."""
    if not target.is_mock:
        pytest.skip(LIVE_REASON)
    schema, driver = _broken()
    recorder = ScenarioRecorder(label="deleted_agent_stays_deleted")
    delete, deleted, _ = _delete_48400(schema, driver)
    recorder.record_case(case=delete)
    recorder.record_response(case_id=delete.id, response=deleted)
    testers = schema["/v1/{sid}/rcs/agent/testersbyagent"]["GET"].Case(
        path_parameters={"sid": CONTRACT_SID}, query={"agent_number": "48400"}
    )
    kwargs = driver.kwargs(testers)
    answer = testers.call(**kwargs)
    assert answer.status_code == 200  # the broken mock still lists the deleted agent's testers
    recorder.record_case(case=testers, parent_id=delete.id)
    recorder.record_response(case_id=testers.id, response=answer)
    with pytest.raises(BaseExceptionGroup) as raised:
        testers.validate_response(
            answer, checks=[deleted_agent_stays_deleted], headers=kwargs["headers"], recorder=recorder
        )
    assert "after the successful DELETE" in str(raised.value)


def test_deleted_agent_stays_deleted__fails_a_stateful_run_on_a_mock_that_forgets_deletes(target: Target) -> None:
    """End to end: the derandomized state machine finds the broken mock through the custom check."""
    if not target.is_mock:
        pytest.skip(LIVE_REASON)
    schema, driver = _broken()
    with pytest.raises(BaseExceptionGroup) as raised:
        _workflow(schema, driver, None).run(settings=_stateful_settings(BROKEN_SCENARIOS))
    assert "A deleted agent came back" in str(raised.value)
