"""The facade (KaleyraRCS, AsyncKaleyraRCS) end to end against the mock, through the plugin's fixtures.

`kaleyra_mock` is the in-process mock (a fresh store per test), `kaleyra_mock_server` the real
server (granian, loopback, once per session). Expected bodies come from the spec's named
examples, walked out of the top-level openapi.yaml by tests/_spec.py, never from the mock's own index.
Every test is bounded by an alarm, and every call the facade makes has a finite timeout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from kaleyra_rcs import (
    DEFAULT_TIMEOUT,
    AgentNotFound,
    AsyncKaleyraRCS,
    AuthenticationError,
    ContractViolation,
    DeleteAgentResult,
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
from kaleyra_rcs import (
    Tester as RcsTester,
)
from tests._spec import Example, Spec

SECRET = "sk-live-SECRET-123"
SID = "E2E-SID"
PODS = ("in", "na")
TEST_BUDGET_S = 15  # no test here may run longer; the facade must never hang
pytestmark = pytest.mark.time_budget(TEST_BUDGET_S)
SECRET_LOGGERS = ("kaleyra_rcs", "httpx", "httpcore")

# -- the spec, walked by tests/_spec.py ---------------------------------------------------------

SPEC = Spec.load()
# The operations the facade calls: those of the spec that are no variant of another.
FACADE_OPERATIONS = list(SPEC.facade_operations)
EXAMPLES = {op: SPEC.examples(op) for op in FACADE_OPERATIONS}
SUCCESS = {op: next(e.name for e in examples.values() if e.status < 300) for op, examples in EXAMPLES.items()}
# The spec's example agent number of each operation (both are in the mock's default seed).
DEFAULT_AGENT = {op: SPEC.operation(op).parameter_example("agent_number") for op in FACADE_OPERATIONS}
# {example name: its magic agent number} (`x-mock-magic-agent`), any SID, both pods.
MAGIC = {name: agent for agent, name in SPEC.magic_agents(FACADE_OPERATIONS).items()}

ERROR_CLASS: dict[str, type[KaleyraError]] = {
    "missing_agent_number": MissingRequiredParams,
    "agent_not_found": AgentNotFound,
    "rcs_not_enabled": RcsChannelDisabled,
    "gateway_error": GatewayError,
    "internal_server_error": InternalServerError,
    "invalid_api_key": AuthenticationError,
    "missing_api_key": AuthenticationError,
    "rate_limited": RateLimited,
}


def error_class(example: Example) -> type[KaleyraApiError]:
    """The typed class of a named example; one with no class of its own (415, 405, 404, bad_request,
    anything newly documented) is generic: ServerError for a 5xx, else KaleyraApiError."""
    return ERROR_CLASS.get(example.name, ServerError if example.status >= 500 else KaleyraApiError)


# How each scenario can be reached through the facade besides being armed (every named example
# can be): from the state (`arrange` knows how), or by its magic agent number, if the spec gives
# it one. The facade always sends a non-empty api-key and Content-Type: application/json, so
# missing_api_key and unsupported_media_type can only be armed; 5xx and 429 never come from state.
FROM_STATE = ("missing_agent_number", "agent_not_found", "rcs_not_enabled", "invalid_api_key")


def other_triggers(example: Example) -> tuple[str, ...]:
    return ("state",) * (example.name in FROM_STATE) + ("magic",) * (example.magic_agent is not None)


@dataclass(frozen=True)
class Case:
    operation: str
    scenario: str
    trigger: str

    @property
    def example(self) -> Example:
        return EXAMPLES[self.operation][SUCCESS[self.operation] if self.scenario == "success" else self.scenario]

    def __str__(self) -> str:
        return f"{self.operation}-{self.scenario}-{self.trigger}"


CASES = [Case(op, "success", "state") for op in EXAMPLES] + [
    Case(op, name, trigger)
    for op, examples in EXAMPLES.items()
    for name, example in examples.items()
    if name != SUCCESS[op]
    for trigger in ("armed", *other_triggers(example))
]
MATRIX = [(case, pod) for case in CASES for pod in PODS]  # x sync/async: two test functions
MATRIX_SIZE = 2 * len(MATRIX)


# -- fixtures and helpers --------------------------------------------------------------------


def sync_client(mock: Any, pod: str = "in", **kwargs: Any) -> KaleyraRCS:
    kwargs.setdefault("api_key", SECRET)
    kwargs.setdefault("sid", SID)
    return KaleyraRCS(base_url=mock.base_url(pod), transport=mock.wsgi_transport(), **kwargs)


def async_client(mock: Any, pod: str = "in", **kwargs: Any) -> AsyncKaleyraRCS:
    kwargs.setdefault("api_key", SECRET)
    kwargs.setdefault("sid", SID)
    return AsyncKaleyraRCS(base_url=mock.base_url(pod), transport=mock.asgi_transport(), **kwargs)


class SyncSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class AsyncSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def both_agents() -> dict[str, Any]:
    """The default seed's agents: the GET's sample agent with the testers sample, the DELETE's with none."""
    return {
        DEFAULT_AGENT["getTestersByAgent"]: EXAMPLES["getTestersByAgent"]["testers"].value,
        DEFAULT_AGENT["deleteAgent"]: [],
    }


def arrange(mock: Any, case: Case, pod: str) -> str:
    """Set the mock up so that `case` is what the next call meets; returns the agent number to call with."""
    agent = DEFAULT_AGENT[case.operation]
    if case.trigger == "armed":
        mock.arm_scenario(case.scenario, times=1, pod=pod, sid=SID, operation=case.operation)
    elif case.trigger == "magic":
        agent = str(case.example.magic_agent)
    elif case.scenario == "missing_agent_number":
        agent = ""
    elif case.scenario == "agent_not_found":
        agent = "12345"
    elif case.scenario == "rcs_not_enabled":
        mock.control.put_account(pod, SID, {"rcs_enabled": False, "agents": both_agents()})
    elif case.scenario == "invalid_api_key":
        mock.control.put_account(pod, SID, {"api_keys": ["a-different-key"], "agents": both_agents()})
    return agent


def call_sync(client: KaleyraRCS, operation: str, agent: str) -> Any:
    if operation == "getTestersByAgent":
        return client.get_testers_by_agent(agent)
    return client.delete_agent(agent)


async def call_async(client: AsyncKaleyraRCS, operation: str, agent: str) -> Any:
    if operation == "getTestersByAgent":
        return await client.get_testers_by_agent(agent)
    return await client.delete_agent(agent)


def assert_typed_error(error: KaleyraError, example: Example) -> None:
    expected = error_class(example)
    assert type(error) is expected, f"{example.name}: {type(error).__name__}, expected {expected.__name__}"
    value = example.value
    assert error.status == example.status
    assert error.code == value["code"]
    assert error.message == value["message"]
    assert error.error_code == value["data"]["error"]["error_code"]
    assert error.error_message == value["data"]["error"]["error_message"]
    assert error.body == value
    assert value["code"] in str(error) and value["data"]["error"]["error_code"] in str(error)
    if isinstance(error, RateLimited):
        assert error.retry_after == float(example.headers["Retry-After"])
    if isinstance(error, AgentNotFound):
        assert error.detail == json.loads(value["data"]["error"]["error_message"])


def check_outcome(mock: Any, case: Case, pod: str, result: Any, error: KaleyraError | None, before: Any) -> None:
    example = case.example
    if case.scenario == "success":
        assert error is None, f"{case}: raised {error!r}"
        if case.operation == "getTestersByAgent":
            assert all(isinstance(t, RcsTester) for t in result)
            assert [t.to_dict() for t in result] == example.value
        else:
            assert isinstance(result, DeleteAgentResult)
            assert result.to_dict() == example.value
            assert mock.state()["deleted_default_agents"] == [{"pod": pod, "sid": SID, "agent_number": "48400"}]
    else:
        assert error is not None, f"{case}: returned {result!r}"
        assert_typed_error(error, example)
    entry = mock.journal(limit="1")[0]
    source = {"armed": "armed", "magic": "magic"}.get(
        case.trigger, "auth" if case.scenario == "invalid_api_key" else "state"
    )
    assert (entry["pod"], entry["status"], entry["example"], entry["source"]) == (
        pod,
        example.status,
        example.name,
        source,
    )
    assert entry["api_key"] != SECRET and SECRET not in json.dumps(entry)
    if case.trigger != "state":  # a forced answer touches no state
        assert mock.state() == before


# -- 1. the matrix ---------------------------------------------------------------------------


def test_matrix_size() -> None:
    assert FACADE_OPERATIONS == ["getTestersByAgent", "deleteAgent"]
    assert DEFAULT_AGENT == {"getTestersByAgent": "48900", "deleteAgent": "48400"}  # the documents' samples
    # every example of both operations is in the matrix, each armed at least; the other
    # triggers name only examples the spec has (bad_request only armed: the facade cannot send
    # a request the mock would refuse as unreadable)
    for op, examples in EXAMPLES.items():
        covered = {c.example.name for c in CASES if c.operation == op}
        assert covered == set(examples)
    assert set(FROM_STATE) | set(MAGIC) <= {name for examples in EXAMPLES.values() for name in examples}
    assert set(ERROR_CLASS) <= {name for examples in EXAMPLES.values() for name in examples}


@pytest.mark.parametrize(("case", "pod"), MATRIX, ids=[f"{c}-{p}" for c, p in MATRIX])
def test_matrix_sync(kaleyra_mock: Any, case: Case, pod: str) -> None:
    agent = arrange(kaleyra_mock, case, pod)
    before = kaleyra_mock.state()
    result, error = None, None
    with sync_client(kaleyra_mock, pod) as client:
        try:
            result = call_sync(client, case.operation, agent)
        except KaleyraError as exc:
            error = exc
    check_outcome(kaleyra_mock, case, pod, result, error, before)


@pytest.mark.anyio
@pytest.mark.parametrize(("case", "pod"), MATRIX, ids=[f"{c}-{p}" for c, p in MATRIX])
async def test_matrix_async(kaleyra_mock: Any, case: Case, pod: str) -> None:
    agent = arrange(kaleyra_mock, case, pod)
    before = kaleyra_mock.state()
    result, error = None, None
    async with async_client(kaleyra_mock, pod) as client:
        try:
            result = await call_async(client, case.operation, agent)
        except KaleyraError as exc:
            error = exc
    check_outcome(kaleyra_mock, case, pod, result, error, before)


def test_plugin_clients_are_wired_to_the_mock(kaleyra_mock: Any, kaleyra_client: KaleyraRCS) -> None:
    assert [t.to_dict() for t in kaleyra_client.get_testers_by_agent("48900")] == EXAMPLES["getTestersByAgent"][
        "testers"
    ].value
    kaleyra_mock.arm_scenario("gateway_error", times=1)
    with pytest.raises(GatewayError):
        kaleyra_client.delete_agent("48400")
    assert kaleyra_client.delete_agent("48400").code == "RCS902"
    assert [e["status"] for e in kaleyra_mock.journal()] == [200, 500, 200]


@pytest.mark.anyio
async def test_plugin_async_client_is_wired_to_the_mock(
    kaleyra_mock: Any, kaleyra_async_client: AsyncKaleyraRCS
) -> None:
    assert len(await kaleyra_async_client.get_testers_by_agent("48900")) == 1
    assert (await kaleyra_async_client.delete_agent("48400")).code == "RCS902"
    with pytest.raises(AgentNotFound):
        await kaleyra_async_client.delete_agent("48400")
    assert [e["pod"] for e in kaleyra_mock.journal()] == ["in", "in", "in"]


# -- 2. state ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pod", PODS)
def test_delete_twice_sync(kaleyra_mock: Any, pod: str) -> None:
    with sync_client(kaleyra_mock, pod) as client:
        assert client.delete_agent("48400").code == "RCS902"
        with pytest.raises(AgentNotFound) as info:
            client.delete_agent("48400")
        assert info.value.detail == {"status": "FAILED", "message": "Agent not found"}
        with pytest.raises(AgentNotFound):  # its testers are gone with it
            client.get_testers_by_agent("48400")


@pytest.mark.anyio
@pytest.mark.parametrize("pod", PODS)
async def test_delete_twice_async(kaleyra_mock: Any, pod: str) -> None:
    async with async_client(kaleyra_mock, pod) as client:
        assert (await client.delete_agent("48400")).code == "RCS902"
        with pytest.raises(AgentNotFound):
            await client.delete_agent("48400")


def test_pods_are_isolated_sync(kaleyra_mock: Any) -> None:
    with sync_client(kaleyra_mock, "na") as na, sync_client(kaleyra_mock, "in") as in_:
        assert na.delete_agent("48900").code == "RCS902"
        with pytest.raises(AgentNotFound):
            na.get_testers_by_agent("48900")
        assert [t.to_dict() for t in in_.get_testers_by_agent("48900")] == EXAMPLES["getTestersByAgent"][
            "testers"
        ].value
        assert in_.delete_agent("48900").code == "RCS902"
        with pytest.raises(AgentNotFound):
            in_.delete_agent("48900")
    deleted = kaleyra_mock.state()["deleted_default_agents"]
    assert sorted(d["pod"] for d in deleted) == ["in", "na"]
    assert [(e["method"], e["pod"]) for e in reversed(kaleyra_mock.journal())] == [
        ("DELETE", "na"),
        ("GET", "na"),
        ("GET", "in"),
        ("DELETE", "in"),
        ("DELETE", "in"),
    ]


@pytest.mark.anyio
async def test_pods_are_isolated_async(kaleyra_mock: Any) -> None:
    async with async_client(kaleyra_mock, "in") as in_, async_client(kaleyra_mock, "na") as na:
        assert (await in_.delete_agent("48400")).code == "RCS902"
        assert await na.get_testers_by_agent("48400") == []
        assert (await na.delete_agent("48400")).code == "RCS902"
        with pytest.raises(AgentNotFound):
            await in_.get_testers_by_agent("48400")


def test_sids_are_isolated(kaleyra_mock: Any) -> None:
    with sync_client(kaleyra_mock, "in", sid="A") as a, sync_client(kaleyra_mock, "in", sid="B") as b:
        a.delete_agent("48400")
        assert b.get_testers_by_agent("48400") == []


# -- 3. retries ---------------------------------------------------------------------------------

RETRIED = [
    ("gateway_error", GatewayError, [0.5, 1.0]),
    ("internal_server_error", InternalServerError, [0.5, 1.0]),
    ("rate_limited", RateLimited, [1.0, 1.0]),  # Retry-After: 1 from the spec's example
]


def get_statuses(mock: Any) -> list[int]:
    return [e["status"] for e in reversed(mock.journal()) if e["method"] == "GET"]


@pytest.mark.parametrize(("scenario", "error_class", "waits"), RETRIED)
@pytest.mark.parametrize("pod", PODS)
def test_get_retried_until_success_sync(
    kaleyra_mock: Any, pod: str, scenario: str, error_class: type[KaleyraError], waits: list[float]
) -> None:
    kaleyra_mock.arm_scenario(scenario, times=2, pod=pod, operation="getTestersByAgent")
    sleep = SyncSleep()
    with sync_client(kaleyra_mock, pod, retries=2, sleep=sleep) as client:
        assert len(client.get_testers_by_agent("48900")) == 1
    assert sleep.calls == waits
    status = EXAMPLES["getTestersByAgent"][scenario].status
    assert get_statuses(kaleyra_mock) == [status, status, 200]


@pytest.mark.anyio
@pytest.mark.parametrize(("scenario", "error_class", "waits"), RETRIED)
@pytest.mark.parametrize("pod", PODS)
async def test_get_retried_until_success_async(
    kaleyra_mock: Any, pod: str, scenario: str, error_class: type[KaleyraError], waits: list[float]
) -> None:
    kaleyra_mock.arm_scenario(scenario, times=2, pod=pod, operation="getTestersByAgent")
    sleep = AsyncSleep()
    async with async_client(kaleyra_mock, pod, retries=2, sleep=sleep) as client:
        assert len(await client.get_testers_by_agent("48900")) == 1
    assert sleep.calls == waits
    status = EXAMPLES["getTestersByAgent"][scenario].status
    assert get_statuses(kaleyra_mock) == [status, status, 200]


@pytest.mark.parametrize(("scenario", "error_class", "waits"), RETRIED)
def test_get_retries_are_bounded(
    kaleyra_mock: Any, scenario: str, error_class: type[KaleyraError], waits: list[float]
) -> None:
    kaleyra_mock.arm_scenario(scenario, times=None)  # until disarmed
    sleep = SyncSleep()
    with sync_client(kaleyra_mock, retries=2, sleep=sleep) as client, pytest.raises(error_class):
        client.get_testers_by_agent("48900")
    assert sleep.calls == waits
    assert len(get_statuses(kaleyra_mock)) == 3


@pytest.mark.parametrize(("scenario", "error_class", "waits"), RETRIED)
def test_no_retry_without_retries(
    kaleyra_mock: Any, scenario: str, error_class: type[KaleyraError], waits: list[float]
) -> None:
    kaleyra_mock.arm_scenario(scenario, times=1)
    sleep = SyncSleep()
    with sync_client(kaleyra_mock, sleep=sleep) as client:
        assert client.retries == 0
        with pytest.raises(error_class):
            client.get_testers_by_agent("48900")
        assert sleep.calls == []
        assert len(get_statuses(kaleyra_mock)) == 1
        assert len(client.get_testers_by_agent("48900")) == 1  # the armed scenario is used up


@pytest.mark.anyio
async def test_no_retry_without_retries_async(kaleyra_mock: Any) -> None:
    kaleyra_mock.arm_scenario("gateway_error", times=1)
    sleep = AsyncSleep()
    async with async_client(kaleyra_mock, sleep=sleep) as client:
        with pytest.raises(GatewayError):
            await client.get_testers_by_agent("48900")
    assert sleep.calls == []
    assert len(get_statuses(kaleyra_mock)) == 1


def test_documented_4xx_are_never_retried(kaleyra_mock: Any) -> None:
    sleep = SyncSleep()
    with sync_client(kaleyra_mock, retries=3, sleep=sleep) as client:
        for agent, error_class in (
            (MAGIC["agent_not_found"], AgentNotFound),
            (MAGIC["rcs_not_enabled"], RcsChannelDisabled),
            (MAGIC["invalid_api_key"], AuthenticationError),
        ):
            with pytest.raises(error_class):
                client.get_testers_by_agent(agent)
    assert sleep.calls == []
    assert len(get_statuses(kaleyra_mock)) == 3


@pytest.mark.parametrize("scenario", ["gateway_error", "internal_server_error", "rate_limited"])
def test_delete_is_never_retried_sync(kaleyra_mock: Any, scenario: str) -> None:
    kaleyra_mock.arm_scenario(scenario, times=1, operation="deleteAgent")
    sleep = SyncSleep()
    with sync_client(kaleyra_mock, retries=2, sleep=sleep) as client:
        with pytest.raises(ERROR_CLASS[scenario]):
            client.delete_agent("48400")
        assert sleep.calls == []
        deletes = [e for e in kaleyra_mock.journal() if e["method"] == "DELETE"]
        assert len(deletes) == 1 and deletes[0]["source"] == "armed"
        assert kaleyra_mock.state()["deleted_default_agents"] == []
        assert client.delete_agent("48400").code == "RCS902"  # the agent was there all along


@pytest.mark.anyio
async def test_delete_is_never_retried_async(kaleyra_mock: Any) -> None:
    kaleyra_mock.arm_scenario("gateway_error", times=1, operation="deleteAgent")
    sleep = AsyncSleep()
    async with async_client(kaleyra_mock, retries=2, sleep=sleep) as client:
        with pytest.raises(GatewayError):
            await client.delete_agent("48400")
    assert sleep.calls == []
    assert [e["method"] for e in kaleyra_mock.journal()] == ["DELETE"]


TESTERS_BODY = EXAMPLES["getTestersByAgent"]["testers"].value


class FlakyNetwork:
    """An httpx handler: `failures` ConnectErrors, then the documented testers answer."""

    def __init__(self, failures: int, exc: type[httpx.TransportError] = httpx.ConnectError) -> None:
        self.failures = failures
        self.exc = exc
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) <= self.failures:
            raise self.exc("connection refused (simulated)", request=request)
        return httpx.Response(200, json=TESTERS_BODY)


def flaky_sync(network: FlakyNetwork, **kwargs: Any) -> KaleyraRCS:
    return KaleyraRCS(
        api_key=SECRET, sid=SID, base_url="http://flaky.invalid/in", transport=httpx.MockTransport(network), **kwargs
    )


def flaky_async(network: FlakyNetwork, **kwargs: Any) -> AsyncKaleyraRCS:
    return AsyncKaleyraRCS(
        api_key=SECRET, sid=SID, base_url="http://flaky.invalid/in", transport=httpx.MockTransport(network), **kwargs
    )


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout])
def test_connect_errors_retried_sync(exc: type[httpx.TransportError]) -> None:
    network, sleep = FlakyNetwork(2, exc), SyncSleep()
    with flaky_sync(network, retries=2, sleep=sleep) as client:
        assert [t.to_dict() for t in client.get_testers_by_agent("48900")] == TESTERS_BODY
    assert len(network.requests) == 3
    assert sleep.calls == [0.5, 1.0]
    assert all(r.headers["api-key"] == SECRET for r in network.requests)


@pytest.mark.anyio
async def test_connect_errors_retried_async() -> None:
    network, sleep = FlakyNetwork(2), AsyncSleep()
    async with flaky_async(network, retries=2, sleep=sleep) as client:
        assert len(await client.get_testers_by_agent("48900")) == 1
    assert len(network.requests) == 3
    assert sleep.calls == [0.5, 1.0]


def test_connect_errors_not_retried_without_retries() -> None:
    network, sleep = FlakyNetwork(1), SyncSleep()
    with flaky_sync(network, sleep=sleep) as client, pytest.raises(TransportError) as info:
        client.get_testers_by_agent("48900")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(network.requests) == 1 and sleep.calls == []


def test_connect_errors_retries_exhausted() -> None:
    network, sleep = FlakyNetwork(10), SyncSleep()
    with flaky_sync(network, retries=3, sleep=sleep) as client, pytest.raises(TransportError):
        client.get_testers_by_agent("48900")
    assert len(network.requests) == 4 and sleep.calls == [0.5, 1.0, 2.0]


def test_delete_not_retried_on_connect_error() -> None:
    network, sleep = FlakyNetwork(1), SyncSleep()
    with flaky_sync(network, retries=3, sleep=sleep) as client, pytest.raises(TransportError):
        client.delete_agent("48400")
    assert len(network.requests) == 1 and sleep.calls == []


@pytest.mark.anyio
async def test_delete_not_retried_on_connect_error_async() -> None:
    network, sleep = FlakyNetwork(1), AsyncSleep()
    async with flaky_async(network, retries=3, sleep=sleep) as client:
        with pytest.raises(TransportError):
            await client.delete_agent("48400")
    assert len(network.requests) == 1 and sleep.calls == []


def test_retry_after_beyond_max_backoff_is_not_waited_for(kaleyra_mock: Any) -> None:
    kaleyra_mock.arm_scenario("rate_limited", times=1)  # Retry-After: 1
    sleep = SyncSleep()
    with (
        sync_client(kaleyra_mock, retries=3, max_backoff=0.5, sleep=sleep) as client,
        pytest.raises(RateLimited) as info,
    ):
        client.get_testers_by_agent("48900")
    assert info.value.retry_after == 1.0
    assert sleep.calls == []  # never waited, so never slept past max_backoff
    assert len(get_statuses(kaleyra_mock)) == 1


@pytest.mark.anyio
async def test_retry_after_beyond_max_backoff_is_not_waited_for_async(kaleyra_mock: Any) -> None:
    kaleyra_mock.arm_scenario("rate_limited", times=1)
    sleep = AsyncSleep()
    async with async_client(kaleyra_mock, retries=3, max_backoff=0.5, sleep=sleep) as client:
        with pytest.raises(RateLimited):
            await client.get_testers_by_agent("48900")
    assert sleep.calls == []


def test_backoff_grows_and_is_capped(kaleyra_mock: Any) -> None:
    kaleyra_mock.arm_scenario("gateway_error", times=4)
    sleep = SyncSleep()
    with sync_client(kaleyra_mock, retries=4, backoff=0.1, max_backoff=0.3, sleep=sleep) as client:
        assert len(client.get_testers_by_agent("48900")) == 1
    assert sleep.calls == pytest.approx([0.1, 0.2, 0.3, 0.3])
    assert all(a <= b for a, b in zip(sleep.calls, sleep.calls[1:], strict=False))
    assert get_statuses(kaleyra_mock) == [500, 500, 500, 500, 200]


def test_rate_limited_without_retry_after_backs_off() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(429, json=EXAMPLES["getTestersByAgent"]["rate_limited"].value)
        return httpx.Response(200, json=TESTERS_BODY)

    sleep = SyncSleep()
    with KaleyraRCS(
        api_key=SECRET,
        sid=SID,
        base_url="http://x.invalid",
        transport=httpx.MockTransport(handler),
        retries=2,
        sleep=sleep,
    ) as client:
        assert len(client.get_testers_by_agent("48900")) == 1
    assert sleep.calls == [0.5, 1.0]


def test_negative_retries_refused() -> None:
    with pytest.raises(ValueError, match="retries"):
        KaleyraRCS(api_key=SECRET, sid=SID, retries=-1)


# -- 4. faults -----------------------------------------------------------------------------------


def arm_server_fault(server: Any, fault: str, sid: str, params: dict[str, Any] | None = None) -> None:
    doc = {"fault": fault, "times": 1, "params": params or {}, "match": {"sid": sid}}
    httpx.post(f"{server.url}/__mock/faults", json=doc, timeout=5).raise_for_status()


def server_journal(server: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/__mock/journal", timeout=5)
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()
    return entries


@pytest.mark.server
@pytest.mark.parametrize("pod", PODS)
def test_latency_past_timeout_sync(kaleyra_mock_server: Any, pod: str) -> None:
    kaleyra_mock_server.reset()
    arm_server_fault(kaleyra_mock_server, "latency", "SLOW", {"ms": 600})
    url = kaleyra_mock_server.in_url if pod == "in" else kaleyra_mock_server.na_url
    with KaleyraRCS(api_key=SECRET, sid="SLOW", base_url=url, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(TransportError) as info:
            client.get_testers_by_agent("48900")
        assert time.monotonic() - started < 2.0
        assert isinstance(info.value.__cause__, httpx.TimeoutException)
        assert len(client.get_testers_by_agent("48900")) == 1  # the fault was used up; the client still works


@pytest.mark.server
@pytest.mark.anyio
async def test_latency_past_timeout_async(kaleyra_mock_server: Any) -> None:
    kaleyra_mock_server.reset()
    arm_server_fault(kaleyra_mock_server, "latency", "SLOW", {"ms": 600})
    async with AsyncKaleyraRCS(api_key=SECRET, sid="SLOW", base_url=kaleyra_mock_server.na_url, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(TransportError) as info:
            await client.delete_agent("48400")
        assert time.monotonic() - started < 2.0
        assert isinstance(info.value.__cause__, httpx.TimeoutException)


@pytest.mark.server
@pytest.mark.parametrize("pod", PODS)
def test_connection_reset_sync(kaleyra_mock_server: Any, pod: str) -> None:
    kaleyra_mock_server.reset()
    url = kaleyra_mock_server.in_url if pod == "in" else kaleyra_mock_server.na_url
    sleep = SyncSleep()
    with KaleyraRCS(api_key=SECRET, sid="RESET", base_url=url, timeout=5, retries=2, sleep=sleep) as client:
        arm_server_fault(kaleyra_mock_server, "connection_reset", "RESET")
        with pytest.raises(TransportError):
            client.get_testers_by_agent("48900")
        arm_server_fault(kaleyra_mock_server, "connection_reset", "RESET")
        with pytest.raises(TransportError):
            client.delete_agent("48400")
        # the DELETE was processed before the answer was spoiled, and the client did not retry it
        with pytest.raises(AgentNotFound):
            client.delete_agent("48400")
    deletes = [e for e in server_journal(kaleyra_mock_server) if e["method"] == "DELETE"]
    assert len(deletes) == 2


@pytest.mark.server
@pytest.mark.anyio
async def test_connection_reset_async(kaleyra_mock_server: Any) -> None:
    kaleyra_mock_server.reset()
    arm_server_fault(kaleyra_mock_server, "connection_reset", "RESET")
    async with AsyncKaleyraRCS(api_key=SECRET, sid="RESET", base_url=kaleyra_mock_server.na_url, timeout=5) as client:
        with pytest.raises(TransportError):
            await client.get_testers_by_agent("48900")
        assert len(await client.get_testers_by_agent("48900")) == 1


SPOILERS = [("empty_response", 200), ("malformed_body", 200), ("empty_response", 500), ("malformed_body", 400)]


@pytest.mark.parametrize(("fault", "status"), SPOILERS)
@pytest.mark.parametrize("operation", ["getTestersByAgent", "deleteAgent"])
def test_spoiled_bodies_are_contract_violations_sync(
    kaleyra_mock: Any, operation: str, fault: str, status: int
) -> None:
    kaleyra_mock.arm_fault(fault, times=1, params={"status": status})
    sleep = SyncSleep()
    with sync_client(kaleyra_mock, "na", retries=2, sleep=sleep) as client, pytest.raises(ContractViolation) as info:
        call_sync(client, operation, DEFAULT_AGENT[operation])
    error = info.value
    assert error.status == status
    assert "not JSON" in error.message
    assert isinstance(error.body, str) and (error.body == "" if fault == "empty_response" else error.body)
    assert sleep.calls == []  # a contract violation is never retried


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["empty_response", "malformed_body"])
@pytest.mark.parametrize("operation", ["getTestersByAgent", "deleteAgent"])
async def test_spoiled_bodies_are_contract_violations_async(kaleyra_mock: Any, operation: str, fault: str) -> None:
    kaleyra_mock.arm_fault(fault, times=1)
    async with async_client(kaleyra_mock, "in") as client:
        with pytest.raises(ContractViolation) as info:
            await call_async(client, operation, DEFAULT_AGENT[operation])
    assert info.value.status == 200


def test_random_5xx_fault_is_a_typed_error(kaleyra_mock: Any) -> None:
    kaleyra_mock.arm_fault("random_5xx", times=1, params={"rate": 1, "seed": 7})
    with sync_client(kaleyra_mock) as client:
        with pytest.raises(KaleyraError) as info:
            client.delete_agent("48400")
        served = EXAMPLES["deleteAgent"][kaleyra_mock.journal(limit="1")[0]["example"]]
        assert_typed_error(info.value, served)
        assert isinstance(info.value, GatewayError | InternalServerError)
        assert client.delete_agent("48400").code == "RCS902"  # the gateway failure deleted nothing


# -- 5. secrets --------------------------------------------------------------------------------


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in SECRET_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def fingerprint(key: str) -> str:
    """What the mock's journal shows instead of a key (README: an 8-hex-digit sha256 prefix)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:8]


def assert_no_secret(*things: object) -> None:
    for thing in things:
        for text in (str(thing), repr(thing)):
            assert SECRET not in text, f"the api key leaks in {text[:200]!r}"


def assert_error_clean(error: BaseException) -> None:
    assert_no_secret(error, *error.args)
    if isinstance(error, KaleyraError):
        assert_no_secret(error.message, error.body, error.error_message)
    if error.__cause__ is not None:
        assert_no_secret(error.__cause__)


def test_repr_hides_the_key(kaleyra_mock: Any) -> None:
    with sync_client(kaleyra_mock) as client:
        assert_no_secret(client, client.base_url)
        assert "***" in repr(client)
    client_a = async_client(kaleyra_mock)
    assert_no_secret(client_a)
    assert "***" in repr(client_a)


def test_no_secret_in_any_error_log_journal_or_state(kaleyra_mock: Any, debug_logs: pytest.LogCaptureFixture) -> None:
    errors: list[BaseException] = []
    kaleyra_mock.control.put_account("na", SID, {"api_keys": [SECRET], "agents": both_agents()})
    for pod in PODS:
        with sync_client(kaleyra_mock, pod) as client:
            assert_no_secret(client)
            for op, examples in EXAMPLES.items():
                for name in examples:
                    if name == SUCCESS[op]:
                        continue
                    kaleyra_mock.arm_scenario(name, times=1, operation=op)
                    with pytest.raises(KaleyraError) as info:
                        call_sync(client, op, DEFAULT_AGENT[op])
                    errors.append(info.value)
                for fault in ("empty_response", "malformed_body"):
                    kaleyra_mock.arm_fault(fault, times=1)
                    with pytest.raises(ContractViolation) as cv:
                        call_sync(client, op, DEFAULT_AGENT[op])
                    errors.append(cv.value)
                for agent in (*MAGIC.values(), "", "12345"):
                    with pytest.raises(KaleyraError) as magic:
                        call_sync(client, op, agent)
                    errors.append(magic.value)
            client.get_testers_by_agent("48900")  # the spoiled DELETEs above did delete 48400
    with flaky_sync(FlakyNetwork(5), retries=1, sleep=SyncSleep()) as flaky, pytest.raises(TransportError) as te:
        flaky.get_testers_by_agent("48900")
    errors.append(te.value)
    with sync_client(kaleyra_mock, "na", api_key="sk-live-OTHER") as other, pytest.raises(AuthenticationError) as auth:
        other.get_testers_by_agent("48900")  # the account lists only SECRET
    errors.append(auth.value)
    assert len(errors) > 60
    for error in errors:
        assert_error_clean(error)
    assert debug_logs.records, "nothing was logged: the capture is not wired"
    assert SECRET not in debug_logs.text
    assert all(SECRET not in r.getMessage() for r in debug_logs.records)
    journal = kaleyra_mock.journal()
    assert len(journal) > 60
    assert SECRET not in json.dumps(journal)
    assert {e["api_key"] for e in journal} == {fingerprint(SECRET), fingerprint("sk-live-OTHER")}
    assert SECRET not in json.dumps(kaleyra_mock.state())


@pytest.mark.anyio
async def test_no_secret_async(kaleyra_mock: Any, debug_logs: pytest.LogCaptureFixture) -> None:
    errors: list[BaseException] = []
    async with async_client(kaleyra_mock, "na") as client:
        assert_no_secret(client)
        for op in EXAMPLES:
            for name in (n for n in ERROR_CLASS if n in EXAMPLES[op]):
                kaleyra_mock.arm_scenario(name, times=1, operation=op)
                with pytest.raises(KaleyraError) as info:
                    await call_async(client, op, DEFAULT_AGENT[op])
                errors.append(info.value)
    for error in errors:
        assert_error_clean(error)
    assert SECRET not in debug_logs.text
    assert SECRET not in json.dumps(kaleyra_mock.journal())


@pytest.mark.server
def test_no_secret_over_a_socket(kaleyra_mock_server: Any, debug_logs: pytest.LogCaptureFixture) -> None:
    """httpcore logs only over a real connection: its DEBUG lines must not carry the key either."""
    kaleyra_mock_server.reset()
    errors: list[BaseException] = []
    with KaleyraRCS(api_key=SECRET, sid="LEAK", base_url=kaleyra_mock_server.na_url, timeout=0.2) as client:
        client.get_testers_by_agent("48900")
        with pytest.raises(AgentNotFound) as nf:
            client.delete_agent(MAGIC["agent_not_found"])
        errors.append(nf.value)
        arm_server_fault(kaleyra_mock_server, "connection_reset", "LEAK")
        with pytest.raises(TransportError) as reset:
            client.get_testers_by_agent("48900")
        errors.append(reset.value)
        arm_server_fault(kaleyra_mock_server, "latency", "LEAK", {"ms": 600})
        with pytest.raises(TransportError) as slow:
            client.get_testers_by_agent("48900")
        errors.append(slow.value)
    with KaleyraRCS(api_key=SECRET, sid="LEAK", base_url="http://127.0.0.1:9/in", timeout=1) as closed:
        with pytest.raises(TransportError) as refused:
            closed.get_testers_by_agent("48900")
        errors.append(refused.value)
    for error in errors:
        assert_error_clean(error)
    assert any(r.name.startswith("httpcore") for r in debug_logs.records)
    assert SECRET not in debug_logs.text
    assert SECRET not in json.dumps(server_journal(kaleyra_mock_server))


@pytest.mark.server
@pytest.mark.parametrize(
    "key",
    [SECRET + "\n", f" {SECRET} ", SECRET + "\r\nX-Injected: 1"],
    ids=["trailing-newline", "surrounding-spaces", "crlf"],
)
def test_no_secret_when_the_key_carries_whitespace(
    kaleyra_mock_server: Any, debug_logs: pytest.LogCaptureFixture, key: str
) -> None:
    """A key read from a file often ends in a newline. Whatever the client does with it (strip it,
    refuse it, fail the request) the key must not appear in the error or the logs."""
    error: BaseException | None = None
    try:
        with KaleyraRCS(api_key=key, sid="WS", base_url=kaleyra_mock_server.in_url, timeout=2) as client:
            client.get_testers_by_agent("48900")
    except (ValueError, KaleyraError) as exc:
        error = exc
    if error is not None:
        assert_error_clean(error)
    assert SECRET not in debug_logs.text


def test_listed_key_is_hashed_in_state(kaleyra_mock: Any) -> None:
    kaleyra_mock.control.put_account("in", SID, {"api_keys": [SECRET], "agents": both_agents()})
    with sync_client(kaleyra_mock, "in") as client:
        assert client.delete_agent("48400").code == "RCS902"
    state = json.dumps(kaleyra_mock.state())
    assert SECRET not in state and "api_key_sha256" in state


# -- 6. from_env ---------------------------------------------------------------------------------

ENV = {"KALEYRA_API_KEY": SECRET, "KALEYRA_SID": SID}


def test_from_env_routes_to_the_pod_in_base_url(kaleyra_mock: Any) -> None:
    env = {**ENV, "KALEYRA_POD": "na", "KALEYRA_BASE_URL": kaleyra_mock.base_url("na") + "/"}
    with KaleyraRCS.from_env(env, transport=kaleyra_mock.wsgi_transport()) as client:
        assert (client.sid, client.pod, client.base_url) == (SID, "na", kaleyra_mock.base_url("na"))
        assert client.delete_agent("48400").code == "RCS902"
    assert kaleyra_mock.journal()[0]["pod"] == "na" and kaleyra_mock.journal()[0]["sid"] == SID


@pytest.mark.anyio
async def test_async_from_env(kaleyra_mock: Any) -> None:
    env = {**ENV, "KALEYRA_BASE_URL": kaleyra_mock.base_url("na")}
    async with AsyncKaleyraRCS.from_env(env, transport=kaleyra_mock.asgi_transport()) as client:
        assert len(await client.get_testers_by_agent("48900")) == 1
    assert kaleyra_mock.journal()[0]["pod"] == "na"


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (None, "https://rcs-api.in.kaleyra.io"),
        ("na", "https://rcs-api.na.kaleyra.io"),
        ("IN", "https://rcs-api.in.kaleyra.io"),
    ],
)
def test_from_env_pod_picks_the_host(pod: str | None, expected: str) -> None:
    env = dict(ENV) if pod is None else {**ENV, "KALEYRA_POD": pod}
    with KaleyraRCS.from_env(env) as client:
        assert client.base_url == expected
        assert client.pod == (pod or "in").lower()


def test_from_env_real_host_reaches_the_mock_pod(kaleyra_mock: Any) -> None:
    """No base URL: the real NA host name, which the mock reads from the Host header."""
    with KaleyraRCS.from_env({**ENV, "KALEYRA_POD": "na"}, transport=kaleyra_mock.wsgi_transport()) as client:
        client.delete_agent("48400")
    assert kaleyra_mock.journal()[0]["pod"] == "na"


def test_from_env_reads_os_environ(kaleyra_mock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**ENV, "KALEYRA_POD": "na", "KALEYRA_BASE_URL": kaleyra_mock.base_url("na")}.items():
        monkeypatch.setenv(name, value)
    with KaleyraRCS.from_env(transport=kaleyra_mock.wsgi_transport()) as client:
        assert client.base_url == kaleyra_mock.base_url("na")
        assert len(client.get_testers_by_agent("48900")) == 1


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KALEYRA_SID": SID}, ["KALEYRA_API_KEY"]),
        ({"KALEYRA_API_KEY": SECRET}, ["KALEYRA_SID"]),
        ({"KALEYRA_API_KEY": SECRET, "KALEYRA_SID": ""}, ["KALEYRA_SID"]),
        ({"KALEYRA_API_KEY": "", "KALEYRA_SID": SID}, ["KALEYRA_API_KEY"]),
        ({}, ["KALEYRA_API_KEY", "KALEYRA_SID"]),
    ],
)
@pytest.mark.parametrize("cls", [KaleyraRCS, AsyncKaleyraRCS])
def test_from_env_missing_variable(cls: Any, env: dict[str, str], named: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        cls.from_env(env)
    message = str(info.value)
    for name in named:
        assert name in message
    for value in env.values():
        if value:
            assert value not in message


def test_from_env_missing_variable_in_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KALEYRA_API_KEY", raising=False)
    monkeypatch.setenv("KALEYRA_SID", SID)
    with pytest.raises(ValueError, match="KALEYRA_API_KEY"):
        KaleyraRCS.from_env()


@pytest.mark.parametrize("pod", ["eu", "", "us", "in,na"])
def test_from_env_bad_pod_refused(pod: str) -> None:
    env = {**ENV, "KALEYRA_POD": pod}
    if pod == "":  # empty means unset: the default pod
        with KaleyraRCS.from_env(env) as client:
            assert client.pod == "in"
        return
    with pytest.raises(ValueError, match="pod") as info:
        KaleyraRCS.from_env(env)
    assert_no_secret(info.value)
    with pytest.raises(ValueError, match="pod"):
        AsyncKaleyraRCS.from_env(env)


def test_default_timeout_is_finite() -> None:
    for value in (DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.read, DEFAULT_TIMEOUT.write, DEFAULT_TIMEOUT.pool):
        assert value is not None and 0 < value <= 60
    with KaleyraRCS.from_env(ENV) as client:
        assert client._http.timeout == DEFAULT_TIMEOUT
    with KaleyraRCS(api_key=SECRET, sid=SID, timeout=0.5) as short:
        assert short._http.timeout == httpx.Timeout(0.5)


def test_from_env_keyword_arguments_win(kaleyra_mock: Any) -> None:
    env = {**ENV, "KALEYRA_BASE_URL": "http://elsewhere.invalid/in"}
    with KaleyraRCS.from_env(env, base_url=kaleyra_mock.base_url("na"), transport=kaleyra_mock.wsgi_transport()) as c:
        assert c.base_url == kaleyra_mock.base_url("na")
        assert len(c.get_testers_by_agent("48900")) == 1


@pytest.mark.parametrize("timeout", [-1.0, float("nan"), float("inf")], ids=["negative", "nan", "inf"])
@pytest.mark.parametrize("cls", [KaleyraRCS, AsyncKaleyraRCS])
def test_unusable_timeout_refused(cls: Any, timeout: float) -> None:
    """Like `retries=-1`, a timeout no socket accepts is refused up front. Today it is accepted,
    and the first request dies in the socket layer with a ValueError/OverflowError that is no
    KaleyraError (or, for inf, would wait forever if the socket took it)."""
    with pytest.raises(ValueError, match="timeout"):
        cls(api_key=SECRET, sid=SID, timeout=timeout)


# -- 7. the real server ------------------------------------------------------------------------


@pytest.mark.server
def test_real_server_sync_both_pods(kaleyra_mock_server: Any) -> None:
    kaleyra_mock_server.reset()
    urls = {"in": kaleyra_mock_server.in_url, "na": kaleyra_mock_server.na_url}
    clients = {pod: KaleyraRCS(api_key=SECRET, sid="REAL", base_url=url, timeout=5) for pod, url in urls.items()}
    try:
        for client in clients.values():
            assert [t.to_dict() for t in client.get_testers_by_agent("48900")] == TESTERS_BODY
        assert clients["na"].delete_agent("48400").code == "RCS902"
        with pytest.raises(AgentNotFound):
            clients["na"].delete_agent("48400")
        assert clients["in"].get_testers_by_agent("48400") == []  # IN is untouched
        with pytest.raises(RateLimited) as info:
            clients["in"].get_testers_by_agent(MAGIC["rate_limited"])
        assert info.value.retry_after == 1.0
    finally:
        for client in clients.values():
            client.close()
    pods = [(e["pod"], e["method"], e["status"]) for e in reversed(server_journal(kaleyra_mock_server))]
    assert pods == [
        ("in", "GET", 200),
        ("na", "GET", 200),
        ("na", "DELETE", 200),
        ("na", "DELETE", 400),
        ("in", "GET", 200),
        ("in", "GET", 429),
    ]


@pytest.mark.server
@pytest.mark.anyio
async def test_real_server_async_both_pods(kaleyra_mock_server: Any) -> None:
    kaleyra_mock_server.reset()
    async with (
        AsyncKaleyraRCS(api_key=SECRET, sid="REAL", base_url=kaleyra_mock_server.in_url, timeout=5) as in_,
        AsyncKaleyraRCS(api_key=SECRET, sid="REAL", base_url=kaleyra_mock_server.na_url, timeout=5) as na,
    ):
        assert (await in_.delete_agent("48900")).code == "RCS902"
        with pytest.raises(AgentNotFound):
            await in_.get_testers_by_agent("48900")
        assert len(await na.get_testers_by_agent("48900")) == 1
        with pytest.raises(GatewayError):
            await na.delete_agent(MAGIC["gateway_error"])
    assert {e["pod"] for e in server_journal(kaleyra_mock_server)} == {"in", "na"}


@pytest.mark.server
def test_real_server_retries_armed_errors(kaleyra_mock_server: Any) -> None:
    kaleyra_mock_server.reset()
    doc = {"scenario": "internal_server_error", "times": 2, "match": {"pod": "na", "sid": "RETRY"}}
    httpx.post(f"{kaleyra_mock_server.url}/__mock/scenarios", json=doc, timeout=5).raise_for_status()
    sleep = SyncSleep()
    with KaleyraRCS(
        api_key=SECRET, sid="RETRY", base_url=kaleyra_mock_server.na_url, timeout=5, retries=2, sleep=sleep
    ) as client:
        assert len(client.get_testers_by_agent("48900")) == 1
    assert sleep.calls == [0.5, 1.0]
