"""openapi.yaml against the two Kaleyra documents it was written from."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from mock_server.core import SPEC_PATH
from tests._spec import DOCS, SPEC_FILE, Spec

TESTERS_DOC = DOCS / "kaleyra-rcs-get-tester-by-agent.txt"
DELETE_DOC = DOCS / "kaleyra-rcs-delete-an-agent.txt"

WALKED = Spec.load()
SPEC: dict[str, Any] = WALKED.document


def _sample_json(text: str, start: str, end: str) -> Any:
    """The JSON between the sample-response heading and what follows it in a document."""
    body = text.split(start, 1)[1].split(end, 1)[0]
    return json.loads(body)


def documented_testers() -> Any:
    return _sample_json(TESTERS_DOC.read_text(), "The following is the sample success response:", "Updated")


def documented_agent_deleted() -> Any:
    return _sample_json(DELETE_DOC.read_text(), "The following is the sample success response:", "Failure Responses")


def documented_failures() -> list[dict[str, str]]:
    rows = []
    for line in DELETE_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1].isdigit():
            scenario, status, code, message, constant, error_message = cells
            rows.append(
                {
                    "name": scenario.lower().replace(" ", "_"),
                    "status": status,
                    "code": code,
                    "message": message,
                    "constant": constant,
                    "error_message": error_message,
                }
            )
    return rows


def _media_with_examples() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    for op_id, op in WALKED.operations.items():
        for status, response in op.raw["responses"].items():
            media = WALKED.resolve(response).get("content", {}).get("application/json")
            if media and "examples" in media:
                yield f"{op_id}:{status}", op.path, media["schema"], media["examples"]


def test_spec__validates_as_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1")
    validate(SPEC)


def test_spec__the_mock_reads_the_top_level_file() -> None:
    assert SPEC_PATH.resolve() == SPEC_FILE.resolve()


@pytest.mark.parametrize("name", [TESTERS_DOC.name, DELETE_DOC.name])
def test_fixtures__are_the_kaleyra_documents_byte_for_byte(name: str) -> None:
    """SHA256SUMS holds the sums of the two documents as Kaleyra's copies were received (checked
    against them when the copies were made): a fixture edited by hand fails here, on any machine."""
    sums = dict(reversed(line.split()) for line in (DOCS / "SHA256SUMS").read_text().splitlines())
    assert hashlib.sha256((DOCS / name).read_bytes()).hexdigest() == sums[name]


@pytest.mark.parametrize(("where", "path", "schema", "examples"), list(_media_with_examples()))
def test_spec__every_example_validates_against_its_schema(
    where: str, path: str, schema: dict[str, Any], examples: dict[str, Any]
) -> None:
    # Validate inside the whole document so that "#/components/..." references resolve.
    validator = Draft202012Validator({**SPEC, "x-target": schema, "$ref": "#/x-target"})
    for name, example in examples.items():
        value = WALKED.resolve(example)["value"]
        errors = [e.message for e in validator.iter_errors(value)]
        assert errors == [], f"{where} example {name}: {errors}"


def test_get_testers_by_agent__testers_example_is_the_documented_sample() -> None:
    assert WALKED.examples("getTestersByAgent")["testers"].value == documented_testers()


def test_delete_agent__agent_deleted_example_is_the_documented_sample() -> None:
    example = WALKED.examples("deleteAgent")["agent_deleted"]
    assert example.value == documented_agent_deleted()
    assert example.value["message"] == "Agent deleted succesfully"  # the vendor's spelling
    assert example.status == 200


def test_delete_agent__failure_table_has_five_rows() -> None:
    names = [row["name"] for row in documented_failures()]
    assert names == [
        "missing_agent_number",
        "agent_not_found",
        "rcs_not_enabled",
        "gateway_error",
        "internal_server_error",
    ]


@pytest.mark.parametrize("row", documented_failures(), ids=lambda r: r["name"])
def test_delete_agent__failure_examples_carry_the_documented_values(row: dict[str, str]) -> None:
    example = WALKED.examples("deleteAgent")[row["name"]]
    assert example.status == int(row["status"])
    assert example.value["code"] == row["code"]
    assert example.value["message"] == row["message"]
    assert example.value["data"]["error"]["error_code"] == row["constant"]
    assert example.value["data"]["error"]["error_message"] == row["error_message"]
    assert example.documented and "failure table" in example.documented
    assert example.assumed, "the error layout is an assumption and must say so"


def test_delete_agent__prov_error_message_is_json_in_a_string() -> None:
    value = WALKED.examples("deleteAgent")["agent_not_found"].value
    assert json.loads(value["data"]["error"]["error_message"]) == {"status": "FAILED", "message": "Agent not found"}


def test_spec__every_example_is_documented_assumed_or_the_mocks_own() -> None:
    for name, example in SPEC["components"]["examples"].items():
        assert "x-documented" in example or "x-assumed" in example or "x-mock-own" in example, name
        if "x-documented" not in example and "x-mock-own" not in example:
            assert len(example["x-assumed"]) > 20, f"{name}: say what was assumed and why"


def test_spec__the_mocks_own_answers_stay_out_of_responses_and_use_mock_codes() -> None:
    """What only the mock answers sits under x-mock-own-responses, never under responses: a
    client generated from or checking against the spec must not take it for Kaleyra's."""
    responses = SPEC["components"]["responses"]
    own = {name for name, response in responses.items() if "x-mock-own" in response}
    assert own, "the spec describes the mock's own answers"
    for op_id, op in WALKED.operations.items():
        listed = {ref["$ref"].rsplit("/", 1)[1] for ref in op.raw["responses"].values() if "$ref" in ref}
        assert not listed & own, op_id
        for ref in op.raw.get("x-mock-own-responses", {}).values():
            assert WALKED.resolve(ref).get("x-mock-own"), op_id
        for example in WALKED.own(op_id).values():
            assert example.value["code"].startswith("MOCK"), example


def test_spec__documented_examples_are_exactly_the_documents_bodies_and_rows() -> None:
    documented = {n for n, e in SPEC["components"]["examples"].items() if "x-documented" in e}
    assert documented == {
        "testers",
        "agent_deleted",
        "delete_missing_agent_number",
        "delete_agent_not_found",
        "rcs_not_enabled",
        "gateway_error",
        "internal_server_error",
    }


@pytest.mark.parametrize(
    "name", ["Unauthorized", "UnsupportedMediaType", "RateLimited", "NotFound", "MethodNotAllowed"]
)
def test_spec__undocumented_responses_are_marked_assumed(name: str) -> None:
    assert "x-assumed" in SPEC["components"]["responses"][name]


def test_spec__error_layout_and_testers_errors_are_marked_assumed() -> None:
    assert "x-assumed" in SPEC["components"]["schemas"]["ErrorResponse"]
    assert "x-assumed" in SPEC["components"]["responses"]["TestersBadRequest"]


def test_spec__error_layout__default_is_data_error_and_cites_its_evidence_by_page_title() -> None:
    schema = SPEC["components"]["schemas"]["ErrorResponse"]
    note = " ".join(schema["x-assumed"].split())
    for title in ("Messages API \N{EN DASH} Error Responses", "RCS API Agent Error Codes", "RCS Error Codes"):
        assert f'"{title}' in note, title
    assert "analogy" in note  # the Messages API's codes are another family: said, not hidden
    errors = [e for op in WALKED.operations for e in WALKED.listed(op) if e.status >= 400]
    assert errors
    for example in errors:  # every error example is written in the default layout
        assert "error" not in example.value, example.name
        assert set(example.value["data"]["error"]) == {"error_code", "error_message"}, example.name


def test_spec__variant_operations_are_marked_assumed() -> None:
    variants = [op for op in WALKED.operations.values() if op.variant_of is not None]
    assert {op.operation_id for op in variants} == {
        "postTestersByAgent",
        "getTestersByAgentTester",
        "postTestersByAgentTester",
        "getTestersByAgentWsgw",
        "postTestersByAgentWsgw",
        "deleteAgentWithoutNumber",
        "deleteAgentWithoutNumberOrSlash",
    }
    for op in variants:
        assert op.raw.get("x-assumed"), op.operation_id


def test_spec__no_format_or_pattern_on_masked_values() -> None:
    found = re.findall(r"'(format|pattern)'", repr(SPEC["components"]["schemas"]))
    assert found == []


def test_spec__servers_list_every_documented_host_and_the_local_pods() -> None:
    urls = [s["url"] for s in SPEC["servers"]]
    assert urls[:3] == [
        "https://rcs-api.in.kaleyra.io",
        "https://rcs-api.na.kaleyra.io",
        "https://rcs-api.na.kaleyra.ai",
    ]
    local = SPEC["servers"][3]
    assert local["url"] == "http://127.0.0.1:{port}/{pod}"
    assert local["variables"]["pod"]["enum"] == ["in", "na"]


def test_spec__both_operations_and_the_api_key_scheme() -> None:
    ops = {op_id: (op.path, op.method.lower()) for op_id, op in WALKED.operations.items()}
    assert ops["getTestersByAgent"] == ("/v1/{sid}/rcs/agent/testersbyagent", "get")
    assert ops["deleteAgent"] == ("/v1/{sid}/rcs/agent/{agent_number}", "delete")
    scheme = SPEC["components"]["securitySchemes"]["ApiKeyAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "api-key")
    assert SPEC["security"] == [{"ApiKeyAuth": []}]


def test_spec__stable_example_names() -> None:
    assert set(WALKED.examples("deleteAgent")) >= {
        "agent_deleted",
        "missing_agent_number",
        "agent_not_found",
        "rcs_not_enabled",
        "gateway_error",
        "internal_server_error",
    }
    assert "testers" in WALKED.examples("getTestersByAgent")


def _documented_rows(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        if re.match(r"^(sid|Content-Type|api-key|agent_number) \|", line):
            rows.append([cell.strip() for cell in line.split("|") if cell.strip()])
    return rows


@pytest.mark.parametrize("doc", [DELETE_DOC, TESTERS_DOC], ids=lambda p: p.name)
def test_spec__parameter_tables_are_kept_cell_for_cell(doc: Path) -> None:
    kept = SPEC["x-kaleyra-documented-parameters"][doc.name]
    assert kept == _documented_rows(doc)
    assert len(kept) == 4


def test_spec__documented_descriptions_and_masked_examples_are_verbatim() -> None:
    scheme = SPEC["components"]["securitySchemes"]["ApiKeyAuth"]
    assert scheme["description"] == "API key generated from kaleyra.io account."
    assert set(scheme["x-examples"].values()) == {
        "XXXXX3b8497f58a94e84b671aca43XXXX",
        "xxxxx3b8497f58a94e84b671aca43xxxx",
    }
    sid = SPEC["components"]["parameters"]["Sid"]
    assert sid["description"] == "Account SID (Security Identifier)."
    assert {e["value"] for e in sid["examples"].values()} == {"XXXXX6913850XXXX", "xxxxx6913850xxxx"}


@pytest.mark.parametrize("name", ["Tester", "DeleteAgentResponse", "ErrorResponse"])
def test_spec__schemas_inferred_from_one_sample_are_marked_assumed(name: str) -> None:
    assert SPEC["components"]["schemas"][name].get("x-assumed")
