"""The verdict on one answer (core/_verdict.py), in-process: the rules the proxy's headers carry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kaleyra_rcs import load_spec
from mock_server.core import SpecIndex
from mock_server.core._verdict import Judge
from mock_server.web import SpecRouter
from tests._spec import Spec

SPEC = Spec.load()
SID = "S"
TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent"


@pytest.fixture(scope="module")
def judge() -> Judge:
    spec = SpecIndex.load()
    return Judge(spec, load_spec(), SpecRouter(spec).route)


def _verdict(judge: Judge, method: str, path: str, status: int, body: Any, media: str = "application/json") -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return judge.verdict(method, path, status, media, raw)


def _other_layout(value: dict[str, Any]) -> dict[str, Any]:
    moved = dict(value)
    moved["error"] = moved.pop("data")["error"]
    moved["data"] = {}
    return moved


@pytest.mark.parametrize(
    ("operation_id", "name"),
    [(op, ex.name) for op in ("getTestersByAgent", "deleteAgent") for ex in SPEC.listed(op)],
)
def test_verdict__every_documented_example__is_named_with_no_violation(
    judge: Judge, operation_id: str, name: str
) -> None:
    example = SPEC.examples(operation_id)[name]
    op = SPEC.operation(operation_id)
    path = op.path.replace("{sid}", SID).replace("{agent_number}", "48400")
    verdict = _verdict(judge, op.method, path, example.status, example.value)
    assert verdict.operation == operation_id
    assert verdict.violations == ()
    # The first listed example of equal value is the one named (two examples may share a body).
    same = [e.name for e in SPEC.listed(operation_id) if e.status == example.status and e.value == example.value]
    assert verdict.example == same[0]


def test_verdict__the_other_error_layout__names_the_same_example_and_says_the_layout(judge: Judge) -> None:
    example = SPEC.examples("deleteAgent")["agent_not_found"]
    verdict = _verdict(judge, "DELETE", f"/v1/{SID}/rcs/agent/48400", 400, _other_layout(example.value))
    assert (verdict.example, verdict.layout, verdict.violations) == ("agent_not_found", "error", ())
    same = _verdict(judge, "DELETE", f"/v1/{SID}/rcs/agent/48400", 400, example.value)
    assert same.layout == "data"


def test_verdict__a_tester_that_breaks_the_schema__is_a_schema_violation_with_its_pointer(judge: Judge) -> None:
    tester = {**SPEC.examples("getTestersByAgent")["testers"].value[0], "carrierid": "zero"}
    verdict = _verdict(judge, "GET", TESTERS, 200, [tester])
    (violation,) = verdict.violations
    assert (violation.kind, violation.at) == ("schema", "/0/carrierid")
    assert violation.mark in ("documented", "x-assumed")
    assert violation.token().startswith('schema;at="/0/carrierid";mark=')


def test_verdict__an_undocumented_status__is_a_status_violation(judge: Judge) -> None:
    assert 418 not in SPEC.statuses("deleteAgent")
    verdict = _verdict(judge, "DELETE", f"/v1/{SID}/rcs/agent/48400", 418, {"code": "X", "message": "teapot"})
    assert [(v.kind, v.at) for v in verdict.violations] == [("status", "418")]


def test_verdict__html_instead_of_json__is_a_content_type_and_a_json_violation(judge: Judge) -> None:
    verdict = _verdict(judge, "GET", TESTERS, 500, b"<html>Bad gateway</html>", media="text/html")
    assert [v.kind for v in verdict.violations] == ["content-type", "json"]
    assert verdict.example is None


def test_verdict__a_path_of_no_operation__is_an_operation_violation(judge: Judge) -> None:
    verdict = _verdict(judge, "GET", "/v1/S/rcs/no-such-thing", 404, SPEC.shared["not_found"].value)
    assert verdict.operation is None
    assert [v.kind for v in verdict.violations] == ["operation"]
    assert verdict.example == "not_found"


def test_verdict__the_literal_segment_wins__as_the_api_routes_it(judge: Judge) -> None:
    """DELETE .../agent/testersbyagent names no operation (the API answers it 405), never deleteAgent."""
    verdict = _verdict(judge, "DELETE", TESTERS, 405, SPEC.shared["method_not_allowed"].value)
    assert verdict.operation is None
