"""Calibration's rules (content, probe, shape; what is not applied and why; the error layout) and
the mock in-process answering observed bodies, read by the client in either layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from kaleyra_rcs import KaleyraApiError, KaleyraRCS
from mock_server.core import (
    CONTROL_SPEC_PATH,
    Cassette,
    CassetteError,
    Exchange,
    MockConfig,
    RecordedRequest,
    RecordedResponse,
    ReplayIndex,
    SpecIndex,
    load_observations,
    load_yaml,
)
from mock_server.core import calibrate as _calibrate
from mock_server.web import SpecRouter, create_app

SID = "S"
TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent"
JSON = (("Content-Type", "application/json"),)


def calibrate(spec: SpecIndex, exchanges: list[Exchange]) -> Any:
    """Calibration with the API's own router, as the server builds it."""
    return _calibrate(spec, exchanges, SpecRouter(spec).route)


def error_body(code: str, constant: str, message: str, layout: str = "error") -> bytes:
    detail = {"error_code": constant, "error_message": message}
    if layout == "data":
        return json.dumps({"code": code, "message": "Failed", "data": {"error": detail}}).encode()
    return json.dumps({"code": code, "message": "Failed", "data": {}, "error": detail}).encode()


def observed(
    status: int,
    body: bytes,
    *,
    method: str = "GET",
    path: str = TESTERS,
    query: str = "agent_number=1",
    headers: dict[str, str] | None = None,
    api_key: str | None = "sha256:0123abcd",
    probe: str | None = None,
    operation: str | None = "getTestersByAgent",
    response_headers: tuple[tuple[str, str], ...] = JSON,
    source: str = "live.jsonl:1",
) -> Exchange:
    request_headers = {"content-type": "application/json"} if headers is None else headers
    return Exchange(
        RecordedRequest(method, "in", path, query, request_headers, api_key=api_key),
        RecordedResponse(status, response_headers, body),
        operation=operation,
        source=source,
        probe=probe,
    )


@pytest.fixture(scope="module")
def index() -> SpecIndex:
    return SpecIndex.load()


def applied(calibration: Any) -> dict[tuple[str, str], str]:
    return {key: o.rule for key, o in calibration.observed.items()}


# -- the rules -------------------------------------------------------------------------------


def test_calibrate__content_rule__the_only_example_with_that_status_and_constant(index: SpecIndex) -> None:
    body = error_body("RCS904", "PROV_ERROR", "gone", layout="data")
    calibration = calibrate(index, [observed(400, body)])
    assert applied(calibration) == {("getTestersByAgent", "agent_not_found"): "content"}


def test_calibrate__probe_rule__settles_what_content_leaves_ambiguous(index: SpecIndex) -> None:
    body = error_body("RCS401", "UNAUTHORIZED", "who are you")  # missing_api_key and invalid_api_key alike
    calibration = calibrate(
        index,
        [
            observed(401, body, probe="no_key", api_key=None, source="r:1"),
            observed(401, body, probe="wrong_key", source="r:2"),
            observed(401, body, source="r:3"),  # no probe, a key: nothing tells which
        ],
    )
    assert applied(calibration) == {
        ("getTestersByAgent", "missing_api_key"): "probe",
        ("getTestersByAgent", "invalid_api_key"): "probe",
    }
    assert calibration.not_applied == (("r:3", "ambiguous: missing_api_key, invalid_api_key"),)


def test_calibrate__probe_rule__an_unexpected_answer_stands_for_what_the_probe_asked(index: SpecIndex) -> None:
    calibration = calibrate(index, [observed(200, b"[]", query="agent_number=0000000000", probe="unknown_agent")])
    found = calibration.observed[("getTestersByAgent", "agent_not_found")]
    assert (found.status, found.body, found.rule) == (200, b"[]", "probe")


def test_calibrate__shape_rule__what_the_engine_answers_that_request_on_a_fresh_state(index: SpecIndex) -> None:
    weird = error_body("E1", "SOMETHING_ELSE", "?")
    calibration = calibrate(
        index,
        [
            observed(401, weird, api_key=None, source="r:1"),
            observed(406, weird, headers={"content-type": "text/plain"}, source="r:2"),
            observed(422, weird, query="", source="r:3"),
        ],
    )
    assert applied(calibration) == {
        ("getTestersByAgent", "missing_api_key"): "shape",
        ("getTestersByAgent", "unsupported_media_type"): "shape",
        ("getTestersByAgent", "missing_agent_number"): "shape",
    }


def test_calibrate__not_applied__says_why(index: SpecIndex) -> None:
    deleted = error_body("RCS904", "PROV_ERROR", "gone")
    calibration = calibrate(
        index,
        [
            observed(400, deleted, source="r:1"),
            observed(400, deleted, source="r:2"),  # the first observation counts
            observed(418, b"teapot", source="r:3"),
            observed(200, b'[{"x":1}]', probe="baseline", source="r:4"),
            observed(200, b"{}", method="GET", path="/v2/nothing", operation=None, source="r:5"),
            observed(200, json.dumps(index.example("getTestersByAgent", "testers").value).encode(), source="r:6"),
        ],
    )
    assert dict(calibration.not_applied) == {
        "r:2": "agent_not_found of getTestersByAgent was calibrated from r:1 already",
        "r:3": "no example of getTestersByAgent answers 418 like this",
        "r:4": "a 200 of getTestersByAgent: its body is the state's, never calibrated",
        "r:5": "GET /v2/nothing is no operation of openapi.yaml",
        "r:6": "testers: the body is the state's, never calibrated",
    }


def test_calibrate__operation__found_by_method_and_path_when_not_named(index: SpecIndex) -> None:
    body = error_body("RCS904", "PROV_ERROR", "gone")
    calibration = calibrate(
        index, [observed(400, body, method="DELETE", path=f"/v1/{SID}/rcs/agent/5", operation=None)]
    )
    assert list(calibration.observed) == [("deleteAgent", "agent_not_found")]


def test_calibrate__gzip_body__is_compared_decoded_and_kept_encoded(index: SpecIndex) -> None:
    raw = gzip.compress(error_body("RCS904", "PROV_ERROR", "gone"), mtime=0)
    headers = (*JSON, ("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked"))
    calibration = calibrate(index, [observed(400, raw, response_headers=headers)])
    found = calibration.observed[("getTestersByAgent", "agent_not_found")]
    assert found.body == raw
    assert found.headers == (*JSON, ("Content-Encoding", "gzip"))


@pytest.mark.parametrize(
    ("layouts", "decided"),
    [(["data", "data"], "data"), (["error"], "error"), (["data", "error"], None), ([], None)],
)
def test_calibrate__error_layout__decided_only_when_every_observed_error_agrees(
    index: SpecIndex, layouts: list[str], decided: str | None
) -> None:
    exchanges = [
        observed(400, error_body("RCS904", "PROV_ERROR", "gone", layout), source=f"r:{i}")
        for i, layout in enumerate(layouts)
    ]
    assert calibrate(index, exchanges).error_layout == decided


def test_calibrate__live_report__exchanges_list_is_read(tmp_path: Path) -> None:
    exchange = observed(400, error_body("RCS904", "PROV_ERROR", "gone"), probe="unknown_agent")
    report = tmp_path / "drift.json"
    report.write_text(json.dumps({"items": [], "exchanges": [json.loads(exchange.to_line())]}))
    found = load_observations([report])
    assert [(e.probe, e.source) for e in found] == [("unknown_agent", "drift.json#/exchanges/0")]
    report.write_text(json.dumps({"exchanges": [{"v": 1}]}))
    with pytest.raises(CassetteError, match="exchanges/0"):
        load_observations([report])


# -- the engine answering observations ---------------------------------------------------


def mock(*exchanges: Exchange) -> httpx.Client:
    calibration = calibrate(SpecIndex.load(), list(exchanges))
    app = create_app(config=MockConfig(calibration=calibration))
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://mock/in")


def test_calibrate__observed_answer__replaces_the_example_and_says_observed() -> None:
    body = error_body("RCS401", "API_KEY_MISSING", "no key", layout="error")  # not the mock's default
    headers = (*JSON, ("WWW-Authenticate", "api-key"))
    with mock(observed(401, body, probe="no_key", api_key=None, response_headers=headers)) as http:
        response = http.get(TESTERS, params={"agent_number": "48900"}, headers={"Content-Type": "application/json"})
        assert (response.status_code, response.content) == (401, body)
        assert response.headers["X-Mock-Source"] == "observed"
        assert response.headers["X-Mock-Example"] == "missing_api_key"
        assert response.headers["WWW-Authenticate"] == "api-key"
        # Another example of the family takes the layout observed; its source stays the mock's.
        other = http.get(
            TESTERS, params={"agent_number": "99404"}, headers={"api-key": "k", "Content-Type": "application/json"}
        )
        assert other.headers["X-Mock-Source"] == "magic"
        assert other.json()["error"]["error_code"] == "PROV_ERROR"
        assert other.json()["data"] == {}
        calibration = http.get("http://mock/__mock/health").json()["calibration"]
        assert calibration["applied"] == [
            {
                "example": "missing_api_key",
                "operation": "getTestersByAgent",
                "status": 401,
                "source": "live.jsonl:1",
                "rule": "probe",
            }
        ]
        assert calibration["error_layout"] == "error"


@pytest.mark.parametrize("layout", ["error", "data"])
def test_calibrate__client__reads_calibrated_errors_in_either_layout(layout: str) -> None:
    body = error_body("RCS904", "PROV_ERROR", '{"status":"FAILED","message":"Agent not found"}', layout)
    calibration = calibrate(SpecIndex.load(), [observed(400, body)])
    app = create_app(config=MockConfig(calibration=calibration))
    client = KaleyraRCS(api_key="k", sid=SID, base_url="http://mock/in", transport=httpx.WSGITransport(app=app))
    with client, pytest.raises(KaleyraApiError) as caught:
        client.get_testers_by_agent("99404")
    assert (caught.value.status, caught.value.code, caught.value.error_code) == (400, "RCS904", "PROV_ERROR")


def test_health__replay_and_calibration__validate_against_the_control_document(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.jsonl")
    cassette.append(observed(400, error_body("RCS904", "PROV_ERROR", "gone")))
    cassette.close()
    calibration = calibrate(SpecIndex.load(), [observed(418, b"?"), observed(400, error_body("X", "PROV_ERROR", "g"))])
    config = MockConfig(replay=ReplayIndex.load([tmp_path / "c.jsonl"]), calibration=calibration)
    health = create_app(config=config).test_client().get("/__mock/health").get_json()
    document = load_yaml(CONTROL_SPEC_PATH)
    schema = {**document["components"]["schemas"]["Health"], "components": document["components"]}  # its $refs
    Draft202012Validator(schema).validate(health)
    assert {"replay", "calibration"} <= set(health)
    assert len(health["calibration"]["applied"]) == len(health["calibration"]["not_applied"]) == 1
    plain = create_app().test_client().get("/__mock/health").get_json()
    Draft202012Validator(schema).validate(plain)
    assert not {"replay", "calibration"} & set(plain)


def test_calibrate__routing_probe__a_path_no_operation_takes_answers_as_observed() -> None:
    page = b"<html><body>404 Not Found</body></html>"
    exchange = observed(
        404,
        page,
        path=f"/v1/{SID}/rcs/drift-probe-no-such-operation",
        query="",
        operation=None,
        probe="not_found_path",
        response_headers=(("Content-Type", "text/html"),),
    )
    with mock(exchange) as http:
        response = http.get("/v1/S/rcs/anything-else", headers={"api-key": "k"})
        assert (response.status_code, response.content, response.headers["Content-Type"]) == (404, page, "text/html")
        assert response.headers["X-Mock-Source"] == "observed"
        assert response.headers["X-Mock-Example"] == "not_found"


def test_calibrate__missing_content_type__refused_by_the_real_api__is_refused_as_observed() -> None:
    """A real refusal of a request without Content-Type makes the mock refuse one too (as
    --strict-content-type), with the observed body; the shape rule names the example."""
    body = error_body("RCS400", "INVALID_CONTENT_TYPE", "Content-Type is mandatory")
    with mock(observed(400, body, headers={}, source="sandbox.jsonl:7")) as http:
        response = http.get(TESTERS, params={"agent_number": "48900"}, headers={"api-key": "k"})
        assert (response.status_code, response.content) == (400, body)
        assert (response.headers["X-Mock-Source"], response.headers["X-Mock-Example"]) == (
            "observed",
            "unsupported_media_type",
        )
        calibration = http.get("http://mock/__mock/health").json()["calibration"]
    assert calibration["content_type_required"] is True
    assert calibration["content_type_why"].startswith("sandbox.jsonl:7")


def test_calibrate__missing_content_type__accepted_by_the_real_api__keeps_the_mocks_warning() -> None:
    with mock(observed(200, b"[]", headers={}, source="sandbox.jsonl:3")) as http:
        response = http.get(TESTERS, params={"agent_number": "48900"}, headers={"api-key": "k"})
        assert response.status_code == 200
        assert "X-Mock-Warning" in response.headers
        assert http.get("http://mock/__mock/health").json()["calibration"]["content_type_required"] is False
