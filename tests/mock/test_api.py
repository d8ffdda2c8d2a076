"""The mock's API, in process: a fresh Flask app (and so a fresh in-memory store) per test.

Expected bodies never come from the mock's own index: they are the spec's named examples,
walked out of the raw openapi.yaml by tests/_spec.py, or the vendor documents' samples, parsed
out of the fixture text. Decision order under test: auth -> Content-Type -> armed scenario ->
Prefer -> magic agent number -> natural state.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from mock_server.core import MockConfig, SpecIndex, StateData
from mock_server.web import create_app
from tests._spec import DOCS, Spec

# -- the spec, walked by the tests' own walker ------------------------------------------------

SPEC = Spec.load()
DOC = {op_id: SPEC.examples(op_id) for op_id in SPEC.operations}
SHARED = SPEC.shared
CANONICAL = SPEC.facade_operations
TESTERS = DOC["getTestersByAgent"]["testers"].value

# -- the vendor documents -------------------------------------------------------------------

DELETE_DOC = "kaleyra-rcs-delete-an-agent.txt"
TESTERS_DOC = "kaleyra-rcs-get-tester-by-agent.txt"


def doc_text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def doc_sample_body(name: str) -> Any:
    text = doc_text(name)
    start = text.index("The following is the sample success response:")
    start = text.index("\n", start)
    value, _ = json.JSONDecoder().raw_decode(text[start:].lstrip())
    return value


def doc_sample_request(name: str, method: str) -> tuple[SplitResult, dict[str, str]]:
    """The sample curl of a document (not its `<placeholder>` template): its URL and headers."""
    text = doc_text(name)
    block = text[text.index("The following is the sample request format") : text.index("URL Parameters")]
    found = re.search(rf"--request {method} [\"'](https://[^\"']+)", block)
    assert found is not None
    headers = {k.strip(): v.strip() for k, v in re.findall(r"--header '([^:']+):([^']*)'", block)}
    return urlsplit(found.group(1)), headers


def doc_failure_table() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    text = doc_text(DELETE_DOC)
    for line in text[text.index("Failure Responses") :].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1].isdigit():
            rows[cells[0]] = cells[1:]
    return rows


DOC_TESTERS = doc_sample_body(TESTERS_DOC)
DOC_DELETED = doc_sample_body(DELETE_DOC)
HOSTS = SPEC.pod_hosts
OTHER_POD = {"in": "na", "na": "in"}

# -- requests ---------------------------------------------------------------------------------

HEADERS = SPEC.request_headers()
TESTERS_ROUTES = SPEC.paths_ending("/testersbyagent")
# The agent numbers the spec's examples name (`x-mock-magic-agent`), any SID, both pods.
MAGIC = {op_id: SPEC.magic_agents([op_id]) for op_id in CANONICAL}
AGENT_FOR = {name: agent for agent, name in SPEC.magic_agents().items()}


def send(
    client: FlaskClient,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    without: Iterable[str] = (),
    **kwargs: Any,
) -> TestResponse:
    sent = {**HEADERS, **(headers or {})}
    for name in without:
        del sent[name]
    return client.open(path, method=method, headers=sent, **kwargs)


def get_testers(
    client: FlaskClient, agent: str | None = "48900", *, at: str = "/in", sid: str = "S", **kwargs: Any
) -> TestResponse:
    query = "" if agent is None else f"?agent_number={agent}"
    return send(client, "GET", f"{at}/v1/{sid}/rcs/agent/testersbyagent{query}", **kwargs)


def delete_agent(
    client: FlaskClient, agent: str | None = "48400", *, at: str = "/in", sid: str = "S", **kwargs: Any
) -> TestResponse:
    return send(client, "DELETE", f"{at}/v1/{sid}/rcs/agent/{agent or ''}", **kwargs)


CALL: dict[str, Callable[..., TestResponse]] = {"deleteAgent": delete_agent, "getTestersByAgent": get_testers}
# What a plain request of each operation answers from the default seed: its success example,
# for the agent number the spec gives as the parameter's example (the documents' samples).
NATURAL_OK = {op: next(ex.name for ex in DOC[op].values() if ex.status < 300) for op in CANONICAL}
DEFAULT_AGENT = {op: SPEC.operation(op).parameter_example("agent_number") for op in CANONICAL}


def control(client: FlaskClient, method: str, path: str, body: Any = None) -> Any:
    resp = client.open(f"/__mock{path}", method=method, json=body)
    assert resp.status_code in (200, 201), resp.get_data(as_text=True)
    return resp.get_json()


def put_account(client: FlaskClient, sid: str, pod: str = "in", **doc: Any) -> None:
    control(client, "PUT", f"/accounts/{pod}/{sid}", doc)


def arm(client: FlaskClient, scenario: str, times: int | None = 1, **match: str) -> int:
    return int(control(client, "POST", "/scenarios", {"scenario": scenario, "times": times, "match": match})["id"])


def armed(client: FlaskClient) -> list[dict[str, Any]]:
    return list(control(client, "GET", "/scenarios"))


def body(resp: TestResponse) -> Any:
    return json.loads(resp.get_data())


def assert_example(resp: TestResponse, op_id: str, name: str, source: str | None = None) -> None:
    expected = DOC[op_id][name]
    assert (resp.status_code, body(resp)) == (expected.status, expected.value), resp.get_data(as_text=True)
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["X-Mock-Example"] == name
    assert resp.headers["X-Mock-Source"]
    if source is not None:
        assert resp.headers["X-Mock-Source"] == source
    for header, value in expected.headers.items():
        assert resp.headers.get(header) == value


def assert_shared(resp: TestResponse, name: str) -> None:
    expected = SHARED[name]
    assert (resp.status_code, body(resp)) == (expected.status, expected.value)
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["X-Mock-Source"] == "routing"
    assert resp.headers["X-Mock-Example"] == name
    assert "Location" not in resp.headers


def assert_agent_present(client: FlaskClient, agent: str, *, at: str = "/in", sid: str = "S", **kwargs: Any) -> None:
    resp = get_testers(client, agent, at=at, sid=sid, **kwargs)
    assert resp.status_code == 200, f"agent {agent} gone from {at} {sid}: {resp.get_data(as_text=True)}"


def assert_agent_gone(client: FlaskClient, agent: str, *, at: str = "/in", sid: str = "S") -> None:
    assert_example(get_testers(client, agent, at=at, sid=sid), "getTestersByAgent", "agent_not_found", "state")


def op_params(ops: Iterable[str] = CANONICAL, skip: Iterable[str] = ()) -> list[Any]:
    return [pytest.param(op, name, id=f"{op}__{name}") for op in ops for name in DOC[op] if name not in set(skip)]


def natural(client: FlaskClient, op_id: str, name: str) -> TestResponse:
    """Reach a documented example through the state alone: no scenario, no Prefer, no magic number."""
    call = CALL[op_id]
    if name in ("agent_deleted", "testers"):
        return call(client)
    if name == "agent_not_found":
        return call(client, "12345")
    if name == "missing_agent_number":
        return call(client, None)
    if name == "bad_request" and op_id == "deleteAgent":  # a path that is not UTF-8
        return client.delete("/in/v1/S/rcs/agent/%FF", headers=HEADERS)
    if name == "bad_request":
        return call(client, "48900&agent_number=48900")
    if name == "not_found" and op_id == "deleteAgent":  # an encoded slash: decoded, no operation's path
        return client.delete("/in/v1/S/rcs/agent/48%2F400", headers=HEADERS)
    if name == "not_found":
        return client.get("/in/v1/S%2FT/rcs/agent/testersbyagent?agent_number=48900", headers=HEADERS)
    if name == "rcs_not_enabled":
        put_account(client, "OFF", rcs_enabled=False, agents={"1": []})
        return call(client, "1", sid="OFF")
    if name == "missing_api_key":
        return call(client, without=["api-key"])
    if name == "invalid_api_key":
        put_account(client, "KEYED", api_keys=["secret-1"])
        return call(client, sid="KEYED", headers={"api-key": "wrong"})
    if name == "unsupported_media_type":
        return call(client, headers={"Content-Type": "text/plain"})
    if name == "method_not_allowed" and op_id == "deleteAgent":
        # The only URL of deleteAgent's shape that is not deleteAgent: the testers path.
        return client.delete("/in/v1/S/rcs/agent/testersbyagent", headers=HEADERS)
    raise LookupError(name)


NATURAL = {
    "deleteAgent": {
        "agent_deleted",
        "agent_not_found",
        "missing_agent_number",
        "rcs_not_enabled",
        "missing_api_key",
        "invalid_api_key",
        "unsupported_media_type",
        "method_not_allowed",
        "bad_request",
        "not_found",
    },
    "getTestersByAgent": {
        "testers",
        "agent_not_found",
        "missing_agent_number",
        "rcs_not_enabled",
        "bad_request",
        "missing_api_key",
        "invalid_api_key",
        "unsupported_media_type",
        "not_found",
    },
}


# -- the spec and the documents agree -------------------------------------------------------


def test_spec__documented_samples_are_the_examples() -> None:
    assert DOC_TESTERS == TESTERS
    assert DOC["deleteAgent"]["agent_deleted"].value == DOC_DELETED
    assert DOC_DELETED["message"] == "Agent deleted succesfully"


def test_seed__holds_the_sample_agents_and_every_magic_agent(seed_document: dict[str, Any], seed: StateData) -> None:
    """What the natural-state tests below rely on: the testers sample under the GET's example
    agent, none under the DELETE's, and each magic agent the raw spec names."""
    agents = {DEFAULT_AGENT["getTestersByAgent"]: TESTERS, DEFAULT_AGENT["deleteAgent"]: []}
    assert seed_document["default_account"]["agents"] == agents
    assert seed.default_account is not None
    assert seed.default_account.agents == agents
    assert seed_document["magic_agents"] == SPEC.magic_agents()


def test_spec__index_matches_the_raw_document(spec_index: SpecIndex) -> None:
    for op_id, examples in DOC.items():
        indexed = spec_index.operations[op_id].examples
        assert list(indexed) == list(examples), op_id
        for name, ex in examples.items():
            assert (indexed[name].status, indexed[name].value) == (ex.status, ex.value), (op_id, name)


# -- 1. golden: the documents' sample requests ----------------------------------------------

GOLDEN_TARGETS = [
    *(pytest.param(host, "", id=host) for host in HOSTS),
    pytest.param(None, "/in", id="prefix-in"),
    pytest.param(None, "/na", id="prefix-na"),
]
GOLDEN_SIDS = [pytest.param(None, id="doc-sid"), pytest.param("AnyOtherSid-42", id="other-sid")]


def _golden(url: SplitResult, host: str | None, prefix: str, sid: str | None) -> tuple[str, dict[str, str]]:
    path = url.path if sid is None else re.sub(r"^/v1/[^/]+/", f"/v1/{sid}/", url.path)
    return prefix + path + (f"?{url.query}" if url.query else ""), ({"Host": host} if host else {})


@pytest.mark.parametrize("sid", GOLDEN_SIDS)
@pytest.mark.parametrize(("host", "prefix"), GOLDEN_TARGETS)
def test_get_testers_by_agent__golden(client: FlaskClient, host: str | None, prefix: str, sid: str | None) -> None:
    url, doc_headers = doc_sample_request(TESTERS_DOC, "GET")
    path, headers = _golden(url, host, prefix, sid)
    assert "agent_number=48900" in path
    resp = client.get(path, headers={**doc_headers, **headers})
    assert resp.status_code == 200
    assert body(resp) == DOC_TESTERS
    assert resp.get_data() == json.dumps(DOC_TESTERS, separators=(",", ":"), ensure_ascii=False).encode()
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["X-Mock-Source"] == "state"
    assert resp.headers["X-Mock-Example"] == "testers"


@pytest.mark.parametrize("sid", GOLDEN_SIDS)
@pytest.mark.parametrize(("host", "prefix"), GOLDEN_TARGETS)
def test_delete_agent__golden(client: FlaskClient, host: str | None, prefix: str, sid: str | None) -> None:
    url, doc_headers = doc_sample_request(DELETE_DOC, "DELETE")
    path, headers = _golden(url, host, prefix, sid)
    assert path.endswith("/rcs/agent/48400")
    resp = client.delete(path, headers={**doc_headers, **headers})
    assert resp.status_code == 200
    assert body(resp) == DOC_DELETED
    assert resp.get_data() == json.dumps(DOC_DELETED, separators=(",", ":"), ensure_ascii=False).encode()
    assert b"succesfully" in resp.get_data()
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["X-Mock-Source"] == "state"
    assert resp.headers["X-Mock-Example"] == "agent_deleted"


@pytest.mark.parametrize(
    ("row", "name"),
    [
        ("Missing Agent Number", "missing_agent_number"),
        ("Agent Not Found", "agent_not_found"),
        ("RCS Not Enabled", "rcs_not_enabled"),
        ("Gateway Error", "gateway_error"),
        ("Internal Server Error", "internal_server_error"),
    ],
)
def test_delete_agent__failure_table(client: FlaskClient, row: str, name: str) -> None:
    status, code, message, constant, error_message = doc_failure_table()[row]
    resp = delete_agent(client, headers={"Prefer": f"example={name}"})
    assert resp.status_code == int(status)
    got = body(resp)
    assert (got["code"], got["message"]) == (code, message)
    assert got["data"] == {"error": {"error_code": constant, "error_message": error_message}}


# -- 2. state ---------------------------------------------------------------------------------


def test_delete_agent__agent_not_found(client: FlaskClient) -> None:
    assert_example(delete_agent(client), "deleteAgent", "agent_deleted", "state")
    assert_example(delete_agent(client), "deleteAgent", "agent_not_found", "state")
    assert_example(delete_agent(client), "deleteAgent", "agent_not_found", "state")


@pytest.mark.parametrize("agent", ["48900", "48400"])
def test_get_testers_by_agent__agent_not_found_after_delete(client: FlaskClient, agent: str) -> None:
    assert_agent_present(client, agent)
    assert_example(delete_agent(client, agent), "deleteAgent", "agent_deleted", "state")
    assert_agent_gone(client, agent)


@pytest.mark.parametrize("pod", ["in", "na"])
def test_delete_agent__pod_isolation(client: FlaskClient, pod: str) -> None:
    other = OTHER_POD[pod]
    assert_example(delete_agent(client, "48900", at=f"/{pod}"), "deleteAgent", "agent_deleted", "state")
    assert_agent_gone(client, "48900", at=f"/{pod}")
    assert body(get_testers(client, "48900", at=f"/{other}")) == TESTERS
    assert_example(delete_agent(client, "48900", at=f"/{other}"), "deleteAgent", "agent_deleted", "state")


def test_delete_agent__sid_isolation(client: FlaskClient) -> None:
    assert_example(delete_agent(client, sid="S1"), "deleteAgent", "agent_deleted", "state")
    assert_agent_gone(client, "48400", sid="S1")
    assert body(get_testers(client, "48400", sid="S2")) == []
    assert_example(delete_agent(client, sid="S2"), "deleteAgent", "agent_deleted", "state")
    assert_example(delete_agent(client, sid="S1"), "deleteAgent", "agent_not_found", "state")


@pytest.mark.parametrize("host", list(HOSTS))
def test_delete_agent__host_beats_path_prefix(client: FlaskClient, host: str) -> None:
    pod = HOSTS[host]
    other = OTHER_POD[pod]
    resp = delete_agent(client, at=f"/{other}", headers={"Host": host})
    assert_example(resp, "deleteAgent", "agent_deleted", "state")
    assert_agent_gone(client, "48400", at=f"/{pod}")
    assert_agent_present(client, "48400", at=f"/{other}")
    # Reading through the host, whatever the prefix says, sees the host's pod.
    resp = get_testers(client, "48400", at=f"/{other}", headers={"Host": host})
    assert_example(resp, "getTestersByAgent", "agent_not_found", "state")


@pytest.mark.parametrize(
    ("config", "pod"),
    [
        pytest.param(None, "in", id="default-in"),
        pytest.param(MockConfig(default_pod="in"), "in", id="config-in"),
        pytest.param(MockConfig(default_pod="na"), "na", id="config-na"),
    ],
)
def test_delete_agent__default_pod_of_unprefixed_path(config: MockConfig | None, pod: str) -> None:
    client = create_app(config=config).test_client()
    assert_example(delete_agent(client, at=""), "deleteAgent", "agent_deleted", "state")
    assert_agent_gone(client, "48400", at=f"/{pod}")
    assert_agent_present(client, "48400", at=f"/{OTHER_POD[pod]}")
    assert_agent_gone(client, "48400", at="")


@pytest.mark.parametrize("at", ["", "/in", "/na"])
@pytest.mark.parametrize("tail", ["/", ""])
def test_delete_agent__missing_agent_number(client: FlaskClient, at: str, tail: str) -> None:
    before = control(client, "GET", "/state")
    resp = send(client, "DELETE", f"{at}/v1/S/rcs/agent{tail}")
    assert_example(resp, "deleteAgent", "missing_agent_number", "state")
    assert control(client, "GET", "/state") == before


@pytest.mark.parametrize("query", ["", "?agent_number=", "?other=1", "?agent_number"])
@pytest.mark.parametrize("route", TESTERS_ROUTES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_get_testers_by_agent__missing_agent_number(client: FlaskClient, method: str, route: str, query: str) -> None:
    resp = send(client, method, "/in" + route.format(sid="S") + query)
    assert_example(resp, "getTestersByAgent", "missing_agent_number", "state")


@pytest.mark.parametrize("query", ["agent_number=48900&agent_number=48900", "agent_number=&agent_number=48900"])
@pytest.mark.parametrize("route", TESTERS_ROUTES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_get_testers_by_agent__bad_request(client: FlaskClient, method: str, route: str, query: str) -> None:
    resp = send(client, method, f"/in{route.format(sid='S')}?{query}")
    assert_example(resp, "getTestersByAgent", "bad_request", "state")


@pytest.mark.parametrize("op_id", CANONICAL)
def test_rcs_not_enabled(client: FlaskClient, op_id: str) -> None:
    put_account(client, "OFF", rcs_enabled=False, agents={"1": []})
    assert_example(CALL[op_id](client, "1", sid="OFF"), op_id, "rcs_not_enabled", "state")
    assert control(client, "GET", "/accounts/in/OFF")["agents"] == {"1": []}
    # The same SID on the other pod is another account, served from the default seed.
    assert_example(CALL[op_id](client, at="/na", sid="OFF"), op_id, NATURAL_OK[op_id], "state")


def test_get_testers_by_agent__no_testers(client: FlaskClient) -> None:
    resp = get_testers(client, "48400")
    assert resp.status_code == 200
    assert resp.get_data() == b"[]"
    assert resp.headers["Content-Type"] == "application/json"
    put_account(client, "ACC", agents={"7": [], "8": TESTERS})
    assert body(get_testers(client, "7", sid="ACC")) == []
    assert body(get_testers(client, "8", sid="ACC")) == TESTERS


# -- 3. every documented variant --------------------------------------------------------------


@pytest.mark.parametrize("at", ["", "/in", "/na"])
@pytest.mark.parametrize("route", TESTERS_ROUTES)
@pytest.mark.parametrize(("method", "how"), [("GET", "query"), ("POST", "query"), ("POST", "body")])
def test_get_testers_by_agent__variants(client: FlaskClient, at: str, route: str, method: str, how: str) -> None:
    path = at + route.format(sid="S")
    if how == "query":
        resp = send(client, method, path + "?agent_number=48900")
    else:
        resp = send(client, method, path, data=json.dumps({"agent_number": "48900"}))
    assert resp.status_code == 200
    assert body(resp) == DOC_TESTERS
    assert resp.headers["X-Mock-Source"] == "state"
    assert resp.headers["X-Mock-Example"] == "testers"


@pytest.mark.parametrize("route", TESTERS_ROUTES)
def test_post_testers_by_agent__empty_query_is_missing_even_with_a_body(client: FlaskClient, route: str) -> None:
    """The query breaks minLength: the body is no fallback for it (schemathesis ST201)."""
    resp = send(
        client, "POST", "/in" + route.format(sid="S") + "?agent_number=", data=json.dumps({"agent_number": "48900"})
    )
    assert_example(resp, "postTestersByAgent", "missing_agent_number", "state")


@pytest.mark.parametrize("data", [b"not json", b"{", b"agent_number=48900"])
@pytest.mark.parametrize("route", TESTERS_ROUTES)
def test_post_testers_by_agent__invalid_json(client: FlaskClient, route: str, data: bytes) -> None:
    resp = send(client, "POST", "/in" + route.format(sid="S"), data=data)
    assert_example(resp, "postTestersByAgent", "invalid_json", "state")
    assert body(resp)["code"] == "RCS701"


@pytest.mark.parametrize("route", TESTERS_ROUTES)
def test_post_testers_by_agent__agent_number_from_body_is_looked_up(client: FlaskClient, route: str) -> None:
    path = "/in" + route.format(sid="S")
    for agent, name in (
        ("48400", None),
        ("12345", "agent_not_found"),
        (AGENT_FOR["agent_not_found"], "agent_not_found"),
    ):
        resp = send(client, "POST", path, data=json.dumps({"agent_number": agent}))
        if name is None:
            assert (resp.status_code, body(resp)) == (200, [])
        else:
            assert_example(resp, "postTestersByAgent", name)
    resp = send(client, "POST", path, data=json.dumps({"agent_number": ""}))
    assert_example(resp, "postTestersByAgent", "missing_agent_number", "state")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_get_testers_by_agent_wsgw__account_of_the_api_key(client: FlaskClient, method: str) -> None:
    tester = {**TESTERS[0], "phoneno": "1555000111", "agent_no": "777"}
    put_account(client, "WS", api_keys=["wkey"], agents={"777": [tester]})

    def wsgw(agent: str, key: str, at: str = "/in") -> TestResponse:
        return send(client, method, f"{at}/wsgw/v1/agent/testersbyagent?agent_number={agent}", {"api-key": key})

    assert body(wsgw("777", "wkey")) == [tester]
    assert_example(wsgw("48900", "wkey"), "getTestersByAgentWsgw", "agent_not_found", "state")
    # Any other key: the default account.
    assert body(wsgw("48900", "k")) == TESTERS
    assert_example(wsgw("777", "k"), "getTestersByAgentWsgw", "agent_not_found", "state")
    # The key's account is the one deletes on its SID act on.
    assert_example(delete_agent(client, "777", sid="WS", headers={"api-key": "wkey"}), "deleteAgent", "agent_deleted")
    assert_example(wsgw("777", "wkey"), "getTestersByAgentWsgw", "agent_not_found", "state")
    # The key belongs to an IN account only: on NA it is just a key, served by the default account.
    assert body(wsgw("48900", "wkey", at="/na")) == TESTERS


# -- 4. each scenario by each trigger ---------------------------------------------------------


@pytest.mark.parametrize(("op_id", "name"), op_params())
def test_scenario__armed(client: FlaskClient, op_id: str, name: str) -> None:
    arm(client, name, times=2, pod="in", sid="S", operation=op_id, agent_number=DEFAULT_AGENT[op_id])
    for _ in range(2):
        assert_example(CALL[op_id](client), op_id, name, "armed")
    assert armed(client) == []
    # Consumed; and a forced response changed nothing (a forced agent_deleted deleted nothing).
    assert_example(CALL[op_id](client), op_id, NATURAL_OK[op_id], "state")


@pytest.mark.parametrize(("op_id", "name"), op_params())
def test_scenario__armed_beats_prefer_and_magic(client: FlaskClient, op_id: str, name: str) -> None:
    magic = next(agent for agent, magic_name in MAGIC[op_id].items() if magic_name != name)
    preferred = next(n for n in DOC[op_id] if n not in (name, MAGIC[op_id][magic]))
    arm(client, name, operation=op_id)
    call = CALL[op_id]
    assert_example(call(client, magic, headers={"Prefer": f"example={preferred}"}), op_id, name, "armed")
    assert_example(call(client, magic, headers={"Prefer": f"example={preferred}"}), op_id, preferred, "prefer")
    assert_example(call(client, magic), op_id, MAGIC[op_id][magic], "magic")


@pytest.mark.parametrize(
    "match",
    [
        {"pod": "na"},
        {"sid": "OTHER"},
        {"operation": "deleteAgent"},
        {"operation": "postTestersByAgent"},
        {"operation": "getTestersByAgentWsgw"},
        {"agent_number": "48400"},
    ],
    ids=lambda m: "-".join(f"{k}={v}" for k, v in m.items()),
)
def test_scenario__armed_match_filters(client: FlaskClient, match: dict[str, str]) -> None:
    arm(client, "gateway_error", **match)
    assert_example(get_testers(client), "getTestersByAgent", "testers", "state")
    assert [a["remaining"] for a in armed(client)] == [1]


@pytest.mark.parametrize(
    ("method", "path", "op_id"),
    [
        ("GET", "/na/v1/S/rcs/agenttester/testersbyagent?agent_number=48900", "getTestersByAgentTester"),
        ("POST", "/na/wsgw/v1/agent/testersbyagent?agent_number=48900", "postTestersByAgentWsgw"),
        ("POST", "/na/v1/S/rcs/agent/testersbyagent?agent_number=48900", "postTestersByAgent"),
    ],
)
def test_scenario__armed_canonical_operation_matches_variants(
    client: FlaskClient, method: str, path: str, op_id: str
) -> None:
    arm(client, "internal_server_error", operation="getTestersByAgent", pod="na", agent_number="48900")
    assert_example(send(client, method, path), op_id, "internal_server_error", "armed")
    assert armed(client) == []


def test_scenario__armed_name_the_operation_lacks_is_not_consumed(client: FlaskClient) -> None:
    arm(client, "testers")
    assert_example(delete_agent(client), "deleteAgent", "agent_deleted", "state")
    assert [a["remaining"] for a in armed(client)] == [1]
    assert_example(get_testers(client, "12345"), "getTestersByAgent", "testers", "armed")
    assert armed(client) == []


def test_scenario__armed_until_disarmed(client: FlaskClient) -> None:
    armed_id = arm(client, "agent_not_found", times=None, operation="deleteAgent")
    for _ in range(3):
        assert_example(delete_agent(client), "deleteAgent", "agent_not_found", "armed")
    assert [a["remaining"] for a in armed(client)] == [None]
    control(client, "DELETE", f"/scenarios/{armed_id}")
    assert_example(delete_agent(client), "deleteAgent", "agent_deleted", "state")


@pytest.mark.parametrize(("op_id", "name"), op_params())
def test_scenario__prefer_example(client: FlaskClient, op_id: str, name: str) -> None:
    status = DOC[op_id][name].status
    for prefer in (
        f"example={name}",
        f'example="{name}"',
        f"code={status}, example={name}",
        f"example={name};code={status}",
    ):
        assert_example(CALL[op_id](client, headers={"Prefer": prefer}), op_id, name, "prefer")
    # Forced, never real: the agent is still there.
    assert_example(CALL[op_id](client), op_id, NATURAL_OK[op_id], "state")


@pytest.mark.parametrize(
    ("op_id", "status"),
    [pytest.param(op, s, id=f"{op}__{s}") for op in CANONICAL for s in SPEC.statuses(op)],
)
def test_scenario__prefer_code(client: FlaskClient, op_id: str, status: int) -> None:
    name = SPEC.first_listed(op_id, status).name
    assert_example(CALL[op_id](client, headers={"Prefer": f"code={status}"}), op_id, name, "prefer")
    assert_example(CALL[op_id](client), op_id, NATURAL_OK[op_id], "state")


def test_scenario__prefer_for_a_post_only_example(client: FlaskClient) -> None:
    path = "/in/v1/S/rcs/agent/testersbyagent?agent_number=48900"
    assert_example(send(client, "POST", path, {"Prefer": "example=invalid_json"}), "postTestersByAgent", "invalid_json")
    ignored = send(client, "GET", path, {"Prefer": "example=invalid_json"})  # RFC 7240: not an error
    assert_example(ignored, "getTestersByAgent", "testers", "state")
    assert "Preference-Applied" not in ignored.headers


@pytest.mark.parametrize(
    "prefer",
    [
        pytest.param("example=no_such_example_4711", id="unknown-name"),
        pytest.param("code=418", id="undocumented-code"),
        pytest.param("code=201", id="undocumented-2xx"),
        pytest.param("code=abc4711", id="non-numeric-code"),
        pytest.param("code=\u00b2", id="superscript-digit-code"),
        pytest.param("code=4\u00b900", id="code-with-superscript-digit"),
        pytest.param("example=" + "x" * 300_000, id="huge-name"),
        pytest.param("code=" + "4" * 5_000, id="code-past-int-digits"),
    ],
)
@pytest.mark.parametrize("op_id", CANONICAL)
def test_scenario__prefer_invalid_is_ignored_with_a_warning(client: FlaskClient, op_id: str, prefer: str) -> None:
    """RFC 7240 section 2: a preference the server cannot honour MUST be ignored, not refused.
    The answer is the natural one; a warning names the valid choices, never the refused one."""
    resp = CALL[op_id](client, headers={"Prefer": prefer})
    assert_example(resp, op_id, NATURAL_OK[op_id], "state")
    assert "Preference-Applied" not in resp.headers
    warning = resp.headers["X-Mock-Warning"]
    for name in DOC[op_id]:
        assert name in warning
    refused = prefer.split("=", 1)[1]
    assert refused not in warning and len(warning) < 2_000


@pytest.mark.parametrize("op_id", CANONICAL)
def test_scenario__prefer_example_and_a_code_it_lacks_takes_the_example(client: FlaskClient, op_id: str) -> None:
    resp = CALL[op_id](client, headers={"Prefer": "example=agent_not_found, code=500"})
    assert_example(resp, op_id, "agent_not_found", "prefer")
    assert resp.headers["Preference-Applied"] == "example=agent_not_found"
    assert "code" in resp.headers["X-Mock-Warning"]


@pytest.mark.parametrize("op_id", CANONICAL)
def test_scenario__prefer_the_first_of_a_preference_counts(client: FlaskClient, op_id: str) -> None:
    """RFC 7240 section 2: 'only the first instance is to be considered'."""
    for prefer in ("example=gateway_error, example=rcs_not_enabled", "code=500, code=400"):
        resp = CALL[op_id](client, headers={"Prefer": prefer})
        assert_example(resp, op_id, "gateway_error", "prefer")


@pytest.mark.parametrize("op_id", CANONICAL)
def test_scenario__prefer_parameters_after_a_semicolon_are_not_preferences(client: FlaskClient, op_id: str) -> None:
    resp = CALL[op_id](client, headers={"Prefer": "example=gateway_error; code=400"})
    assert_example(resp, op_id, "gateway_error", "prefer")
    assert resp.headers["Preference-Applied"] == "example=gateway_error"
    assert "X-Mock-Warning" not in resp.headers


@pytest.mark.parametrize("op_id", CANONICAL)
def test_scenario__prefer_names_the_other_operations_example(client: FlaskClient, op_id: str) -> None:
    other = NATURAL_OK["deleteAgent" if op_id == "getTestersByAgent" else "getTestersByAgent"]
    resp = CALL[op_id](client, headers={"Prefer": f"example={other}"})
    assert_example(resp, op_id, NATURAL_OK[op_id], "state")
    assert "X-Mock-Warning" in resp.headers


@pytest.mark.parametrize(
    ("op_id", "agent"),
    [pytest.param(op, agent, id=f"{op}__{name}") for op in CANONICAL for agent, name in MAGIC[op].items()],
)
def test_scenario__magic_agent_number(client: FlaskClient, op_id: str, agent: str) -> None:
    assert_example(CALL[op_id](client, agent), op_id, MAGIC[op_id][agent], "magic")
    assert_example(CALL[op_id](client, agent), op_id, MAGIC[op_id][agent], "magic")


@pytest.mark.parametrize(
    ("op_id", "name"), [pytest.param(op, name, id=f"{op}__{name}") for op in CANONICAL for name in sorted(NATURAL[op])]
)
def test_scenario__natural_state(client: FlaskClient, op_id: str, name: str) -> None:
    routing = name in ("method_not_allowed", "not_found") or (name == "bad_request" and op_id == "deleteAgent")
    assert_example(natural(client, op_id, name), op_id, name, "routing" if routing else None)


@pytest.mark.parametrize("op_id", CANONICAL)
def test_scenario__natural_triggers_name_examples_of_the_spec(op_id: str) -> None:
    """The rest of the spec's examples (rate_limited, the 5xx, any added to the spec) are
    served on demand only; the armed, Prefer and magic tests above cover every one."""
    assert NATURAL[op_id] <= set(DOC[op_id])


# -- 5. auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "   "], ids=["absent", "empty", "blank"])
@pytest.mark.parametrize(
    ("method", "path", "op_id"),
    [
        ("DELETE", "/in/v1/S/rcs/agent/48400", "deleteAgent"),
        ("DELETE", "/v1/S/rcs/agent/", "deleteAgentWithoutNumber"),
        ("GET", "/in/v1/S/rcs/agent/testersbyagent?agent_number=48900", "getTestersByAgent"),
        ("POST", "/na/v1/S/rcs/agenttester/testersbyagent?agent_number=48900", "postTestersByAgentTester"),
        ("GET", "/wsgw/v1/agent/testersbyagent?agent_number=48900", "getTestersByAgentWsgw"),
    ],
)
def test_auth__missing_api_key(client: FlaskClient, method: str, path: str, op_id: str, key: str | None) -> None:
    headers = {} if key is None else {"api-key": key}
    resp = send(client, method, path, headers, without=() if key is not None else ["api-key"])
    assert_example(resp, op_id, "missing_api_key", "auth")
    assert_agent_present(client, "48400")


@pytest.mark.parametrize("op_id", CANONICAL)
def test_auth__listed_keys(client: FlaskClient, op_id: str) -> None:
    put_account(client, "KEYED", api_keys=["secret-1"], agents={"48400": [], "48900": TESTERS})
    for key in ("k", "secret-2", "SECRET-1", "secret-10"):
        resp = CALL[op_id](client, sid="KEYED", headers={"api-key": key})
        assert_example(resp, op_id, "invalid_api_key", "auth")
    assert_example(CALL[op_id](client, sid="KEYED", headers={"api-key": "secret-1"}), op_id, NATURAL_OK[op_id])
    # Other SIDs, and the same SID on the other pod, still take any key.
    assert_example(CALL[op_id](client, sid="OTHER"), op_id, NATURAL_OK[op_id], "state")
    assert_example(CALL[op_id](client, at="/na", sid="KEYED"), op_id, NATURAL_OK[op_id], "state")


def test_auth__key_never_echoed(client: FlaskClient) -> None:
    secrets = ("secret-1", "secret-2")
    put_account(client, "KEYED", api_keys=["secret-1"], agents={"48400": [], "48900": TESTERS})
    arm(client, "gateway_error", sid="KEYED", operation="getTestersByAgent")
    responses = []
    for key in secrets:
        headers = {"api-key": key}
        responses += [
            get_testers(client, sid="KEYED", headers=headers),
            get_testers(client, sid="KEYED", headers=headers),
            get_testers(client, AGENT_FOR["invalid_api_key"], sid="KEYED", headers=headers),
            delete_agent(client, sid="KEYED", headers=headers),
            delete_agent(client, sid="KEYED", headers={**headers, "Prefer": "code=999"}),
            delete_agent(client, sid="KEYED", headers={**headers, "Content-Type": "text/plain"}),
            send(client, "GET", "/wsgw/v1/agent/testersbyagent?agent_number=48900", headers),
            send(client, "POST", "/in/v1/KEYED/rcs/agent/testersbyagent", headers, data=b"{"),
            send(client, "GET", "/in/v1/KEYED/nothing", headers),
            send(client, "PUT", "/in/v1/KEYED/rcs/agent/48400", headers),
        ]
    statuses = {r.status_code for r in responses}
    assert {200, 400, 401, 404, 405, 415, 500} <= statuses
    journal = client.get("/__mock/journal")
    state = client.get("/__mock/state")
    account = client.get("/__mock/accounts/in/KEYED")
    assert len(journal.get_json()) >= len(responses)
    assert state.get_json()["accounts"][0]["api_key_sha256"]
    for resp in [*responses, journal, state, account, client.get("/__mock/scenarios")]:
        text = resp.get_data(as_text=True) + "".join(f"{k}: {v}\n" for k, v in resp.headers.items())
        for secret in secrets:
            assert secret not in text


def test_auth__before_scenarios(client: FlaskClient) -> None:
    arm(client, "gateway_error")
    put_account(client, "KEYED", api_keys=["secret-1"], agents={"48400": []})
    assert_example(delete_agent(client, without=["api-key"]), "deleteAgent", "missing_api_key", "auth")
    assert_example(
        delete_agent(client, sid="KEYED", headers={"api-key": "wrong"}), "deleteAgent", "invalid_api_key", "auth"
    )
    assert [a["remaining"] for a in armed(client)] == [1]
    assert_example(delete_agent(client), "deleteAgent", "gateway_error", "armed")
    assert armed(client) == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Prefer": "example=agent_deleted"}, id="prefer-example"),
        pytest.param({"Prefer": "code=200"}, id="prefer-code"),
        pytest.param({"Prefer": "code=418"}, id="prefer-invalid"),
        pytest.param({"Content-Type": "text/plain"}, id="content-type"),
    ],
)
def test_auth__before_content_type_and_prefer(client: FlaskClient, headers: dict[str, str]) -> None:
    assert_example(delete_agent(client, headers=headers, without=["api-key"]), "deleteAgent", "missing_api_key", "auth")
    put_account(client, "KEYED", api_keys=["secret-1"], agents={"48400": []})
    resp = delete_agent(client, sid="KEYED", headers={**headers, "api-key": "wrong"})
    assert_example(resp, "deleteAgent", "invalid_api_key", "auth")
    assert_agent_present(client, "48400", sid="KEYED", headers={"api-key": "secret-1"})


@pytest.mark.parametrize("agent", list(MAGIC["getTestersByAgent"]))
def test_auth__before_magic_agent_number(client: FlaskClient, agent: str) -> None:
    assert_example(get_testers(client, agent, without=["api-key"]), "getTestersByAgent", "missing_api_key", "auth")


# -- 6. Content-Type ----------------------------------------------------------------------------


@pytest.mark.parametrize("op_id", CANONICAL)
def test_content_type__missing_is_accepted_with_a_warning(client: FlaskClient, op_id: str) -> None:
    resp = CALL[op_id](client, without=["Content-Type"])
    assert_example(resp, op_id, NATURAL_OK[op_id], "state")
    assert resp.headers["X-Mock-Warning"]
    assert "X-Mock-Warning" not in CALL[op_id](client).headers


def test_content_type__missing_is_logged_once_with_the_first_request(caplog: pytest.LogCaptureFixture) -> None:
    """The header only reaches a client that reads it; the log line reaches whoever runs the mock."""
    client = create_app().test_client()
    with caplog.at_level(logging.WARNING, logger="mock_server"):
        assert CALL["getTestersByAgent"](client).headers.get("X-Mock-Warning") is None
        assert not caplog.records
        for _ in range(3):
            assert CALL["deleteAgent"](client, without=["Content-Type"]).headers["X-Mock-Warning"]
            assert CALL["getTestersByAgent"](client, without=["Content-Type"]).headers["X-Mock-Warning"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("mock_server: DELETE '/in/v1/S/rcs/agent/48400' came without Content-Type;")
    assert "logged once per worker" in record.getMessage()


def test_content_type__missing_is_not_logged_for_a_request_refused_before(caplog: pytest.LogCaptureFixture) -> None:
    """No key: the 401 decides, Content-Type is never looked at, so it is neither warned of nor logged."""
    client = create_app().test_client()
    with caplog.at_level(logging.WARNING, logger="mock_server"):
        resp = CALL["deleteAgent"](client, without=["Content-Type", "api-key"])
    assert_example(resp, "deleteAgent", "missing_api_key", "auth")
    assert not caplog.records


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/x-www-form-urlencoded", "text/json", "application/problem+json"],
)
@pytest.mark.parametrize("op_id", CANONICAL)
def test_content_type__unsupported_media_type(client: FlaskClient, op_id: str, content_type: str) -> None:
    resp = CALL[op_id](client, headers={"Content-Type": content_type})
    assert_example(resp, op_id, "unsupported_media_type", "content-type")
    assert_example(CALL[op_id](client), op_id, NATURAL_OK[op_id], "state")


@pytest.mark.parametrize(
    "content_type", ["application/JSON; charset=utf-8", "application/json", "APPLICATION/JSON", "application/json;"]
)
@pytest.mark.parametrize("op_id", CANONICAL)
def test_content_type__json_accepted(client: FlaskClient, op_id: str, content_type: str) -> None:
    resp = CALL[op_id](client, headers={"Content-Type": content_type})
    assert_example(resp, op_id, NATURAL_OK[op_id], "state")
    assert "X-Mock-Warning" not in resp.headers


@pytest.mark.parametrize("op_id", CANONICAL)
def test_content_type__strict_rejects_missing(op_id: str) -> None:
    client = create_app(config=MockConfig(strict_content_type=True)).test_client()
    assert_example(CALL[op_id](client, without=["Content-Type"]), op_id, "unsupported_media_type", "content-type")
    assert_example(CALL[op_id](client), op_id, NATURAL_OK[op_id], "state")


def test_content_type__before_scenarios(client: FlaskClient) -> None:
    arm(client, "gateway_error")
    resp = get_testers(client, headers={"Content-Type": "text/plain"})
    assert_example(resp, "getTestersByAgent", "unsupported_media_type", "content-type")
    assert [a["remaining"] for a in armed(client)] == [1]


# -- 7. routing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/S/rcs/unknown"),
        ("GET", "/v1/S/rcs/no-such-op"),
        ("DELETE", "/in/v1/S/rcs/agent/48400/extra"),
        ("DELETE", "/in/v1/S/rcs/agent/48400/"),
        ("GET", "/in/v1/S/rcs/agent/testersbyagent/"),
        ("POST", "/in/wsgw/v2/agent/testersbyagent"),
        ("GET", "/na/wsgw/no-such-op"),
    ],
)
def test_routing__not_found(client: FlaskClient, method: str, path: str) -> None:
    """Under a version (or a pod, then a version) the path may be Kaleyra's: the spec's not_found."""
    before = control(client, "GET", "/state")
    assert_shared(send(client, method, path), "not_found")
    assert control(client, "GET", "/state") == before


def _own_not_found(resp: TestResponse) -> str:
    """The error_message of the mock's own unknown_pod_prefix, after checking the rest of it."""
    expected = SPEC.own("getTestersByAgent")["unknown_pod_prefix"]
    answer = body(resp)
    assert resp.status_code == expected.status == 404
    assert resp.headers["X-Mock-Source"] == "routing"
    assert resp.headers["X-Mock-Example"] == "unknown_pod_prefix"
    assert {**answer, "data": {"error": {**answer["data"]["error"], "error_message": "-"}}} == {
        **expected.value,
        "data": {"error": {**expected.value["data"]["error"], "error_message": "-"}},
    }
    message: str = answer["data"]["error"]["error_message"]
    assert message.endswith(": the pods are /in and /na (or a Kaleyra Host), the API version is /v1 (and /wsgw)")
    return message


@pytest.mark.parametrize(
    ("method", "path", "start"),
    [
        ("GET", "/eu/v1/S/rcs/agent/testersbyagent?agent_number=48900", "no pod or version 'eu' here:"),
        ("DELETE", "/v2/S/rcs/agent/48400", "no pod or version 'v2' here:"),
        ("DELETE", "/eu/v1/S/rcs/agent/48400", "no pod or version 'eu' here:"),
        ("GET", "/in/in/v1/S/rcs/agent/testersbyagent?agent_number=48900", "no API version 'in' after /in:"),
        ("GET", "/na/v2/S/rcs/agent/testersbyagent", "no API version 'v2' after /na:"),
        ("GET", "/in", "no API version after /in:"),
        ("GET", "/na/", "no API version after /na:"),
        ("GET", "/", "no pod or version here:"),
        ("POST", "/__mok/health", "no pod or version '__mok' here:"),
        ("GET", "/" + "a/" * 5000, "no pod or version 'a' here:"),
    ],
)
def test_routing__unknown_pod_prefix__names_the_pods(client: FlaskClient, method: str, path: str, start: str) -> None:
    before = control(client, "GET", "/state")
    assert _own_not_found(send(client, method, path)).startswith(start)
    assert control(client, "GET", "/state") == before


@pytest.mark.parametrize(
    ("path", "start"),
    [
        ("/NA/v1/S/rcs/agent/testersbyagent", "no pod or version 'NA' here (paths are case-sensitive: /na, not /NA):"),
        ("/In/v1/S/rcs/agent/48400", "no pod or version 'In' here (paths are case-sensitive: /in, not /In):"),
        ("/V1/S/rcs/agent/48400", "no pod or version 'V1' here (paths are case-sensitive: /v1, not /V1):"),
        (
            "/na/WSGW/v1/agent/testersbyagent",
            "no API version 'WSGW' after /na (paths are case-sensitive: /wsgw, not /WSGW):",
        ),
    ],
)
def test_routing__unknown_pod_prefix__says_paths_are_case_sensitive(client: FlaskClient, path: str, start: str) -> None:
    assert _own_not_found(send(client, "GET", path)).startswith(start)


@pytest.mark.parametrize("segment", ["x" * 17, "<b>eu</b>", "e u", "eu%2Fna"])
def test_routing__unknown_pod_prefix__quotes_only_a_short_plain_word(client: FlaskClient, segment: str) -> None:
    """A long token (an api key pasted into a base URL) or markup is never sent back."""
    message = _own_not_found(send(client, "GET", "/", environ_overrides={"PATH_INFO": f"/{segment}/v1/S"}))
    assert message.startswith("no pod or version here:")
    assert segment not in message


def test_routing__unknown_pod_prefix__in_the_other_error_layout() -> None:
    app = create_app(config=MockConfig(error_layout="error"))
    answer = body(send(app.test_client(), "GET", "/eu/v1/S/rcs/agent/testersbyagent"))
    assert answer["code"] == "MOCK404"
    assert answer["error"]["error_code"] == "UNKNOWN_POD_PREFIX"
    assert answer["error"]["error_message"].startswith("no pod or version 'eu' here:")
    assert answer["data"] == {}


def test_routing__unknown_pod_prefix__is_journaled_as_routing(client: FlaskClient) -> None:
    send(client, "GET", "/eu/v1/S/rcs/agent/testersbyagent")
    entry = control(client, "GET", "/journal")[-1]
    assert (entry["path"], entry["status"], entry["example"]) == (
        "/eu/v1/S/rcs/agent/testersbyagent",
        404,
        "unknown_pod_prefix",
    )


@pytest.mark.parametrize("at", ["", "/in", "/na"])
@pytest.mark.parametrize("route", TESTERS_ROUTES)
@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_routing__testers_path_method_not_allowed(client: FlaskClient, at: str, route: str, method: str) -> None:
    # An agent literally named "testersbyagent" must survive a DELETE on the testers path.
    for pod in ("in", "na"):
        put_account(client, "S", pod, agents={"testersbyagent": [], "48900": TESTERS})
    before = control(client, "GET", "/state")
    resp = send(client, method, at + route.format(sid="S") + "?agent_number=48900")
    assert_shared(resp, "method_not_allowed")
    allow = {m.strip() for m in resp.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allow
    assert not allow & {"DELETE", "PUT", "PATCH"}
    assert control(client, "GET", "/state") == before
    assert body(get_testers(client, "testersbyagent")) == []


@pytest.mark.parametrize("path", ["/in/v1/S/rcs/agent/48400", "/v1/S/rcs/agent/48400", "/na/v1/S/rcs/agent/"])
@pytest.mark.parametrize("method", ["PUT", "PATCH", "GET", "POST"])
def test_routing__delete_path_method_not_allowed(client: FlaskClient, method: str, path: str) -> None:
    before = control(client, "GET", "/state")
    resp = send(client, method, path, data=b"{}")
    assert_shared(resp, "method_not_allowed")
    assert resp.headers["Allow"] == "DELETE"
    assert control(client, "GET", "/state") == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/in/v1/S/rcs/agent//48400"),
        ("DELETE", "/in//v1/S/rcs/agent/48400"),
        ("DELETE", "/v1//rcs/agent/48400"),
        ("DELETE", "/v1/S//rcs/agent/48400"),
        ("GET", "/in/v1/S/rcs//agent/testersbyagent?agent_number=48900"),
        ("GET", "/in/wsgw//v1/agent/testersbyagent?agent_number=48900"),
        ("POST", "/v1/S/rcs/agenttester//testersbyagent?agent_number=48900"),
    ],
)
def test_routing__double_slash_does_not_redirect(client: FlaskClient, method: str, path: str) -> None:
    before = control(client, "GET", "/state")
    resp = send(client, method, path)
    assert not 300 <= resp.status_code < 400
    assert "Location" not in resp.headers
    assert_shared(resp, "not_found")
    assert control(client, "GET", "/state") == before


@pytest.mark.parametrize("path", ["//v1/S/rcs/agent/48400", "//in/v1/S/rcs/agent/48400", "/in/v1/S/rcs/agent/48400//"])
def test_routing__leading_or_trailing_double_slash_does_not_redirect(client: FlaskClient, path: str) -> None:
    # PATH_INFO set directly: the test client would read a leading "//" as a host name.
    resp = send(client, "DELETE", "/", environ_overrides={"PATH_INFO": path})
    assert not 300 <= resp.status_code < 400
    assert "Location" not in resp.headers
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["X-Mock-Source"]


def test_delete_agent__double_slash_names_no_operation(client: FlaskClient) -> None:
    """`agent//` is neither the agent's path nor the documented empty-number path `agent/`."""
    before = control(client, "GET", "/state")
    resp = send(client, "DELETE", "/in/v1/S/rcs/agent//")
    assert "Location" not in resp.headers
    assert_shared(resp, "not_found")
    assert control(client, "GET", "/state") == before


# -- 8. headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "op_id"),
    [
        pytest.param(t, op, id=f"{op}__{t}")
        for op in CANONICAL
        for t in ("armed", "prefer-example", "prefer-code", "magic")
    ],
)
def test_headers__rate_limited_retry_after(client: FlaskClient, trigger: str, op_id: str) -> None:
    call = CALL[op_id]
    if trigger == "armed":
        arm(client, "rate_limited")
        resp = call(client)
    elif trigger == "magic":
        resp = call(client, AGENT_FOR["rate_limited"])
    else:
        resp = call(client, headers={"Prefer": "example=rate_limited" if trigger == "prefer-example" else "code=429"})
    assert_example(resp, op_id, "rate_limited", trigger.split("-")[0])
    assert resp.headers["Retry-After"] == DOC[op_id]["rate_limited"].headers["Retry-After"]
    assert int(resp.headers["Retry-After"]) >= 0


@pytest.mark.parametrize("op_id", CANONICAL)
def test_headers__only_rate_limited_carries_retry_after(client: FlaskClient, op_id: str) -> None:
    for name in DOC[op_id]:
        resp = CALL[op_id](client, headers={"Prefer": f"example={name}"})
        assert ("Retry-After" in resp.headers) == (name == "rate_limited"), name


def test_headers__every_response_is_json_and_sourced(client: FlaskClient) -> None:
    responses = [
        get_testers(client),
        get_testers(client, "48400"),
        delete_agent(client),
        delete_agent(client),
        delete_agent(client, None),
        get_testers(client, without=["api-key"]),
        get_testers(client, headers={"Content-Type": "text/plain"}),
        get_testers(client, headers={"Prefer": "code=500"}),
        get_testers(client, headers={"Prefer": "code=999"}),
        get_testers(client, AGENT_FOR["gateway_error"]),
        send(client, "GET", "/nowhere"),
        send(client, "DELETE", "/wsgw/v1/agent/testersbyagent"),
        send(client, "POST", "/in/v1/S/rcs/agent/testersbyagent", data=b"nope"),
    ]
    for resp in responses:
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers.getlist("Content-Type") == ["application/json"]
        assert resp.headers["X-Mock-Source"]
        json.loads(resp.get_data())
        if resp.status_code != 422:
            assert resp.headers["X-Mock-Example"]


@pytest.mark.parametrize(
    ("query", "payload", "name"),
    [
        ("?agent_number=48900", {"agent_number": 5}, "bad_request"),
        ("?agent_number=48900", {"agent_number": ""}, "bad_request"),
        ("?agent_number=48900", {"agent_number": "48400"}, "bad_request"),
        ("?agent_number=48900", [], "bad_request"),
        ("?agent_number=48900", {"agent_number": "48900"}, "testers"),
        ("", {"agent_number": ""}, "missing_agent_number"),
    ],
)
def test_post_testers_by_agent__a_body_is_checked_even_when_the_query_has_the_number(
    client: FlaskClient, query: str, payload: object, name: str
) -> None:
    resp = send(client, "POST", "/in/v1/S/rcs/agent/testersbyagent" + query, data=json.dumps(payload))
    assert resp.headers["X-Mock-Example"] == name


def test_get_testers_by_agent__a_sid_that_is_not_ascii_finds_its_account(client: FlaskClient) -> None:
    """WSGI hands the path over as latin-1 text of its bytes: the SID is read as UTF-8, as the
    control plane reads it, so the account put under it is the one answering."""
    put_account(client, "%C3%A9", api_keys=["secret-1"], agents={"111": []})
    resp = client.get(
        "/in/v1/%C3%A9/rcs/agent/testersbyagent?agent_number=111", headers={**HEADERS, "api-key": "secret-1"}
    )
    assert (resp.status_code, body(resp)) == (200, [])
    entry = control(client, "GET", "/journal")[0]
    assert (entry["sid"], entry["path"]) == ("é", "/in/v1/é/rcs/agent/testersbyagent")


def test_get_testers_by_agent__a_query_that_is_not_ascii_is_read_as_utf8(client: FlaskClient) -> None:
    resp = client.get("/in/v1/S/rcs/agent/testersbyagent?agent_number=%C3%A9", headers=HEADERS)
    assert resp.headers["X-Mock-Example"] == "agent_not_found"
    assert control(client, "GET", "/journal")[0]["agent_number"] == "é"


def test_api__a_request_without_a_method_is_405(client: FlaskClient) -> None:
    environ = {"REQUEST_METHOD": "", "PATH_INFO": "/in/v1/S/rcs/agent/48400", "SERVER_PROTOCOL": "HTTP/1.1"}
    started: list[str] = []
    answer = b"".join(
        client.application.wsgi_app({**environ, "HTTP_HOST": "127.0.0.1"}, lambda s, h, e=None: started.append(s))
    )
    assert started == ["405 METHOD NOT ALLOWED"]
    assert json.loads(answer)["code"] == "RCS405"


def test_api__long_paths_are_routed_but_not_kept(client: FlaskClient) -> None:
    """The route cache keys on the path: a path past 512 characters is matched each time, never
    looked up or kept, so 4,096 long URLs cannot hold hundreds of MB. (The cache is the spec's
    router's, shared by every app on that spec, so it is read by its hits and misses.)"""
    routes = client.application.api.router._cached_match  # type: ignore[attr-defined]
    before = routes.cache_info()
    long_sid = "S" * 600
    put_account(client, long_sid, agents={"1": []})
    for _ in range(2):
        assert body(get_testers(client, "1", sid=long_sid)) == []
    assert routes.cache_info()[:2] == before[:2]  # (hits, misses): not looked up
    for _ in range(2):
        assert body(get_testers(client, "48400", sid="ROUTE-CACHE-TEST")) == []
    after = routes.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses + 1)  # kept, then found
