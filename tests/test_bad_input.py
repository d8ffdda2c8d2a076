"""Bad input never earns a 5xx or a traceback, and never changes state."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.core import SpecIndex
from mock_server.web import MockHandle, create_app

APP: Flask = create_app()
CLIENT: FlaskClient = APP.test_client()
HANDLE: MockHandle = APP.extensions["kaleyra_mock"]

TOKENS = ["in", "na", "v1", "S1", "rcs", "agent", "agenttester", "testersbyagent", "wsgw", "48400", "48900", "__mock"]
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "TRACE", "OPTIONS", "HEAD"]
STATUSES: set[int] = set()  # what the fuzzer reached, checked right after it
DOCUMENTED_5XX = {"gateway_error", "internal_server_error"}
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
        assert headers.get("X-Mock-Source") in {"prefer", "magic"}
    if status == 204 or not body:
        return
    doc = json.loads(body)
    if status >= 400:
        assert isinstance(doc, dict)
        assert {"code", "message", "error"} <= set(doc), doc
        assert isinstance(doc["error"], dict)


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
            st.one_of(st.none(), st.none(), st.sampled_from(["rcs-api.na.kaleyra.ai", "localhost:8080"]), header_text)
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
def test_api__random_requests_get_a_clean_answer_and_leave_state_alone(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
) -> None:
    query_string = "&".join(f"{k}={v}" for k, v in query)
    if path.startswith("/__mock"):
        path = "/x" + path  # the control plane is fuzzed on its own below
    before = HANDLE.store.dump().to_document()
    status, response_headers, response_body = _send(method, path, query_string, headers, body)
    STATUSES.add(status)
    _check_envelope(status, response_headers, response_body)
    after = HANDLE.store.dump().to_document()
    if not (status == 200 and response_headers.get("X-Mock-Example") == "agent_deleted"):
        assert after == before, (method, path, status)
    else:
        HANDLE.store.reset()


def test_api__fuzzer_reached_past_routing_and_auth() -> None:
    """A fuzzer that only ever hits 404 or 401 proves nothing; this one must reach the operations."""
    if not STATUSES:
        pytest.skip("run together with the fuzz test above")
    assert {200, 400, 401, 404, 405, 415} <= STATUSES, sorted(STATUSES)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    target=st.sampled_from(
        [
            "/__mock/state",
            "/__mock/scenarios",
            "/__mock/faults",
            "/__mock/default-account",
            "/__mock/accounts/in/S1",
            "/__mock/accounts/na/S1/agents/1",
            "/__mock/accounts/in/S1/agents/1/testers",
            "/__mock/journal",
        ]
    ),
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
    assert response.status_code < 500
    _check_envelope(response.status_code, dict(response.headers), response.get_data())
    HANDLE.store.reset()


BAD_REQUESTS = [
    ("GET", "/in/v1/\xff\xfe/rcs/agent/testersbyagent", "agent_number=48900"),  # invalid UTF-8 in the path
    ("GET", "/in/v1/S/rcs/agent/testersbyagent", "agent_number=%ff%fe"),  # and in the query
    ("DELETE", "/in/v1/../../etc/passwd", ""),
    ("DELETE", "/in/v1/S/rcs/agent/..%2F..%2F48400", ""),
    ("DELETE", "/in/v1/S/rcs/agent/a%2Fb", ""),
    ("GET", "/in/v1/S/rcs/agent/testersbyagent", "agent_number=1&agent_number=2"),
    ("GET", "/in/v1/S/rcs/agent/testersbyagent", "agent_number=&agent_number="),
    ("GET", "/in/v1/S/rcs/agent/testersbyagent", "agent_number=" + "9" * 100_000),
    ("TRACE", "/in/v1/S/rcs/agent/48400", ""),
    ("PATCH", "/in/v1/S/rcs/agent/testersbyagent", ""),
    ("GET", "/" + "a/" * 5000, ""),
]


@pytest.mark.parametrize(("method", "path", "query"), BAD_REQUESTS)
def test_api__named_bad_requests_get_a_4xx(method: str, path: str, query: str) -> None:
    before = HANDLE.store.dump().to_document()
    status, headers, body = _send(method, path, query, {"api-key": "k", "Content-Type": "application/json"}, b"")
    assert 400 <= status < 500, (status, body)
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
