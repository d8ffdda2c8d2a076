"""A documented scenario is one edit of openapi.yaml: an error example added to a copy of the spec
reaches the client as its documented error, and the CLI exits with its documented code, with no
other change (no class, no table, no exit code written for it).

Each case adds one made-up example (a status and constant no document has) to one operation of a
copy of the packaged spec, answers it from an httpx.MockTransport, and points the client at the
copy with `spec=`. The packaged spec, which lacks the example, is the control: there the same
answer breaks the contract.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kaleyra_rcs import (
    SPEC_PATH,
    AsyncKaleyraRCS,
    ContractViolation,
    KaleyraApiError,
    KaleyraError,
    KaleyraRCS,
    ServerError,
)
from kaleyra_rcs._cli import main
from tests._spec import Spec

API_KEY = "spec-copy-key-8c2e"
SID = "COPY-SID"
# The README's exit codes of the two generic classes ("1 other API error", "9 server error").
EXIT_OTHER_API_ERROR, EXIT_SERVER_ERROR, EXIT_CONTRACT_VIOLATION = 1, 9, 3
COMMANDS = {
    "getTestersByAgent": ("testers", "--agent", "48900"),
    "deleteAgent": ("delete-agent", "48400", "--yes"),
}


@dataclass(frozen=True)
class NewExample:
    operation_id: str
    status: int
    name: str
    value: dict[str, Any]
    error_class: type[KaleyraApiError]
    exit_code: int

    def __str__(self) -> str:
        return f"{self.operation_id}-{self.status}-{self.name}"


def _envelope(code: str, message: str, constant: str) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"error": {"error_code": constant, "error_message": message}}}


NEW_EXAMPLES = [
    # a status no operation documents: a new response, inline, on one operation
    NewExample(
        "deleteAgent",
        409,
        "agent_locked",
        _envelope("RCS409", "Agent is locked by a campaign", "AGENT_LOCKED"),
        KaleyraApiError,
        EXIT_OTHER_API_ERROR,
    ),
    NewExample(
        "getTestersByAgent",
        503,
        "pod_in_maintenance",
        _envelope("RCS503", "Pod in maintenance", "POD_MAINTENANCE"),
        ServerError,
        EXIT_SERVER_ERROR,
    ),
    # a new constant under a status the operation already documents (its own inline 400)
    NewExample(
        "deleteAgent",
        400,
        "agent_in_use",
        _envelope("RCS905", "Agent has live campaigns", "AGENT_IN_USE"),
        KaleyraApiError,
        EXIT_OTHER_API_ERROR,
    ),
]


def spec_copy_with(tmp_path: Path, new: NewExample) -> Path:
    """The packaged spec with `new` added to its operation and nothing else changed."""
    spec = Spec.load(SPEC_PATH)
    responses = spec.operation(new.operation_id).raw["responses"]
    response = responses.setdefault(
        str(new.status),
        {
            "description": f"{new.name} (made up for this test)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
        },
    )
    assert "$ref" not in response, "the example goes into the operation's own response, not a shared one"
    response["content"]["application/json"].setdefault("examples", {})[new.name] = {"value": new.value}
    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump(spec.document, sort_keys=False), encoding="utf-8")
    assert Spec.load(path).examples(new.operation_id)[new.name].value == new.value, "the edit did not land"
    return path


def answering(new: NewExample, requests: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(new.status, json=new.value)

    return httpx.MockTransport(answer)


def sync_client(transport: httpx.MockTransport, spec: Path | None, **kwargs: Any) -> KaleyraRCS:
    return KaleyraRCS(
        api_key=API_KEY, sid=SID, base_url="http://copy.test/in", transport=transport, spec=spec, **kwargs
    )


def assert_mapped(error: KaleyraError, new: NewExample) -> None:
    assert type(error) is new.error_class
    error_body = new.value["data"]["error"]
    assert (error.status, error.code, error.message) == (new.status, new.value["code"], new.value["message"])
    assert (error.error_code, error.error_message) == (error_body["error_code"], error_body["error_message"])
    assert error.body == new.value


def call_sync(client: KaleyraRCS, operation_id: str) -> Any:
    if operation_id == "getTestersByAgent":
        return client.get_testers_by_agent("48900")
    return client.delete_agent("48400")


async def call_async(client: AsyncKaleyraRCS, operation_id: str) -> Any:
    if operation_id == "getTestersByAgent":
        return await client.get_testers_by_agent("48900")
    return await client.delete_agent("48400")


@pytest.mark.parametrize("new", NEW_EXAMPLES, ids=str)
def test_copy_of_the_spec__the_new_example_is_raised_as_documented(tmp_path: Path, new: NewExample) -> None:
    path = spec_copy_with(tmp_path, new)
    requests: list[httpx.Request] = []
    with sync_client(answering(new, requests), path) as client, pytest.raises(KaleyraError) as raised:
        call_sync(client, new.operation_id)
    assert_mapped(raised.value, new)
    assert len(requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("new", NEW_EXAMPLES, ids=str)
async def test_copy_of_the_spec__the_async_client_raises_the_same(tmp_path: Path, new: NewExample) -> None:
    path = spec_copy_with(tmp_path, new)
    requests: list[httpx.Request] = []
    transport = answering(new, requests)
    async with AsyncKaleyraRCS(
        api_key=API_KEY, sid=SID, base_url="http://copy.test/in", transport=transport, spec=path
    ) as client:
        with pytest.raises(KaleyraError) as raised:
            await call_async(client, new.operation_id)
    assert_mapped(raised.value, new)


@pytest.mark.parametrize("new", [n for n in NEW_EXAMPLES if n.status != 400], ids=str)
def test_packaged_spec__the_same_answer_breaks_the_contract(new: NewExample) -> None:
    """The control: without the edit, the new status is undocumented, so the copy made the difference."""
    with sync_client(answering(new, []), None) as client, pytest.raises(ContractViolation) as raised:
        call_sync(client, new.operation_id)
    assert raised.value.status == new.status


@pytest.mark.parametrize("new", NEW_EXAMPLES, ids=str)
def test_copy_of_the_spec__the_cli_exits_with_the_documented_code(tmp_path: Path, new: NewExample) -> None:
    path = spec_copy_with(tmp_path, new)

    def factory(env: dict[str, str] | None, **overrides: Any) -> KaleyraRCS:
        return KaleyraRCS.from_env(env, transport=answering(new, []), spec=path, **overrides)

    out, err = io.StringIO(), io.StringIO()
    env = {"KALEYRA_API_KEY": API_KEY, "KALEYRA_SID": SID, "KALEYRA_BASE_URL": "http://copy.test/in"}
    code = main(list(COMMANDS[new.operation_id]), env=env, stdout=out, stderr=err, client_factory=factory)
    assert code == new.exit_code, out.getvalue() + err.getvalue()
    printed = json.loads(out.getvalue())
    assert printed["error"] == new.error_class.__name__
    assert (printed["status"], printed["code"], printed["error_code"]) == (
        new.status,
        new.value["code"],
        new.value["data"]["error"]["error_code"],
    )
    assert API_KEY not in out.getvalue() + err.getvalue()


def test_packaged_spec__the_cli_calls_the_undocumented_status_a_contract_violation() -> None:
    new = next(n for n in NEW_EXAMPLES if n.status == 409)

    def factory(env: dict[str, str] | None, **overrides: Any) -> KaleyraRCS:
        return KaleyraRCS.from_env(env, transport=answering(new, []), **overrides)

    out = io.StringIO()
    env = {"KALEYRA_API_KEY": API_KEY, "KALEYRA_SID": SID, "KALEYRA_BASE_URL": "http://copy.test/in"}
    code = main(list(COMMANDS[new.operation_id]), env=env, stdout=out, stderr=io.StringIO(), client_factory=factory)
    assert code == EXIT_CONTRACT_VIOLATION
    assert json.loads(out.getvalue())["error"] == "ContractViolation"


def test_copy_of_the_spec__a_new_5xx_of_the_get_is_retried_like_the_documented_ones(tmp_path: Path) -> None:
    """The retry policy goes by class too: a new 5xx example is a ServerError, so the GET retries it."""
    new = next(n for n in NEW_EXAMPLES if n.status >= 500 and n.operation_id == "getTestersByAgent")
    path = spec_copy_with(tmp_path, new)
    requests: list[httpx.Request] = []
    waits: list[float] = []
    transport = answering(new, requests)
    with sync_client(transport, path, retries=2, sleep=waits.append) as client, pytest.raises(ServerError) as raised:
        client.get_testers_by_agent("48900")
    assert_mapped(raised.value, new)
    assert (len(requests), waits) == (3, [0.5, 1.0])
