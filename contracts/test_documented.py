"""Each documented request gives the documented response, on each pod; every named answer of
the spec can be had and validates against its own schema, and the client reads it right."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from contracts._support import PODS, SPEC, Target
from kaleyra_rcs import AgentNotFound, ContractViolation, KaleyraError, KaleyraRCS

OPS = {
    "getTestersByAgent": ("GET", "/v1/{sid}/rcs/agent/testersbyagent?agent_number={agent}"),
    "deleteAgent": ("DELETE", "/v1/{sid}/rcs/agent/{agent}"),
}
TESTERS = SPEC.example("getTestersByAgent", "testers").value
AGENT_DELETED = SPEC.example("deleteAgent", "agent_deleted").value


def _validator(operation_id: str, status: int) -> Draft202012Validator:
    op = SPEC.document["paths"][SPEC.operations[operation_id].path][SPEC.operations[operation_id].method.lower()]
    schema = SPEC.resolve(op["responses"][str(status)])["content"]["application/json"]["schema"]
    return Draft202012Validator({**SPEC.document, "x-target": schema, "$ref": "#/x-target"})


def _answers() -> list[Any]:
    return [
        pytest.param(op_id, name, id=f"{op_id}-{name}") for op_id in OPS for name in SPEC.operations[op_id].examples
    ]


@pytest.fixture(params=PODS)
def pod(request: pytest.FixtureRequest, target: Target) -> str:
    if request.param not in target.pods:
        pytest.skip(f"the target serves pod {target.pods[0]} only")
    return str(request.param)


def test_get_testers_by_agent__documented_sample(target: Target, pod: str) -> None:
    agent = "48900" if target.is_mock else _live_agent()
    with target.http(pod) as http:
        response = http.get(OPS["getTestersByAgent"][1].format(sid=target.sid, agent=agent), headers=target.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert list(_validator("getTestersByAgent", 200).iter_errors(response.json())) == []
    if target.is_mock:
        assert response.json() == TESTERS


def test_delete_agent__documented_sample_then_agent_not_found(mock_target: Target, pod: str) -> None:
    path = OPS["deleteAgent"][1].format(sid=mock_target.sid, agent="48400")
    with mock_target.http(pod) as http:
        first = http.delete(path, headers=mock_target.headers)
        second = http.delete(path, headers=mock_target.headers)
        testers = http.get(
            OPS["getTestersByAgent"][1].format(sid=mock_target.sid, agent="48400"), headers=mock_target.headers
        )
    assert (first.status_code, first.json()) == (200, AGENT_DELETED)
    assert (second.status_code, second.json()) == (400, SPEC.example("deleteAgent", "agent_not_found").value)
    assert testers.status_code == 400
    assert testers.json()["data"]["error"]["error_code"] == "PROV_ERROR"


@pytest.mark.parametrize(("operation_id", "name"), _answers())
def test_every_named_answer__is_served_and_valid(mock_target: Target, pod: str, operation_id: str, name: str) -> None:
    """Asked for by name (Prefer), each answer is the spec's example, valid against its schema."""
    example = SPEC.example(operation_id, name)
    method, template = OPS[operation_id]
    with mock_target.http(pod) as http:
        response = http.request(
            method,
            template.format(sid=mock_target.sid, agent="48400"),
            headers={**mock_target.headers, "Prefer": f"example={name}"},
        )
    assert response.status_code == example.status
    assert response.json() == example.value
    assert list(_validator(operation_id, example.status).iter_errors(response.json())) == []
    for header, value in example.headers:
        assert response.headers[header] == value


@pytest.mark.parametrize(("operation_id", "name"), _answers())
def test_every_named_answer__reaches_the_client_as_documented(
    mock_target: Target, pod: str, operation_id: str, name: str
) -> None:
    """The client turns each answer into its model or its typed error, never a ContractViolation."""
    mock_target.control(
        "POST", "/__mock/scenarios", {"scenario": name, "times": 1, "match": {"pod": pod, "operation": operation_id}}
    )
    example = SPEC.example(operation_id, name)
    with KaleyraRCS(
        api_key=mock_target.api_key,
        sid=mock_target.sid,
        base_url=mock_target.base_url(pod),
        transport=mock_target.transport(),
    ) as client:
        call = client.get_testers_by_agent if operation_id == "getTestersByAgent" else client.delete_agent
        if example.status < 300:
            result = call("48900")
            dumped = [t.to_dict() for t in result] if isinstance(result, list) else result.to_dict()
            assert dumped == example.value
            return
        expected = AgentNotFound if name == "agent_not_found" else KaleyraError
        with pytest.raises(expected) as raised:
            call("48900")
    assert not isinstance(raised.value, ContractViolation), str(raised.value)
    assert (raised.value.status, raised.value.body) == (example.status, example.value)


@pytest.mark.parametrize("key", [None, "", "not-the-key"], ids=["no-key", "empty-key", "wrong-key"])
def test_auth__a_missing_or_wrong_key_is_refused_with_401(target: Target, pod: str, key: str | None) -> None:
    """Against the mock the 401s are the contract; against a live target they are assumptions
    (`x-assumed`), so an answer that contradicts them is reported, not failed (as in the drift
    report): a bare `make run` mock, which takes any key, is such a target."""
    headers = {"Content-Type": "application/json"} | ({"api-key": key} if key is not None else {})
    with target.http(pod) as http:
        response = http.get(OPS["getTestersByAgent"][1].format(sid=target.sid, agent="48900"), headers=headers)
    example = SPEC.example("getTestersByAgent", "invalid_api_key" if key else "missing_api_key")
    if response.status_code != 401 and target.kind == "live" and example.assumed:
        pytest.xfail(f"x-assumed, contradicted (reported, not failed): answered {response.status_code}, assumed 401")
    assert response.status_code == example.status
    if target.is_mock:
        assert response.json() == example.value


def _live_agent() -> str:
    import os

    agent = os.environ.get("KALEYRA_AGENT_NUMBER")
    if not agent:
        pytest.skip("set KALEYRA_AGENT_NUMBER to an agent of your sandbox account")
    return agent
