"""Bad input never earns a 5xx or a traceback, and never changes state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.core import (
    CONTROL_SPEC_PATH,
    INVALID_JSON,
    ControlError,
    ControlPlane,
    MemoryStore,
    SpecIndex,
    StateData,
    default_seed_document,
    load_yaml,
    state_validator,
    strict_json,
)
from mock_server.web import MockHandle, create_app

APP: Flask = create_app()
CLIENT: FlaskClient = APP.test_client()
HANDLE: MockHandle = APP.extensions["kaleyra_mock"]
SPEC = SpecIndex.load()
CONTROL_DOC = load_yaml(CONTROL_SPEC_PATH)

TOKENS = ["in", "na", "v1", "S1", "rcs", "agent", "agenttester", "testersbyagent", "wsgw", "48400", "48900", "__mock"]
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "TRACE", "OPTIONS", "HEAD"]
# The 5xx answers the spec documents: the only ones a request may get, and only when it asks.
DOCUMENTED_5XX = {name for op in SPEC.operations.values() for name, e in op.examples.items() if e.status >= 500}
# Header values as WSGI sees them: latin-1 text, so \x80-\xff stand for raw (often invalid UTF-8) bytes.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)
segment = st.one_of(
    st.sampled_from(TOKENS),
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="/?#%"),
        min_size=1,
        max_size=12,
    ),
)


def _check_envelope(status: int, headers: dict[str, str], body: bytes) -> None:
    assert b"Traceback" not in body
    if status >= 500:
        # Only a documented 5xx asked for by Prefer or a magic agent number.
        assert headers.get("X-Mock-Example") in DOCUMENTED_5XX, (status, body)
        # nothing is armed here, so a 5xx is asked for by one of the two ways a request can ask
        assert headers.get("X-Mock-Source") in {"prefer", "magic"}
    if status == 204 or not body:
        return
    doc = json.loads(body)
    if status >= 400:
        assert isinstance(doc, dict)
        assert {"code", "message", "data"} <= set(doc), doc
        assert isinstance(doc["data"]["error"], dict)


def _send(
    method: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query}
    for name, value in headers.items():
        if name.lower() == "content-type":
            environ["CONTENT_TYPE"] = value
        else:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    response = CLIENT.open("/", method=method, data=body, environ_overrides=environ)
    return response.status_code, dict(response.headers), response.get_data()


ROUTES = [
    "/v1/{sid}/rcs/agent/testersbyagent",
    "/v1/{sid}/rcs/agenttester/testersbyagent",
    "/wsgw/v1/agent/testersbyagent",
    "/v1/{sid}/rcs/agent/{agent}",
    "/v1/{sid}/rcs/agent/",
]
ascii_value = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%&="), min_size=1, max_size=10
)
value = st.one_of(st.sampled_from(["48400", "48900", "99404", ""]), ascii_value, header_text)


@st.composite
def paths(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        segments = draw(st.lists(segment, max_size=7))
        return "/" + "/".join(segments) + ("/" if segments and draw(st.booleans()) else "")
    prefix = draw(st.sampled_from(["", "/in", "/na", "/eu"]))
    route = draw(st.sampled_from(ROUTES))
    return prefix + route.format(sid=draw(st.one_of(st.just("S1"), ascii_value)), agent=draw(value) or "x")


def _mostly(usual: str, *others: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    """The usual value three times in five, else left out or something odd: deep paths get reached."""
    return st.one_of(st.just(usual), st.just(usual), st.just(usual), st.none(), *others)


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    chosen = {
        "api-key": draw(_mostly("k", header_text)),
        "Content-Type": draw(
            _mostly("application/json", st.sampled_from(["text/plain", "", "application/JSON"]), header_text)
        ),
        "Prefer": draw(
            st.one_of(
                st.none(), st.none(), st.sampled_from(["example=agent_not_found", "code=401", "code=200"]), header_text
            )
        ),
        "Host": draw(
            st.one_of(st.none(), st.none(), st.sampled_from([*SPEC.pod_hosts, "localhost:8080"]), header_text)
        ),
    }
    return {k: v for k, v in chosen.items() if v is not None}


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None
)
@given(
    method=st.one_of(st.sampled_from(["GET", "POST", "DELETE"]), st.sampled_from(METHODS)),
    path=paths(),
    query=st.lists(st.tuples(st.sampled_from(["agent_number", "x", ""]), value), max_size=3),
    headers=headers(),
    body=st.one_of(st.binary(max_size=64), st.just(b'{"agent_number": "48900"}')),
)
def _random_request(
    reached: set[int],
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
) -> None:
    query_string = "&".join(f"{k}={v}" for k, v in query)
    if path.startswith("/__mock"):
        path = "/x" + path  # the control plane is fuzzed on its own below
    HANDLE.store.reset()  # each request starts from the seed, whatever the one before it deleted
    before = HANDLE.store.dump().to_document()
    status, response_headers, response_body = _send(method, path, query_string, headers, body)
    reached.add(status)
    _check_envelope(status, response_headers, response_body)
    after = HANDLE.store.dump().to_document()
    if not (status == 200 and response_headers.get("X-Mock-Example") == "agent_deleted"):
        assert after == before, (method, path, status)
    HANDLE.store.reset()


def test_api__random_requests_get_a_clean_answer_leave_state_alone_and_reach_past_routing_and_auth() -> None:
    """A fuzzer that only ever hits 404 or 401 proves nothing; this one must reach the operations.

    Exactly these statuses, no more: bodies stay under 8 MiB (no 413), nothing stalls (no 408),
    and a 429 or 5xx is only given when asked for, which the drawn headers and numbers do not do.
    """
    reached: set[int] = set()
    _random_request(reached)
    assert reached == {200, 400, 401, 404, 405, 415}, sorted(reached)


# Every path of the control document, its parameters filled in: what the control fuzzer targets.
CONTROL_VALUES = {"pod": "in", "sid": "S1", "agent_number": "1", "id": "1", "tester_id": "t-1", "asset": "app.js"}
CONTROL_TARGETS = {
    template.format(**CONTROL_VALUES): template for template in CONTROL_DOC["paths"] if template.startswith("/__mock")
}
ORACLE_STORE = MemoryStore(StateData.from_document(default_seed_document(SPEC), state_validator(SPEC)))
ORACLE = ControlPlane(SPEC, ORACLE_STORE)
Call = Callable[[dict[str, str], Any], object]
# What each control operation does, called on the control plane itself: the oracle the HTTP answer must agree with.
CONTROL_CALLS: dict[str, Call] = {
    "health": lambda a, doc: ORACLE.health(),
    "reset": lambda a, doc: ORACLE.reset(),
    "getState": lambda a, doc: ORACLE.get_state(),
    "putState": lambda a, doc: ORACLE.put_state(doc),
    "getDefaultAccount": lambda a, doc: ORACLE.get_default_account(),
    "putDefaultAccount": lambda a, doc: ORACLE.put_default_account(doc),
    "deleteDefaultAccount": lambda a, doc: ORACLE.delete_default_account(),
    "getAccount": lambda a, doc: ORACLE.get_account(a["pod"], a["sid"]),
    "putAccount": lambda a, doc: ORACLE.put_account(a["pod"], a["sid"], doc),
    "deleteAccount": lambda a, doc: ORACLE.delete_account(a["pod"], a["sid"]),
    "putDefaultAgent": lambda a, doc: ORACLE.put_agent(None, None, a["agent_number"], doc),
    "removeDefaultAgent": lambda a, doc: ORACLE.remove_agent(None, None, a["agent_number"]),
    "addDefaultTester": lambda a, doc: ORACLE.add_tester(None, None, a["agent_number"], doc),
    "removeDefaultTester": lambda a, doc: ORACLE.remove_tester(None, None, a["agent_number"], a["tester_id"]),
    "putAgent": lambda a, doc: ORACLE.put_agent(a["pod"], a["sid"], a["agent_number"], doc),
    "removeAgent": lambda a, doc: ORACLE.remove_agent(a["pod"], a["sid"], a["agent_number"]),
    "addTester": lambda a, doc: ORACLE.add_tester(a["pod"], a["sid"], a["agent_number"], doc),
    "removeTester": lambda a, doc: ORACLE.remove_tester(a["pod"], a["sid"], a["agent_number"], a["tester_id"]),
    "listExamples": lambda a, doc: ORACLE.examples(),
    "listScenarios": lambda a, doc: ORACLE.list_armed("scenario"),
    "armScenario": lambda a, doc: ORACLE.arm_scenario(doc),
    "disarmScenarios": lambda a, doc: ORACLE.disarm("scenario", None),
    "disarmScenario": lambda a, doc: ORACLE.disarm("scenario", int(a["id"])),
    "listFaults": lambda a, doc: ORACLE.list_armed("fault"),
    "armFault": lambda a, doc: ORACLE.arm_fault(doc),
    "disarmFaults": lambda a, doc: ORACLE.disarm("fault", None),
    "disarmFault": lambda a, doc: ORACLE.disarm("fault", int(a["id"])),
    "getJournal": lambda a, doc: ORACLE.journal({}),
    "clearJournal": lambda a, doc: ORACLE.clear_journal(),
    "getControlSpec": lambda a, doc: ORACLE.document_bytes,
    "getDashboard": lambda a, doc: None,  # files of the package: nothing the control plane decides
    "getDashboardAsset": lambda a, doc: None,
}


def _expected_control_status(method: str, target: str, body: bytes) -> int:
    """The status the control plane owes this request, from the control document and the oracle."""
    op = CONTROL_DOC["paths"][CONTROL_TARGETS[target]].get(method.lower())
    if op is None:
        return 405
    if "requestBody" in op and strict_json(body) is INVALID_JSON:
        return 400
    ORACLE_STORE.reset()
    try:
        CONTROL_CALLS[op["operationId"]](CONTROL_VALUES, strict_json(body))
    except ControlError as refused:
        return refused.status
    return min(int(code) for code in op["responses"] if code.startswith("2"))


def test_control_oracle__covers_every_operation_of_the_control_document() -> None:
    documented = {
        op["operationId"] for item in CONTROL_DOC["paths"].values() for op in item.values() if isinstance(op, dict)
    }
    assert set(CONTROL_CALLS) == documented


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    target=st.sampled_from(sorted(CONTROL_TARGETS)),
    body=st.one_of(
        st.binary(max_size=32),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
            max_leaves=8,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_control__wrong_types_are_refused_in_the_envelope(method: str, target: str, body: bytes) -> None:
    HANDLE.store.reset()
    response = CLIENT.open(target, method=method, data=body, headers={"Content-Type": "application/json"})
    expected = _expected_control_status(method, target, body)
    assert response.status_code == expected, (method, target, body, response.get_data(as_text=True))
    if response.mimetype == "application/yaml":  # the control document itself, served as it is
        assert (method, response.data) == ("GET", ORACLE.document_bytes)
    elif response.mimetype in ("text/html", "text/javascript"):  # the dashboard's page and script
        assert (method, target) in (("GET", "/__mock/ui"), ("GET", "/__mock/ui/app.js"))
    else:
        _check_envelope(response.status_code, dict(response.headers), response.get_data())
    if expected >= 400:
        assert response.get_json()["code"] == f"MOCK{expected}"
    HANDLE.store.reset()


# (method, PATH_INFO, query, the example the mock answers). PATH_INFO is the path already
# decoded, so a "%2F" in it is the three characters, part of an agent number no account has.
BAD_REQUESTS = [
    ("GET", "/in/v1/\xff\xfe/rcs/agent/testersbyagent", "agent_number=48900", "bad_request"),  # invalid UTF-8 path
    ("GET", "/in/v1/S/rcs/agent/testersbyagent", "agent_number=%ff%fe", "bad_request"),  # and in the query
    ("DELETE", "/in/v1/../../etc/passwd", "", "not_found"),
    ("DELETE", "/in/v1/S/rcs/agent/..%2F..%2F48400", "", "agent_not_found"),
    ("DELETE", "/in/v1/S/rcs/agent/a%2Fb", "", "agent_not_found"),
    ("GET", "/in/v1/S/rcs/agent/testersbyagent", "agent_number=1&agent_number=2", "bad_request"),
    ("GET", "/in/v1/S/rcs/agent/testersbyagent", "agent_number=&agent_number=", "bad_request"),
    ("GET", "/in/v1/S/rcs/agent/testersbyagent", "agent_number=" + "9" * 100_000, "agent_not_found"),
    ("TRACE", "/in/v1/S/rcs/agent/48400", "", "method_not_allowed"),
    ("PATCH", "/in/v1/S/rcs/agent/testersbyagent", "", "method_not_allowed"),
    ("GET", "/v1/" + "a/" * 5000, "", "not_found"),
]


def _operation_of(path: str) -> str:
    """The spec's operation for a path of BAD_REQUESTS, by its shape (testers, delete, or neither)."""
    if "testersbyagent" in path:
        return "getTestersByAgent"
    return "deleteAgent"


@pytest.mark.parametrize(("method", "path", "query", "example"), BAD_REQUESTS)
def test_api__named_bad_requests_get_their_documented_4xx(method: str, path: str, query: str, example: str) -> None:
    HANDLE.store.reset()
    before = HANDLE.store.dump().to_document()
    status, headers, body = _send(method, path, query, {"api-key": "k", "Content-Type": "application/json"}, b"")
    documented = SPEC.shared.get(example) or SPEC.example(_operation_of(path), example)
    assert (status, headers.get("X-Mock-Example")) == (documented.status, example), body
    assert json.loads(body) == documented.value
    _check_envelope(status, headers, body)
    assert HANDLE.store.dump().to_document() == before


def test_post_testers_by_agent__huge_body_gets_413_in_the_envelope() -> None:
    status, headers, body = _send(
        "POST",
        "/in/v1/S/rcs/agent/testersbyagent",
        "",
        {"api-key": "k", "Content-Type": "application/json"},
        b"{" + b" " * (9 * 1024 * 1024) + b"}",
    )
    assert status == 413
    _check_envelope(status, headers, body)


@pytest.mark.parametrize(
    "prefer", ["example=nope", "code=abc", "code=404x", "example=testers, code=400", "code=99999999999"]
)
def test_get_testers_by_agent__prefer_it_cannot_honour_is_ignored_with_a_warning(prefer: str) -> None:
    """RFC 7240 section 2 (a MUST): ignored, never an error; the warning names the valid ones."""
    status, headers, body = _send(
        "GET",
        "/in/v1/S/rcs/agent/testersbyagent",
        "agent_number=48900",
        {"api-key": "k", "Content-Type": "application/json", "Prefer": prefer},
        b"",
    )
    assert status == 200
    assert json.loads(body) == SpecIndex.load().example("getTestersByAgent", "testers").value
    warning = dict(headers)["X-Mock-Warning"]
    assert "testers" in warning and "400" in warning
