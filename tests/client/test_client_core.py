"""The client's core without I/O: a flow yields what to send and when to wait, and is sent what came back.

These drive `kaleyra_rcs._core.Core` by hand, with no httpx client, no transport and no clock, to
show that building, validating, raising and retrying live there, once, for both clients.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kaleyra_rcs import AgentNotFound, InternalServerError, TransportError
from kaleyra_rcs._core import Core, Flow, Send, Sleep
from tests._spec import Spec

SETTINGS: dict[str, Any] = {
    "api_key": "core-test-key",
    "sid": "CORE-SID",
    "pod": "in",
    "base_url": None,
    "timeout": 5.0,
    "backoff": 0.5,
    "max_backoff": 8.0,
    "spec": None,
}
# The answers come from the spec's examples (tests/_spec.py), so they are documented ones.
SPEC = Spec.load()
INTERNAL_ERROR = SPEC.examples("getTestersByAgent")["internal_server_error"].value
TESTERS = SPEC.examples("getTestersByAgent")["testers"].value
AGENT_NOT_FOUND = SPEC.examples("deleteAgent")["agent_not_found"]


def answer(step: Send, status: int, body: Any) -> httpx.Response:
    request = httpx.Request(step.request.method, "http://core.test" + step.request.url, params=step.request.params)
    return httpx.Response(status, json=body, request=request)


def steps_until_done(flow: Flow[Any], replies: list[tuple[int, Any]]) -> tuple[list[Send | Sleep], Any]:
    """Answer each Send with the next reply; returns the steps seen and the result (or the error)."""
    seen: list[Send | Sleep] = []
    reply: Any = None
    try:
        while True:
            step = flow.send(reply)
            seen.append(step)
            reply = answer(step, *replies.pop(0)) if isinstance(step, Send) else None
    except StopIteration as done:
        return seen, done.value
    except Exception as error:  # the flow's own error, as a driver would see it
        return seen, error


def test_get_testers_by_agent__the_request_comes_from_the_spec() -> None:
    flow = Core(retries=0, **SETTINGS).get_testers_by_agent("48900")
    step = next(flow)
    assert isinstance(step, Send)
    request = step.request
    assert (request.operation_id, request.method, request.url) == (
        "getTestersByAgent",
        "GET",
        "/v1/CORE-SID/rcs/agent/testersbyagent",
    )
    assert dict(request.params) == {"agent_number": "48900"}


def test_get_testers_by_agent__a_documented_500_is_waited_for_then_retried() -> None:
    flow = Core(retries=2, **SETTINGS).get_testers_by_agent("7")
    seen, result = steps_until_done(flow, [(500, INTERNAL_ERROR), (500, INTERNAL_ERROR), (200, TESTERS)])
    assert [type(s).__name__ for s in seen] == ["Send", "Sleep", "Send", "Sleep", "Send"]
    assert [s.seconds for s in seen if isinstance(s, Sleep)] == [0.5, 1.0]
    assert [t.to_dict() for t in result] == TESTERS


def test_get_testers_by_agent__retries_are_bounded() -> None:
    flow = Core(retries=1, **SETTINGS).get_testers_by_agent("7")
    seen, error = steps_until_done(flow, [(500, INTERNAL_ERROR), (500, INTERNAL_ERROR)])
    assert [type(s).__name__ for s in seen] == ["Send", "Sleep", "Send"]
    assert type(error) is InternalServerError


def test_delete_agent__never_waits_and_never_sends_twice() -> None:
    flow = Core(retries=3, **SETTINGS).delete_agent("48400")
    seen, error = steps_until_done(flow, [(500, INTERNAL_ERROR)])
    assert [type(s).__name__ for s in seen] == ["Send"]
    assert type(error) is InternalServerError
    assert isinstance(seen[0], Send) and (seen[0].request.method, seen[0].request.url) == (
        "DELETE",
        "/v1/CORE-SID/rcs/agent/48400",
    )


def test_delete_agent__a_documented_400_is_its_typed_error() -> None:
    answer = (AGENT_NOT_FOUND.status, AGENT_NOT_FOUND.value)
    _, error = steps_until_done(Core(retries=0, **SETTINGS).delete_agent("1"), [answer])
    assert type(error) is AgentNotFound
    assert error.detail == {"status": "FAILED", "message": "Agent not found"}


def test_a_connect_error_sent_into_the_flow_is_a_transport_error_and_retried() -> None:
    flow = Core(retries=1, **SETTINGS).get_testers_by_agent("7")
    first = next(flow)
    assert isinstance(first, Send)
    refused = httpx.ConnectError("refused (simulated)")
    assert flow.send(refused) == Sleep(0.5)
    second = flow.send(None)
    assert isinstance(second, Send)
    with pytest.raises(TransportError) as info:
        flow.send(httpx.ConnectError("refused again (simulated)"))
    assert isinstance(info.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("agent_number", [".", ".."])
def test_dot_segments_are_refused_before_any_step(agent_number: str) -> None:
    core = Core(retries=0, **SETTINGS)
    for operation in (core.get_testers_by_agent, core.delete_agent):
        with pytest.raises(ValueError, match="not an agent number"):
            operation(agent_number)


def test_a_send_step_answered_with_nothing_is_a_driver_bug() -> None:
    flow = Core(retries=0, **SETTINGS).delete_agent("1")
    next(flow)
    with pytest.raises(TypeError, match="Send step"):
        flow.send(None)
