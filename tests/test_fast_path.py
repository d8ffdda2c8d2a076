"""The fast path (mock_server/web/_fast.py) answers exactly as Flask's path does, and takes the
requests it was built for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.core import (
    MemoryStore,
    SpecIndex,
    SqliteStore,
    StateData,
    Store,
    default_seed_document,
    state_validator,
)
from mock_server.web import create_app

SPEC = SpecIndex.load()
SEED = StateData.from_document(default_seed_document(SPEC), state_validator(SPEC))
HEADERS = {"api-key": "k", "Content-Type": "application/json"}


def _app(*, fast_path: bool, store: Store | None = None) -> Flask:
    return create_app(store or MemoryStore(SEED), spec=SPEC, fast_path=fast_path)


Request = tuple[str, str, str, dict[str, str]]


def _send(app: Flask, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
    method, path, query, headers = request
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query}
    for name, value in headers.items():
        key = "CONTENT_TYPE" if name == "Content-Type" else "HTTP_" + name.upper().replace("-", "_")
        environ[key] = value
    response = app.test_client().open("/", method=method, environ_overrides=environ)
    return response.status_code, sorted(response.headers.items()), response.get_data()


def _journal(app: Flask) -> list[dict[str, Any]]:
    store = app.extensions["kaleyra_mock"].store
    entries = store.journal(pod=None, operation=None, status=None, limit=10_000)
    return [{k: v for k, v in e.items() if k not in {"time", "id"}} for e in entries]


# PATH_INFO as WSGI hands it over: latin-1 text, so \x80-\xff stand for raw bytes (UTF-8 or not).
odd = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="/?#"), max_size=6)
sid = st.one_of(st.sampled_from(["S1", "in", "na", "testersbyagent", "a.b"]), odd.filter(bool))
agent = st.one_of(st.sampled_from(["48900", "48400", "99404", "99502", "99429", "testersbyagent", "x"]), odd)
query_value = st.one_of(st.sampled_from(["48900", "48400", "99601", "", "%FF", "a+b", "%C3%A9"]), odd)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    prefix = draw(st.sampled_from(["", "/in", "/na", "/eu", "//"]))
    route = draw(
        st.sampled_from(
            [
                "/v1/{sid}/rcs/agent/testersbyagent",
                "/v1/{sid}/rcs/agenttester/testersbyagent",
                "/wsgw/v1/agent/testersbyagent",
                "/v1/{sid}/rcs/agent/{agent}",
                "/v1/{sid}/rcs/agent/",
                "/v1/{sid}/rcs/agent",
                "/__mock/health",
            ]
        )
    )
    path = prefix + route.format(sid=draw(sid), agent=draw(agent)) + draw(st.sampled_from(["", "", "", "/"]))
    pairs = draw(st.lists(st.tuples(st.sampled_from(["agent_number", "x", ""]), query_value), max_size=3))
    query = "&".join(f"{k}={v}" for k, v in pairs) + draw(st.sampled_from(["", "", "&", "&&x"]))
    headers = {
        "api-key": draw(st.sampled_from(["k", "k", " k ", "", "wrong"])),
        "Content-Type": draw(st.sampled_from(["application/json", "application/json", "text/plain", ""])),
        "Prefer": draw(st.sampled_from(["", "", "example=agent_not_found", "code=429", "nonsense"])),
        "Host": draw(st.sampled_from(["", "rcs-api.na.kaleyra.ai", "api.in.kaleyra.io", "localhost"])),
    }
    method = draw(st.sampled_from(["GET", "GET", "DELETE", "DELETE", "POST", "HEAD", "PUT"]))
    return method, path, query, {k: v for k, v in headers.items() if v}


@settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(requests(), min_size=1, max_size=12))
def test_fast_path__answers_byte_for_byte_as_flask_does_and_leaves_the_same_state(batch: list[Request]) -> None:
    fast, flask_only = _app(fast_path=True), _app(fast_path=False)
    for request in batch:
        assert _send(fast, request) == _send(flask_only, request), request
    assert fast.extensions["kaleyra_mock"].store.dump() == flask_only.extensions["kaleyra_mock"].store.dump()
    assert _journal(fast) == _journal(flask_only)


@pytest.mark.parametrize(
    "query",
    [
        "agent_number=&agent_number=48900",
        "agent_number=48900&agent_number=",
        "agent_number",
        "&agent_number=48900&",
        "agent_number=48900;x=1",
        "AGENT_NUMBER=48900",
        "agent_number=%2548900",
        "agent_number=4890%30",
        "agent_number=+48900",
        "agent_number=%C3%A9",
        "agent_number=99601",
    ],
)
@pytest.mark.parametrize("route", ["/v1/S1/rcs/agent/testersbyagent", "/wsgw/v1/agent/testersbyagent"])
def test_fast_path__reads_tricky_queries_as_flask_does(route: str, query: str) -> None:
    request: Request = ("GET", route, query, HEADERS)
    fast, flask_only = _app(fast_path=True), _app(fast_path=False)
    assert _send(fast, request) == _send(flask_only, request)
    assert _journal(fast) == _journal(flask_only)


@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(requests(), min_size=1, max_size=12))
def test_fast_path__answers_as_flask_does_on_the_sqlite_store_the_server_uses(
    tmp_path_factory: pytest.TempPathFactory, batch: list[Request]
) -> None:
    folder = tmp_path_factory.mktemp("stores")
    stores = [SqliteStore(folder / "fast.sqlite3", seed=SEED), SqliteStore(folder / "flask.sqlite3", seed=SEED)]
    try:
        fast, flask_only = _app(fast_path=True, store=stores[0]), _app(fast_path=False, store=stores[1])
        for request in batch:
            assert _send(fast, request) == _send(flask_only, request), request
        assert stores[0].dump() == stores[1].dump()
        assert _journal(fast) == _journal(flask_only)
    finally:
        for store in stores:
            store.close()


def _counting(app: Flask) -> list[str]:
    """Paths that reached Flask itself, behind the fast path."""
    seen: list[str] = []
    middleware = app.wsgi_app
    inner: Callable[..., Iterable[bytes]] = middleware.app  # type: ignore[attr-defined]

    def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    middleware.app = counted  # type: ignore[attr-defined]
    return seen


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/S1/rcs/agent/testersbyagent?agent_number=48900"),
        ("GET", "/na/v1/S1/rcs/agenttester/testersbyagent?agent_number=48900"),
        ("GET", "/wsgw/v1/agent/testersbyagent?agent_number=48900"),
        ("DELETE", "/in/v1/S1/rcs/agent/48400"),
        ("DELETE", "/v1/S1/rcs/agent/"),
    ],
)
def test_fast_path__takes_plain_get_and_delete_requests(method: str, path: str) -> None:
    app = _app(fast_path=True)
    reached_flask = _counting(app)
    response = app.test_client().open(path, method=method, headers=HEADERS)
    assert response.status_code in {200, 400}
    assert response.headers["X-Mock-Source"] in {"state", "routing"}
    assert reached_flask == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/S1/rcs/agent/testersbyagent"),  # a body: Flask reads and bounds it
        ("HEAD", "/v1/S1/rcs/agent/testersbyagent?agent_number=48900"),
        ("DELETE", "/v1/S1/rcs/agent/testersbyagent"),  # 405 with Allow
        ("GET", "/v1/S1/rcs/agent/48900"),  # 405
        ("GET", "/v1/S1/rcs/agent/testersbyagent?agent_number=%FF"),  # not UTF-8
        ("GET", "/v2/nothing"),  # 404
        ("GET", "/__mock/health"),  # the control plane
    ],
)
def test_fast_path__leaves_everything_else_to_flask(method: str, path: str) -> None:
    app = _app(fast_path=True)
    reached_flask = _counting(app)
    response = app.test_client().open(path, method=method, headers=HEADERS, data=b"{}" if method == "POST" else None)
    assert response.status_code < 500
    assert reached_flask == [path.split("?")[0]]


def test_fast_path__a_crash_in_the_engine_is_a_mock500_in_the_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(fast_path=True)
    engine = app.extensions["kaleyra_mock"].engine

    def broken(_request: object) -> None:
        raise RuntimeError("a bug in the mock")

    monkeypatch.setattr(engine, "handle", broken)
    response = app.test_client().get("/v1/S1/rcs/agent/testersbyagent?agent_number=48900", headers=HEADERS)
    assert response.status_code == 500
    body = response.get_json()
    assert body["code"] == "MOCK500"
    assert body["error"] == {"error_code": "MOCK_INTERNAL_ERROR", "error_message": "RuntimeError"}
    assert b"a bug in the mock" not in response.get_data()


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.text(alphabet="ab=&;+%2F ", max_size=16))
def test_fast_path__splits_a_query_as_werkzeug_does(query: str) -> None:
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request as WerkzeugRequest

    from mock_server.web._fast import _parse_query

    environ = EnvironBuilder(path="/").get_environ()
    environ["QUERY_STRING"] = query
    expected = list(WerkzeugRequest(environ).args.items(multi=True))
    assert _parse_query(query) == expected
