"""The control plane under /__mock/, driven in-process through Flask's test client.

Every test gets a fresh app, and with it a fresh in-memory store: nothing leaks between tests.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate as validate_openapi
from werkzeug.test import TestResponse

from mock_server.core import (
    CONTROL_SPEC_PATH,
    PODS,
    MemoryStore,
    MockConfig,
    SpecIndex,
    StateData,
    default_seed_document,
    state_validator,
)
from mock_server.web import ConnectionDropped, create_app
from mock_server.web._http import DEFERRED_LATENCY

API_KEY = "k"
API_HEADERS = {"api-key": API_KEY, "Content-Type": "application/json"}
SEED_AGENT = "48900"  # the default account's agent with the documented sample tester
EMPTY_AGENT = "48400"  # the default account's agent with no testers

TESTER: dict[str, Any] = {
    "phoneno": "919999900001",
    "test_status": "",
    "status": "ACTIVE",
    "agent_no": "700",
    "id": "tester-700-1",
    "override_dcs_check": False,
    "carrierid": 7,
}
OTHER_TESTER: dict[str, Any] = {**TESTER, "phoneno": "919999900002", "id": "tester-700-2"}
TESTER_WITHOUT_CARRIERID = {k: v for k, v in TESTER.items() if k != "carrierid"}


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def app() -> Flask:
    return create_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def spec() -> SpecIndex:
    return SpecIndex.load()


def get_testers(
    client: FlaskClient, agent: str = SEED_AGENT, *, sid: str = "S", pod: str = "in", key: str = API_KEY
) -> TestResponse:
    """GET testersbyagent on one pod, with the mandatory headers."""
    return client.get(
        f"/{pod}/v1/{sid}/rcs/agent/testersbyagent",
        query_string={"agent_number": agent},
        headers={"api-key": key, "Content-Type": "application/json"},
    )


def delete_agent(client: FlaskClient, agent: str, *, sid: str = "S", pod: str = "in") -> TestResponse:
    return client.delete(f"/{pod}/v1/{sid}/rcs/agent/{agent}", headers=API_HEADERS)


def example_name(response: TestResponse) -> str | None:
    return response.headers.get("X-Mock-Example")


def dump(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/__mock/state")
    assert response.status_code == 200
    return response.get_json()


def journal(client: FlaskClient, **filters: Any) -> list[dict[str, Any]]:
    response = client.get("/__mock/journal", query_string=filters)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def assert_refused(response: TestResponse, status: int = 400, where: str | None = None) -> dict[str, Any]:
    """The control plane's refusal envelope; `where` must appear in the error message, and no
    value the request refused ever does (soak/_hostile.py `echoes` sends markers for that)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == f"MOCK{status}"
    assert isinstance(body["message"], str)
    assert body["message"]
    expected_constant = "NOT_FOUND" if status == 404 else "INVALID_CONTROL_REQUEST"
    assert body["data"]["error"]["error_code"] == expected_constant
    message = body["data"]["error"]["error_message"]
    assert isinstance(message, str)
    assert message
    if where is not None:
        assert where in message, message
    return body


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def arm_fault(client: FlaskClient, fault: str, **doc: Any) -> dict[str, Any]:
    response = client.post("/__mock/faults", json={"fault": fault, **doc})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def arm_scenario(client: FlaskClient, scenario: str, **doc: Any) -> dict[str, Any]:
    response = client.post("/__mock/scenarios", json={"scenario": scenario, **doc})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


# -- health and the control document ------------------------------------------------------


def test_health__reports_pods_store_and_armed_counts(client: FlaskClient) -> None:
    response = client.get("/__mock/health")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "pods": list(PODS),
        "store": "memory",
        "scenarios_armed": 0,
        "faults_armed": 0,
        "proxy": None,
    }

    arm_scenario(client, "gateway_error")
    arm_fault(client, "latency", params={"ms": 0})
    arm_fault(client, "empty_response")
    health = client.get("/__mock/health").get_json()
    assert health["scenarios_armed"] == 1
    assert health["faults_armed"] == 2


def test_control_openapi__served_document_is_the_control_spec(client: FlaskClient) -> None:
    response = client.get("/__mock/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.data == CONTROL_SPEC_PATH.read_bytes()
    doc = yaml.safe_load(response.data)
    assert doc["openapi"].startswith("3.1")
    assert "/__mock/reset" in doc["paths"]
    assert "post" in doc["paths"]["/__mock/reset"]


def test_control_openapi__passes_openapi_spec_validator(client: FlaskClient) -> None:
    doc = yaml.safe_load(client.get("/__mock/openapi.yaml").data)
    validate_openapi(doc)  # raises on an invalid document


def test_control_openapi__fault_params_schemas_hold_only_schema_keywords() -> None:
    # An unquoted comma in a YAML flow mapping silently turns the rest of a description into a key.
    doc = yaml.safe_load(CONTROL_SPEC_PATH.read_bytes())
    params = doc["components"]["schemas"]["ArmFault"]["properties"]["params"]["properties"]
    allowed = {"type", "minimum", "maximum", "description", "not"}
    for name, schema in params.items():
        assert set(schema) <= allowed, f"params/{name} has stray keys {sorted(set(schema) - allowed)}"
        assert isinstance(schema.get("description"), str), name


# What each control operation answers when called in the document's order with `{}` as its body
# (path values below): account S is created by putAccount, then removed by deleteAccount.
ROUTED_ANSWERS = {
    "health": 200,
    "reset": 200,
    "getState": 200,
    "putState": 200,  # {} is a state document: every key is optional
    "getDefaultAccount": 200,
    "putDefaultAccount": 200,
    "deleteDefaultAccount": 200,
    "putDefaultAgent": 404,  # the default account was just deleted
    "removeDefaultAgent": 404,
    "addDefaultTester": 400,  # {} is no tester
    "removeDefaultTester": 404,
    "getAccount": 404,  # not listed yet
    "putAccount": 200,
    "deleteAccount": 200,
    "putAgent": 404,  # its account was just removed
    "removeAgent": 404,
    "addTester": 400,  # {} is no tester
    "removeTester": 404,
    "listExamples": 200,
    "listScenarios": 200,
    "armScenario": 400,  # {} names no scenario
    "disarmScenarios": 200,
    "disarmScenario": 404,  # nothing armed with id 999
    "listFaults": 200,
    "armFault": 400,
    "disarmFaults": 200,
    "disarmFault": 404,
    "getJournal": 200,
    "clearJournal": 200,
    "getDashboard": 200,
    "getDashboardAsset": 200,
    "getControlSpec": 200,
}


def test_control_openapi__every_documented_operation_is_routed(client: FlaskClient) -> None:
    doc = yaml.safe_load(CONTROL_SPEC_PATH.read_bytes())
    values = {"pod": "in", "sid": "S", "agent_number": SEED_AGENT, "id": "999", "tester_id": "nope", "asset": "app.js"}
    answered: dict[str, int] = {}
    for path, item in doc["paths"].items():
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        for method in ("get", "put", "post", "delete"):
            if method not in item:
                continue
            response = client.open(url, method=method.upper(), json={} if method in ("put", "post") else None)
            assert str(response.status_code) in item[method]["responses"], f"{method.upper()} {url}: undocumented"
            answered[item[method]["operationId"]] = response.status_code
    assert answered == ROUTED_ANSWERS


def _first_control_requests_at_once(client: FlaskClient, n: int = 16) -> list[int]:
    paths = ["/__mock/health", "/__mock/state", "/__mock/scenarios", "/__mock/faults", "/__mock/journal"]
    start = threading.Barrier(n, timeout=10)

    def first(i: int) -> int:
        start.wait()
        return client.get(paths[i % len(paths)]).status_code

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(first, range(n)))


def test_control_plane__first_requests_at_once_each_find_every_route() -> None:
    """The control routes are added at an app's first control request (`Front`, `MockApp._routed_control`):
    requests that arrive together with it, as a dashboard's first page load sends them, wait for
    all of them rather than meet a half-routed app (404). After an API request, as in a worker."""
    for _ in range(5):
        client = create_app().test_client()
        assert get_testers(client, SEED_AGENT).status_code == 200
        assert _first_control_requests_at_once(client) == [200] * 16


def test_control_plane__routes_that_cannot_be_added_answer_the_crash_envelope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Adding the routes runs outside Flask's handlers (`Front`): a failure there (the package's dashboard
    files unreadable) is the mock's 500 envelope, not a bare traceback, and is tried again."""
    import mock_server.web._app as app_module

    client = create_app().test_client()

    def unreadable() -> dict[str, tuple[bytes, str]]:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(app_module, "_ui_files", unreadable)
    crashed = client.get("/__mock/health")
    assert (crashed.status_code, crashed.headers["X-Mock-Source"], crashed.get_json()["code"]) == (
        500,
        "crash",
        "MOCK500",
    )
    monkeypatch.undo()
    assert client.get("/__mock/health").status_code == 200


# -- reset -------------------------------------------------------------------------------


def test_reset__restores_seed_disarms_everything_and_empties_journal(client: FlaskClient) -> None:
    seed = dump(client)
    assert delete_agent(client, EMPTY_AGENT).status_code == 200
    assert example_name(get_testers(client, EMPTY_AGENT)) == "agent_not_found"
    assert client.delete(f"/__mock/default-account/agents/{SEED_AGENT}").status_code == 200
    arm_scenario(client, "gateway_error", times=None, match={"pod": "na"})
    arm_fault(client, "latency", params={"ms": 0}, match={"pod": "na"})
    assert [(e["method"], e["example"]) for e in journal(client)] == [
        ("GET", "agent_not_found"),
        ("DELETE", "agent_deleted"),
    ]

    response = client.post("/__mock/reset")
    assert response.status_code == 200
    assert response.get_json() == {"status": "reset"}

    assert journal(client) == []
    assert client.get("/__mock/scenarios").get_json() == []
    assert client.get("/__mock/faults").get_json() == []
    assert dump(client) == seed
    back = get_testers(client, EMPTY_AGENT)
    assert back.status_code == 200
    assert back.get_json() == []
    assert get_testers(client, SEED_AGENT).status_code == 200
    assert get_testers(client, SEED_AGENT, pod="na").status_code == 200


# -- whole state: dump and load -----------------------------------------------------------


def test_state__dump_is_the_seed_document_on_a_fresh_app(client: FlaskClient, spec: SpecIndex) -> None:
    assert dump(client) == default_seed_document(spec)


def test_put_state__round_trip_restores_behaviour(client: FlaskClient) -> None:
    acme = {"api_keys": ["acme-key"], "agents": {"700": [TESTER]}}
    assert client.put("/__mock/accounts/in/ACME", json=acme).status_code == 200
    before = dump(client)

    # Change the state through the API and the control plane.
    assert delete_agent(client, EMPTY_AGENT).status_code == 200
    assert client.delete("/__mock/accounts/in/ACME").status_code == 200
    assert client.put("/__mock/accounts/na/OTHER", json={"agents": {"700": [TESTER]}}).status_code == 200
    assert dump(client) != before
    assert example_name(get_testers(client, EMPTY_AGENT)) == "agent_not_found"

    response = client.put("/__mock/state", json=before)
    assert response.status_code == 200
    assert response.get_json()["status"] == "loaded"

    assert dump(client) == before
    assert get_testers(client, EMPTY_AGENT).status_code == 200
    assert get_testers(client, "700", sid="ACME", key="acme-key").get_json() == [TESTER]
    assert example_name(get_testers(client, "700", sid="ACME", key="wrong")) == "invalid_api_key"
    assert client.get("/__mock/accounts/na/OTHER").status_code == 404


def test_put_state__dump_holds_key_hashes_never_clear_keys(client: FlaskClient) -> None:
    clear = "clear-key-never-dumped-0042"
    doc = {
        "version": 1,
        "default_account": None,
        "accounts": [{"pod": "in", "sid": "ACME", "api_keys": [clear], "agents": {"700": [TESTER]}}],
    }
    assert client.put("/__mock/state", json=doc).status_code == 200

    response = client.get("/__mock/state")
    assert clear not in response.get_data(as_text=True)
    (account,) = response.get_json()["accounts"]
    assert account["api_key_sha256"] == [sha256(clear)]
    assert "api_keys" not in account

    # The dump loads back, and the clear key is still accepted through its hash.
    assert client.post("/__mock/reset").status_code == 200
    assert client.put("/__mock/state", json=response.get_json()).status_code == 200
    ok = get_testers(client, "700", sid="ACME", key=clear)
    assert ok.status_code == 200
    assert ok.get_json() == [TESTER]
    assert example_name(get_testers(client, "700", sid="ACME", key="other")) == "invalid_api_key"


def test_put_state__account_on_all_pods_is_listed_once_per_pod(client: FlaskClient) -> None:
    doc = {"accounts": [{"pod": "*", "sid": "BOTH", "agents": {"700": [TESTER]}}]}
    assert client.put("/__mock/state", json=doc).status_code == 200
    listed = [(a["pod"], a["sid"]) for a in dump(client)["accounts"]]
    assert listed == [("in", "BOTH"), ("na", "BOTH")]
    assert get_testers(client, "700", sid="BOTH", pod="na").get_json() == [TESTER]


BAD_STATE_DOCUMENTS = [
    pytest.param({"accounts": "ACME"}, "/accounts", id="accounts-not-a-list"),
    pytest.param({"version": 2}, "/version", id="wrong-version"),
    pytest.param({"default_account": {"rcs_enabled": "yes"}}, "/default_account", id="rcs-enabled-not-bool"),
    pytest.param({"accounts": [{"sid": 42}]}, "/accounts/0/sid", id="sid-not-a-string"),
    pytest.param({"colour": "red"}, "allowed: version", id="unknown-top-level-key"),
    pytest.param({"accounts": [{"sid": "A", "colour": "red"}]}, "/accounts/0", id="unknown-account-key"),
    pytest.param({"accounts": [{"pod": "eu", "sid": "A"}]}, "/accounts/0/pod", id="unknown-pod"),
    pytest.param({"accounts": [{"pod": "in"}]}, "/accounts/0", id="account-without-sid"),
    pytest.param(
        {"accounts": [{"sid": "A", "agents": {"700": [TESTER_WITHOUT_CARRIERID]}}]},
        "/accounts/0/agents/700/0",
        id="tester-missing-carrierid",
    ),
    pytest.param(
        {"default_account": {"agents": {"700": [{**TESTER, "carrierid": "seven"}]}}},
        "/default_account",
        id="tester-field-wrong-type",
    ),
    pytest.param({"magic_agents": {"99999": "no_such_example"}}, "/magic_agents/99999", id="magic-agent-no-example"),
    pytest.param({"accounts": [{"sid": "A"}, {"pod": "in", "sid": "A"}]}, "/accounts", id="account-listed-twice"),
    pytest.param([], "/", id="json-array"),
    pytest.param("not json at all {", "JSON", id="non-json-body"),
]


@pytest.mark.parametrize(("document", "where"), BAD_STATE_DOCUMENTS)
def test_put_state__invalid_document_changes_nothing(client: FlaskClient, document: Any, where: str) -> None:
    acme = {"api_keys": ["acme-key"], "agents": {"700": [TESTER]}}
    assert client.put("/__mock/accounts/in/ACME", json=acme).status_code == 200
    assert delete_agent(client, EMPTY_AGENT).status_code == 200
    before = dump(client)

    if isinstance(document, str):
        response = client.put("/__mock/state", data=document, content_type="application/json")
    else:
        response = client.put("/__mock/state", json=document)

    assert_refused(response, 400, where)
    assert dump(client) == before
    assert get_testers(client, "700", sid="ACME", key="acme-key").get_json() == [TESTER]
    assert example_name(get_testers(client, EMPTY_AGENT)) == "agent_not_found"


def test_put_state__null_default_account_makes_unknown_sids_unauthorized(client: FlaskClient, spec: SpecIndex) -> None:
    doc = {"default_account": None, "accounts": [{"pod": "in", "sid": "KNOWN", "agents": {"700": [TESTER]}}]}
    assert client.put("/__mock/state", json=doc).status_code == 200

    unknown = get_testers(client, SEED_AGENT, sid="UNKNOWN")
    assert unknown.status_code == 401
    assert example_name(unknown) == "invalid_api_key"
    assert unknown.get_json() == spec.example("getTestersByAgent", "invalid_api_key").value
    assert get_testers(client, "700", sid="KNOWN").get_json() == [TESTER]
    assert client.get("/__mock/default-account").get_json() is None


# -- accounts, agents, testers ------------------------------------------------------------


def test_put_account__creates_account_visible_through_the_api(client: FlaskClient) -> None:
    response = client.put("/__mock/accounts/in/ACME", json={"api_keys": ["acme-key"], "agents": {"700": [TESTER]}})
    assert response.status_code == 200
    assert response.get_json() == {"status": "stored", "pod": "in", "sid": "ACME"}

    account = client.get("/__mock/accounts/in/ACME")
    assert account.status_code == 200
    assert account.get_json() == {
        "pod": "in",
        "sid": "ACME",
        "rcs_enabled": True,
        "api_key_sha256": [sha256("acme-key")],
        "agents": {"700": [TESTER]},
    }
    assert "acme-key" not in account.get_data(as_text=True)

    ok = get_testers(client, "700", sid="ACME", key="acme-key")
    assert ok.status_code == 200
    assert ok.get_json() == [TESTER]
    # A listed account has only its own agents, and only its own keys.
    assert example_name(get_testers(client, SEED_AGENT, sid="ACME", key="acme-key")) == "agent_not_found"
    wrong_key = get_testers(client, "700", sid="ACME", key="not-acme")
    assert wrong_key.status_code == 401
    assert example_name(wrong_key) == "invalid_api_key"


def test_put_account__without_keys_accepts_any_key(client: FlaskClient) -> None:
    assert client.put("/__mock/accounts/in/OPEN", json={"agents": {"700": [TESTER]}}).status_code == 200
    assert "api_key_sha256" not in client.get("/__mock/accounts/in/OPEN").get_json()
    assert get_testers(client, "700", sid="OPEN", key="anything").get_json() == [TESTER]


def test_put_account__rcs_disabled_answers_rcs_not_enabled(client: FlaskClient) -> None:
    body = {"rcs_enabled": False, "agents": {"700": [TESTER]}}
    assert client.put("/__mock/accounts/in/OFF", json=body).status_code == 200
    response = get_testers(client, "700", sid="OFF")
    assert response.status_code == 400
    assert example_name(response) == "rcs_not_enabled"


def test_put_account__replaces_an_existing_account(client: FlaskClient) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"701": []}}).status_code == 200
    assert client.get("/__mock/accounts/in/ACME").get_json()["agents"] == {"701": []}
    assert example_name(get_testers(client, "700", sid="ACME")) == "agent_not_found"


def test_accounts__are_per_pod(client: FlaskClient) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200

    assert client.get("/__mock/accounts/in/ACME").status_code == 200
    assert_refused(client.get("/__mock/accounts/na/ACME"), 404, "no listed account")
    assert_refused(client.delete("/__mock/accounts/na/ACME"), 404)
    assert get_testers(client, "700", sid="ACME", pod="in").get_json() == [TESTER]
    # On na the SID is no listed account: it is served by the default account, which has no agent 700.
    on_na = get_testers(client, "700", sid="ACME", pod="na")
    assert on_na.status_code == 400
    assert example_name(on_na) == "agent_not_found"
    assert get_testers(client, SEED_AGENT, sid="ACME", pod="na").status_code == 200
    assert [(a["pod"], a["sid"]) for a in dump(client)["accounts"]] == [("in", "ACME")]


def test_delete_account__falls_back_to_default_and_second_delete_is_404(client: FlaskClient) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200

    response = client.delete("/__mock/accounts/in/ACME")
    assert response.status_code == 200
    assert response.get_json() == {"status": "removed"}

    assert_refused(client.get("/__mock/accounts/in/ACME"), 404)
    assert_refused(client.delete("/__mock/accounts/in/ACME"), 404, "no listed account")
    assert example_name(get_testers(client, "700", sid="ACME")) == "agent_not_found"
    assert get_testers(client, SEED_AGENT, sid="ACME").status_code == 200


def test_get_account__unknown_account_is_404(client: FlaskClient) -> None:
    assert_refused(client.get("/__mock/accounts/in/NOBODY"), 404, "no listed account")


BAD_ACCOUNT_BODIES = [
    pytest.param({"rcs_enabled": "yes"}, "/rcs_enabled", id="rcs-enabled-not-bool"),
    pytest.param({"colour": "red"}, "allowed: rcs_enabled", id="unknown-key"),
    pytest.param({"sid": "ACME"}, "allowed: rcs_enabled", id="sid-in-body"),
    pytest.param({"api_keys": [""]}, "/api_keys/0", id="empty-api-key"),
    pytest.param({"api_keys": "acme-key"}, "/api_keys", id="api-keys-not-a-list"),
    pytest.param({"api_key_sha256": ["xyz"]}, "/api_key_sha256/0", id="hash-not-sha256"),
    pytest.param({"agents": {"700": [TESTER_WITHOUT_CARRIERID]}}, "/agents/700/0", id="tester-missing-field"),
    pytest.param({"agents": {"700": "nope"}}, "/agents/700", id="testers-not-a-list"),
    pytest.param({"agents": {"a/b": []}}, "/agents", id="agent-number-with-slash"),
    pytest.param([], "/", id="json-array"),
    pytest.param("{not json", "JSON", id="non-json-body"),
]


@pytest.mark.parametrize(("body", "where"), BAD_ACCOUNT_BODIES)
def test_put_account__invalid_body_changes_nothing(client: FlaskClient, body: Any, where: str) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200
    before = dump(client)
    if isinstance(body, str):
        response = client.put("/__mock/accounts/in/ACME", data=body, content_type="application/json")
    else:
        response = client.put("/__mock/accounts/in/ACME", json=body)
    assert_refused(response, 400, where)
    assert dump(client) == before
    assert get_testers(client, "700", sid="ACME").get_json() == [TESTER]


def test_put_agent__creates_and_replaces_an_agent_of_a_listed_account(client: FlaskClient) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={}).status_code == 200

    response = client.put("/__mock/accounts/in/ACME/agents/700", json={"testers": [TESTER]})
    assert response.status_code == 200
    assert response.get_json() == {"status": "stored", "agent_number": "700"}
    assert get_testers(client, "700", sid="ACME").get_json() == [TESTER]

    assert client.put("/__mock/accounts/in/ACME/agents/700", json={"testers": [OTHER_TESTER]}).status_code == 200
    assert get_testers(client, "700", sid="ACME").get_json() == [OTHER_TESTER]

    assert client.put("/__mock/accounts/in/ACME/agents/701", json={}).status_code == 200
    empty = get_testers(client, "701", sid="ACME")
    assert empty.status_code == 200
    assert empty.get_json() == []


def test_put_agent__unknown_account_is_404(client: FlaskClient) -> None:
    before = dump(client)
    assert_refused(client.put("/__mock/accounts/in/NOBODY/agents/700", json={"testers": []}), 404, "no listed account")
    assert_refused(client.put("/__mock/accounts/na/NOBODY/agents/700", json={"testers": []}), 404)
    assert dump(client) == before


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param({"testers": [TESTER_WITHOUT_CARRIERID]}, "/testers/0", id="tester-missing-field"),
        pytest.param({"testers": [{**TESTER, "override_dcs_check": "no"}]}, "/testers/0", id="tester-wrong-type"),
        pytest.param({"testers": "none"}, "/testers", id="testers-not-a-list"),
        pytest.param({"colour": "red"}, "allowed: testers", id="unknown-key"),
        pytest.param([TESTER], "/", id="json-array"),
        pytest.param("nope", "JSON", id="non-json-body"),
    ],
)
def test_put_agent__invalid_body_changes_nothing(client: FlaskClient, body: Any, where: str) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200
    before = dump(client)
    if isinstance(body, str):
        response = client.put("/__mock/accounts/in/ACME/agents/700", data=body, content_type="application/json")
    else:
        response = client.put("/__mock/accounts/in/ACME/agents/700", json=body)
    assert_refused(response, 400, where)
    assert dump(client) == before


def test_remove_agent__agent_is_gone_and_second_remove_is_404(client: FlaskClient) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200

    response = client.delete("/__mock/accounts/in/ACME/agents/700")
    assert response.status_code == 200
    assert response.get_json() == {"status": "removed"}
    assert example_name(get_testers(client, "700", sid="ACME")) == "agent_not_found"

    assert_refused(client.delete("/__mock/accounts/in/ACME/agents/700"), 404, "no such agent")
    assert_refused(client.delete("/__mock/accounts/in/NOBODY/agents/700"), 404, "no listed account")


def test_add_tester__appends_to_the_agent(client: FlaskClient) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200

    response = client.post("/__mock/accounts/in/ACME/agents/700/testers", json=OTHER_TESTER)
    assert response.status_code == 201
    assert response.get_json() == {"status": "added", "testers": 2}
    assert get_testers(client, "700", sid="ACME").get_json() == [TESTER, OTHER_TESTER]


def test_add_tester__unknown_account_or_agent_is_404(client: FlaskClient) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200
    before = dump(client)
    assert_refused(client.post("/__mock/accounts/in/ACME/agents/999/testers", json=TESTER), 404, "no such agent")
    assert_refused(client.post("/__mock/accounts/in/NOBODY/agents/700/testers", json=TESTER), 404, "no listed account")
    assert_refused(client.post("/__mock/accounts/na/ACME/agents/700/testers", json=TESTER), 404, "no listed account")
    assert dump(client) == before


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param(TESTER_WITHOUT_CARRIERID, "carrierid", id="missing-required-field"),
        pytest.param({**TESTER, "carrierid": "7"}, "/carrierid", id="wrong-type"),
        pytest.param([TESTER], None, id="json-array"),
        pytest.param("nope", "JSON", id="non-json-body"),
    ],
)
def test_add_tester__invalid_tester_changes_nothing(client: FlaskClient, body: Any, where: str | None) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200
    before = dump(client)
    url = "/__mock/accounts/in/ACME/agents/700/testers"
    if isinstance(body, str):
        response = client.post(url, data=body, content_type="application/json")
    else:
        response = client.post(url, json=body)
    assert_refused(response, 400, where)
    assert dump(client) == before
    assert get_testers(client, "700", sid="ACME").get_json() == [TESTER]


# -- the default account -------------------------------------------------------------------


def test_get_default_account__is_the_seed_template(client: FlaskClient, spec: SpecIndex) -> None:
    response = client.get("/__mock/default-account")
    assert response.status_code == 200
    assert response.get_json() == default_seed_document(spec)["default_account"]


def test_put_default_account__replaces_the_template_for_every_sid(client: FlaskClient) -> None:
    response = client.put("/__mock/default-account", json={"agents": {"800": [TESTER]}})
    assert response.status_code == 200
    assert response.get_json() == {"status": "stored"}

    assert client.get("/__mock/default-account").get_json() == {"rcs_enabled": True, "agents": {"800": [TESTER]}}
    for pod, sid in (("in", "ANY1"), ("na", "ANY2")):
        assert get_testers(client, "800", sid=sid, pod=pod).get_json() == [TESTER]
        assert example_name(get_testers(client, SEED_AGENT, sid=sid, pod=pod)) == "agent_not_found"


def test_put_default_account__brings_back_agents_deleted_through_the_api(client: FlaskClient) -> None:
    # A new template stands for every SID, as a re-created template agent does (put_agent).
    assert delete_agent(client, EMPTY_AGENT, sid="S").status_code == 200
    assert example_name(get_testers(client, EMPTY_AGENT, sid="S")) == "agent_not_found"

    body = {"agents": {EMPTY_AGENT: [TESTER]}}
    assert client.put("/__mock/default-account", json=body).status_code == 200

    assert get_testers(client, EMPTY_AGENT, sid="OTHER").get_json() == [TESTER]
    back = get_testers(client, EMPTY_AGENT, sid="S")
    assert back.status_code == 200
    assert back.get_json() == [TESTER]


def test_put_default_account__rcs_disabled_answers_rcs_not_enabled(client: FlaskClient) -> None:
    assert client.put("/__mock/default-account", json={"rcs_enabled": False}).status_code == 200
    assert example_name(get_testers(client, SEED_AGENT)) == "rcs_not_enabled"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param({"rcs_enabled": 1}, "/rcs_enabled", id="rcs-enabled-not-bool"),
        pytest.param({"api_keys": [""]}, "/api_keys/0", id="empty-key"),
        pytest.param({"agents": {"800": [TESTER_WITHOUT_CARRIERID]}}, "/agents/800/0", id="tester-missing-field"),
        pytest.param({"agents": []}, "/agents", id="agents-not-an-object"),
        pytest.param([], "/", id="json-array"),
        pytest.param("nope", "JSON", id="non-json-body"),
    ],
)
def test_put_default_account__invalid_body_changes_nothing(client: FlaskClient, body: Any, where: str) -> None:
    before = dump(client)
    if isinstance(body, str):
        response = client.put("/__mock/default-account", data=body, content_type="application/json")
    else:
        response = client.put("/__mock/default-account", json=body)
    assert_refused(response, 400, where)
    assert dump(client) == before


def test_delete_default_account__unknown_sids_get_invalid_api_key(client: FlaskClient) -> None:
    assert client.put("/__mock/accounts/in/ACME", json={"agents": {"700": [TESTER]}}).status_code == 200

    response = client.delete("/__mock/default-account")
    assert response.status_code == 200
    assert response.get_json() == {"status": "removed"}

    assert client.get("/__mock/default-account").get_json() is None
    assert dump(client)["default_account"] is None
    for pod in PODS:
        unknown = get_testers(client, SEED_AGENT, sid="UNLISTED", pod=pod)
        assert unknown.status_code == 401
        assert example_name(unknown) == "invalid_api_key"
    assert get_testers(client, "700", sid="ACME").get_json() == [TESTER]


def test_default_account_agents__404_when_there_is_no_default_account(client: FlaskClient) -> None:
    assert client.delete("/__mock/default-account").status_code == 200
    before = dump(client)
    assert_refused(client.put("/__mock/default-account/agents/800", json={"testers": []}), 404, "default account")
    assert_refused(client.delete(f"/__mock/default-account/agents/{SEED_AGENT}"), 404)
    assert_refused(client.post(f"/__mock/default-account/agents/{SEED_AGENT}/testers", json=TESTER), 404)
    assert dump(client) == before


def test_put_default_agent__adds_an_agent_for_every_sid(client: FlaskClient) -> None:
    response = client.put("/__mock/default-account/agents/800", json={"testers": [TESTER]})
    assert response.status_code == 200
    assert response.get_json() == {"status": "stored", "agent_number": "800"}
    assert get_testers(client, "800", sid="A", pod="in").get_json() == [TESTER]
    assert get_testers(client, "800", sid="B", pod="na").get_json() == [TESTER]
    assert get_testers(client, SEED_AGENT).status_code == 200  # the other template agents stay


def test_put_default_agent__recreates_an_agent_deleted_through_the_api(client: FlaskClient) -> None:
    assert delete_agent(client, EMPTY_AGENT, sid="S").status_code == 200
    assert example_name(get_testers(client, EMPTY_AGENT, sid="S")) == "agent_not_found"
    assert dump(client)["deleted_default_agents"] == [{"pod": "in", "sid": "S", "agent_number": EMPTY_AGENT}]

    assert client.put(f"/__mock/default-account/agents/{EMPTY_AGENT}", json={"testers": [TESTER]}).status_code == 200

    assert get_testers(client, EMPTY_AGENT, sid="S").get_json() == [TESTER]
    assert dump(client)["deleted_default_agents"] == []


def test_put_default_agent__invalid_body_changes_nothing(client: FlaskClient) -> None:
    before = dump(client)
    response = client.put("/__mock/default-account/agents/800", json={"testers": [TESTER_WITHOUT_CARRIERID]})
    assert_refused(response, 400, "/testers/0")
    assert dump(client) == before


def test_remove_default_agent__gone_for_every_sid_and_second_remove_is_404(client: FlaskClient) -> None:
    response = client.delete(f"/__mock/default-account/agents/{SEED_AGENT}")
    assert response.status_code == 200
    assert response.get_json() == {"status": "removed"}
    for pod, sid in (("in", "A"), ("na", "B")):
        assert example_name(get_testers(client, SEED_AGENT, sid=sid, pod=pod)) == "agent_not_found"
    assert_refused(client.delete(f"/__mock/default-account/agents/{SEED_AGENT}"), 404, "no such agent")


def test_add_default_tester__visible_for_every_sid(client: FlaskClient) -> None:
    response = client.post(f"/__mock/default-account/agents/{EMPTY_AGENT}/testers", json=TESTER)
    assert response.status_code == 201
    assert response.get_json() == {"status": "added", "testers": 1}
    assert get_testers(client, EMPTY_AGENT, sid="A").get_json() == [TESTER]
    assert get_testers(client, EMPTY_AGENT, sid="B", pod="na").get_json() == [TESTER]


def test_add_default_tester__unknown_agent_is_404_and_invalid_tester_is_400(client: FlaskClient) -> None:
    before = dump(client)
    assert_refused(client.post("/__mock/default-account/agents/999/testers", json=TESTER), 404, "no such agent")
    assert_refused(
        client.post(f"/__mock/default-account/agents/{EMPTY_AGENT}/testers", json=TESTER_WITHOUT_CARRIERID),
        400,
        "carrierid",
    )
    assert dump(client) == before


# -- scenarios ------------------------------------------------------------------------------


def test_arm_scenario__answers_201_with_id_and_remaining(client: FlaskClient, spec: SpecIndex) -> None:
    response = client.post("/__mock/scenarios", json={"scenario": "gateway_error"})
    assert response.status_code == 201
    armed = response.get_json()
    assert isinstance(armed["id"], int)
    assert armed["scenario"] == "gateway_error"
    assert armed["remaining"] == 1
    assert armed["match"] == {}

    hit = get_testers(client)
    assert hit.status_code == 500
    assert example_name(hit) == "gateway_error"
    assert hit.get_json() == spec.example("getTestersByAgent", "gateway_error").value
    assert get_testers(client).status_code == 200  # used up
    assert client.get("/__mock/scenarios").get_json() == []


def test_arm_scenario__times_counts_down_in_the_listing(client: FlaskClient) -> None:
    armed = arm_scenario(client, "rate_limited", times=2, match={"pod": "na", "operation": "getTestersByAgent"})
    assert armed["remaining"] == 2
    assert armed["match"] == {"pod": "na", "operation": "getTestersByAgent"}
    assert client.get("/__mock/scenarios").get_json() == [armed]

    assert get_testers(client, pod="in").status_code == 200  # the match leaves the IN pod alone
    first = get_testers(client, pod="na")
    assert first.status_code == 429
    assert example_name(first) == "rate_limited"
    (listed,) = client.get("/__mock/scenarios").get_json()
    assert listed["remaining"] == 1
    assert get_testers(client, pod="na").status_code == 429
    assert client.get("/__mock/scenarios").get_json() == []
    assert get_testers(client, pod="na").status_code == 200


def test_arm_scenario__canonical_operation_matches_its_variants(client: FlaskClient) -> None:
    arm_scenario(client, "internal_server_error", times=None, match={"operation": "getTestersByAgent"})
    post = client.post("/in/v1/S/rcs/agent/testersbyagent", json={"agent_number": SEED_AGENT}, headers=API_HEADERS)
    assert example_name(post) == "internal_server_error"
    newer = client.get(
        "/in/v1/S/rcs/agenttester/testersbyagent", query_string={"agent_number": SEED_AGENT}, headers=API_HEADERS
    )
    assert example_name(newer) == "internal_server_error"
    assert delete_agent(client, EMPTY_AGENT).status_code == 200  # another operation: untouched


def test_arm_scenario__times_null_lasts_until_disarmed(client: FlaskClient) -> None:
    armed = arm_scenario(client, "gateway_error", times=None)
    assert armed["remaining"] is None
    for _ in range(5):
        assert example_name(get_testers(client)) == "gateway_error"
    assert client.get("/__mock/scenarios").get_json() == [armed]

    response = client.delete(f"/__mock/scenarios/{armed['id']}")
    assert response.status_code == 200
    assert response.get_json() == {"status": "disarmed", "count": 1}
    assert client.get("/__mock/scenarios").get_json() == []
    assert get_testers(client).status_code == 200


def test_disarm_scenarios__removes_all(client: FlaskClient) -> None:
    arm_scenario(client, "gateway_error", times=None)
    arm_scenario(client, "rate_limited", times=3)
    response = client.delete("/__mock/scenarios")
    assert response.status_code == 200
    assert response.get_json() == {"status": "disarmed", "count": 2}
    assert client.get("/__mock/scenarios").get_json() == []
    assert get_testers(client).status_code == 200


def test_disarm_scenario__unknown_id_is_404(client: FlaskClient) -> None:
    armed = arm_scenario(client, "gateway_error")
    assert_refused(client.delete("/__mock/scenarios/9999"), 404, "with this id")
    assert client.get("/__mock/scenarios").get_json() == [armed]
    assert client.delete(f"/__mock/scenarios/{armed['id']}").status_code == 200
    assert_refused(client.delete(f"/__mock/scenarios/{armed['id']}"), 404)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param({"scenario": "no_such_scenario"}, "/scenario", id="unknown-scenario"),
        pytest.param(
            {"scenario": "agent_deleted", "match": {"operation": "getTestersByAgent"}},
            "/scenario",
            id="scenario-not-of-matched-operation",
        ),
        pytest.param(
            {"scenario": "gateway_error", "match": {"operation": "getTesters"}}, "/match/operation", id="unknown-op"
        ),
        pytest.param({"scenario": "gateway_error", "times": 0}, "/times", id="times-zero"),
        pytest.param({"scenario": "gateway_error", "times": -1}, "/times", id="times-negative"),
        pytest.param({"scenario": "gateway_error", "times": "2"}, "/times", id="times-string"),
        pytest.param({"scenario": "gateway_error", "colour": "red"}, "allowed: scenario", id="extra-key"),
        pytest.param({"scenario": "gateway_error", "match": {"pod": "eu"}}, "/match/pod", id="unknown-pod"),
        pytest.param({"scenario": "gateway_error", "match": {"host": "x"}}, "allowed: pod", id="extra-match-key"),
        pytest.param({"times": 1}, "scenario", id="no-scenario"),
        pytest.param([], "/", id="json-array"),
        pytest.param("nope", "JSON", id="non-json-body"),
    ],
)
def test_arm_scenario__invalid_request_is_400_and_arms_nothing(client: FlaskClient, body: Any, where: str) -> None:
    if isinstance(body, str):
        response = client.post("/__mock/scenarios", data=body, content_type="application/json")
    else:
        response = client.post("/__mock/scenarios", json=body)
    assert_refused(response, 400, where)
    assert client.get("/__mock/scenarios").get_json() == []
    assert get_testers(client).status_code == 200


# -- faults ----------------------------------------------------------------------------------


def test_fault_latency__delays_the_response(client: FlaskClient, spec: SpecIndex) -> None:
    armed = arm_fault(client, "latency", times=1, params={"ms": 150})
    assert armed["fault"] == "latency"
    assert armed["remaining"] == 1
    assert armed["params"] == {"ms": 150}

    # The delay is handed to a server that waits asynchronously, as granian's worker does: no clock read.
    delays: list[float] = []
    response = client.get(
        "/in/v1/S/rcs/agent/testersbyagent",
        query_string={"agent_number": SEED_AGENT},
        headers=API_HEADERS,
        environ_overrides={DEFERRED_LATENCY: delays},
    )
    assert delays == [0.150]
    assert response.status_code == 200
    assert response.get_json() == spec.example("getTestersByAgent", "testers").value
    assert client.get("/__mock/faults").get_json() == []
    untouched: list[float] = []
    client.get(
        "/in/v1/S/rcs/agent/testersbyagent",
        query_string={"agent_number": SEED_AGENT},
        headers=API_HEADERS,
        environ_overrides={DEFERRED_LATENCY: untouched},
    )
    assert untouched == []  # times=1: used up


def test_fault_empty_response__default_status_is_200(client: FlaskClient) -> None:
    arm_fault(client, "empty_response", times=1)
    response = get_testers(client)
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["X-Mock-Source"] == "fault"


def test_fault_empty_response__status_from_params(client: FlaskClient) -> None:
    arm_fault(client, "empty_response", times=1, params={"status": 503})
    response = get_testers(client)
    assert response.status_code == 503
    assert response.data == b""


def test_fault_malformed_body__is_not_valid_json(client: FlaskClient) -> None:
    real = {agent: get_testers(client, agent).data for agent in (SEED_AGENT, EMPTY_AGENT)}
    arm_fault(client, "malformed_body", times=2)
    for agent in (SEED_AGENT, EMPTY_AGENT):
        response = get_testers(client, agent)
        assert response.status_code == 200
        assert response.data == real[agent][: max(1, len(real[agent]) // 2)]  # the first half of the real body
        with pytest.raises(ValueError, match=r".+"):
            json.loads(response.data)


def test_fault_malformed_body__status_from_params(client: FlaskClient) -> None:
    arm_fault(client, "malformed_body", params={"status": 502})
    response = get_testers(client)
    assert response.status_code == 502
    with pytest.raises(ValueError, match=r".+"):
        json.loads(response.data)


def test_fault_random_5xx__rate_1_gives_documented_500_examples(client: FlaskClient, spec: SpecIndex) -> None:
    documented_500 = {n for n, e in spec.operations["getTestersByAgent"].examples.items() if e.status == 500}
    arm_fault(client, "random_5xx", params={"rate": 1.0, "seed": 7})
    names = set()
    for _ in range(20):
        response = get_testers(client)
        name = example_name(response)
        assert name is not None
        example = spec.example("getTestersByAgent", name)
        assert (response.status_code, response.get_json()) == (500, example.value)
        names.add(name)
    assert names == documented_500  # every documented 500 drawn (the seed fixes the draws)


def test_fault_random_5xx__rate_0_never_fails(client: FlaskClient) -> None:
    arm_fault(client, "random_5xx", params={"rate": 0})
    for _ in range(30):
        assert get_testers(client).status_code == 200
    (armed,) = client.get("/__mock/faults").get_json()
    assert armed["remaining"] is None


def _random_5xx_sequence(seed: int) -> list[tuple[int, str | None]]:
    client = create_app().test_client()
    arm_fault(client, "random_5xx", params={"rate": 0.5, "seed": seed})
    return [(r.status_code, example_name(r)) for r in (get_testers(client) for _ in range(30))]


def test_fault_random_5xx__fixed_seed_repeats_across_fresh_apps() -> None:
    first = _random_5xx_sequence(1234)
    second = _random_5xx_sequence(1234)
    assert first == second
    statuses = {status for status, _ in first}
    assert statuses == {200, 500}  # a rate of 0.5 over 30 requests: a mix, fixed by the seed


def test_fault_random_5xx__times_bounds_the_failures(client: FlaskClient) -> None:
    arm_fault(client, "random_5xx", times=2, params={"rate": 1})
    assert [get_testers(client).status_code for _ in range(4)] == [500, 500, 200, 200]
    assert client.get("/__mock/faults").get_json() == []


def test_fault_connection_reset__buffered_request_raises_connection_dropped(client: FlaskClient) -> None:
    arm_fault(client, "connection_reset", times=1)
    with pytest.raises(ConnectionDropped):
        client.get(
            "/in/v1/S/rcs/agent/testersbyagent",
            query_string={"agent_number": SEED_AGENT},
            headers=API_HEADERS,
            buffered=True,
        )
    # One request took the fault; the next is whole again.
    assert get_testers(client).status_code == 200


def test_fault_connection_reset__body_stops_midway_when_iterated(client: FlaskClient) -> None:
    full = get_testers(client).data
    arm_fault(client, "connection_reset", times=1)
    response = get_testers(client)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(full))
    chunks = iter(response.response)
    received = next(chunks)
    with pytest.raises(ConnectionDropped):
        next(chunks)
    assert 0 < len(received) < len(full)
    assert full.startswith(received)


def test_fault_times__bounds_how_many_requests_get_it(client: FlaskClient) -> None:
    armed = arm_fault(client, "empty_response", times=3)
    assert armed["remaining"] == 3
    bodies = [get_testers(client).data for _ in range(5)]
    whole = create_app().test_client()
    assert bodies == [b"", b"", b"", get_testers(whole).data, get_testers(whole).data]
    assert client.get("/__mock/faults").get_json() == []


def test_fault_match__only_matching_requests_get_it(client: FlaskClient) -> None:
    arm_fault(client, "empty_response", match={"pod": "na", "agent_number": EMPTY_AGENT})
    assert get_testers(client, EMPTY_AGENT, pod="in").get_json() == []
    assert get_testers(client, SEED_AGENT, pod="na").status_code == 200
    assert get_testers(client, SEED_AGENT, pod="na").data != b""
    assert get_testers(client, EMPTY_AGENT, pod="na").data == b""


def test_disarm_fault__by_id_and_all(client: FlaskClient) -> None:
    first = arm_fault(client, "empty_response")
    second = arm_fault(client, "malformed_body")
    assert [f["id"] for f in client.get("/__mock/faults").get_json()] == [first["id"], second["id"]]

    response = client.delete(f"/__mock/faults/{first['id']}")
    assert response.status_code == 200
    assert response.get_json() == {"status": "disarmed", "count": 1}
    assert client.get("/__mock/faults").get_json() == [second]
    assert_refused(client.delete(f"/__mock/faults/{first['id']}"), 404)

    response = client.delete("/__mock/faults")
    assert response.status_code == 200
    assert response.get_json() == {"status": "disarmed", "count": 1}
    assert client.get("/__mock/faults").get_json() == []
    assert get_testers(client).status_code == 200


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param({"fault": "latency", "params": {"ms": 120001}}, "/params/ms", id="ms-over-limit"),
        pytest.param({"fault": "latency", "params": {"ms": -1}}, "/params/ms", id="ms-negative"),
        pytest.param({"fault": "latency", "params": {"jitter_ms": 200000}}, "/params/jitter_ms", id="jitter-over"),
        pytest.param({"fault": "random_5xx", "params": {"rate": 2}}, "/params/rate", id="rate-2"),
        pytest.param({"fault": "random_5xx", "params": {"seed": "x"}}, "/params/seed", id="seed-not-int"),
        pytest.param({"fault": "empty_response", "params": {"status": 99}}, "/params/status", id="status-99"),
        pytest.param({"fault": "latency", "params": {"delay": 5}}, "allowed: ms", id="unknown-param"),
        pytest.param({"fault": "explode"}, "/fault", id="unknown-kind"),
        pytest.param({"fault": "latency", "times": 0}, "/times", id="times-zero"),
        pytest.param({"fault": "latency", "colour": "red"}, "allowed: fault", id="extra-key"),
        pytest.param({"fault": "latency", "match": {"operation": "nope"}}, "/match/operation", id="unknown-op"),
        pytest.param({"params": {"ms": 1}}, "fault", id="no-fault"),
        pytest.param([], "/", id="json-array"),
        pytest.param("nope", "JSON", id="non-json-body"),
    ],
)
def test_arm_fault__invalid_request_is_400_and_arms_nothing(client: FlaskClient, body: Any, where: str) -> None:
    if isinstance(body, str):
        response = client.post("/__mock/faults", data=body, content_type="application/json")
    else:
        response = client.post("/__mock/faults", json=body)
    assert_refused(response, 400, where)
    assert client.get("/__mock/faults").get_json() == []


# -- journal ----------------------------------------------------------------------------------


def _traffic(client: FlaskClient) -> None:
    """Four requests: IN GET 200, NA GET 400, IN POST 200, IN DELETE 200 (oldest first)."""
    assert get_testers(client, SEED_AGENT, pod="in").status_code == 200
    assert get_testers(client, "999", pod="na").status_code == 400
    post = client.post("/in/v1/S/rcs/agent/testersbyagent", json={"agent_number": SEED_AGENT}, headers=API_HEADERS)
    assert post.status_code == 200
    assert delete_agent(client, EMPTY_AGENT).status_code == 200


def test_journal__newest_first(client: FlaskClient) -> None:
    assert journal(client) == []
    _traffic(client)
    entries = journal(client)
    assert [(e["pod"], e["method"], e["operation"], e["status"]) for e in entries] == [
        ("in", "DELETE", "deleteAgent", 200),
        ("in", "POST", "postTestersByAgent", 200),
        ("na", "GET", "getTestersByAgent", 400),
        ("in", "GET", "getTestersByAgent", 200),
    ]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    newest = entries[0]
    assert newest["path"] == f"/in/v1/S/rcs/agent/{EMPTY_AGENT}"
    assert newest["sid"] == "S"
    assert newest["agent_number"] == EMPTY_AGENT
    assert newest["example"] == "agent_deleted"


def test_journal__filters_by_pod_operation_status_and_limit(client: FlaskClient) -> None:
    _traffic(client)
    assert {e["pod"] for e in journal(client, pod="na")} == {"na"}
    assert len(journal(client, pod="in")) == 3

    canonical = journal(client, operation="getTestersByAgent")
    assert [e["operation"] for e in canonical] == ["postTestersByAgent", "getTestersByAgent", "getTestersByAgent"]
    assert [e["operation"] for e in journal(client, operation="postTestersByAgent")] == ["postTestersByAgent"]
    assert [e["operation"] for e in journal(client, operation="deleteAgent")] == ["deleteAgent"]

    assert [(e["pod"], e["status"]) for e in journal(client, status=400)] == [("na", 400)]
    assert len(journal(client, status=200)) == 3
    assert journal(client, status=500) == []

    limited = journal(client, limit=2)
    assert [e["operation"] for e in limited] == ["deleteAgent", "postTestersByAgent"]
    assert len(journal(client, pod="in", operation="getTestersByAgent", status=200, limit=1)) == 1


@pytest.mark.parametrize(
    ("query", "where"),
    [
        pytest.param({"colour": "red"}, "valid: pod", id="unknown-filter"),
        pytest.param({"status": "abc"}, "/status", id="status-not-a-number"),
        pytest.param({"status": "-1"}, "/status", id="status-negative"),
        pytest.param({"limit": "0"}, "/limit", id="limit-zero"),
        pytest.param({"limit": "x"}, "/limit", id="limit-not-a-number"),
        pytest.param({"status": "\u00b2"}, "/status", id="status-superscript-two"),
        pytest.param({"limit": "\u00b2"}, "/limit", id="limit-superscript-two"),
        pytest.param({"pod": "eu"}, "/pod", id="unknown-pod"),
    ],
)
def test_journal__bad_filter_is_400(client: FlaskClient, query: dict[str, str], where: str) -> None:
    _traffic(client)
    assert_refused(client.get("/__mock/journal", query_string=query), 400, where)
    assert len(journal(client)) == 4


def test_journal__bounded_by_the_store_limit(spec: SpecIndex) -> None:
    seed = StateData.from_document(default_seed_document(spec), state_validator(spec))
    client = create_app(store=MemoryStore(seed, journal_limit=5)).test_client()
    for i in range(12):
        get_testers(client, str(i))
        assert len(journal(client)) == min(i + 1, 5)
    entries = journal(client)
    assert len(entries) == 5
    assert [e["agent_number"] for e in entries] == ["11", "10", "9", "8", "7"]


def test_journal__api_keys_only_as_fingerprint(client: FlaskClient) -> None:
    secret = "journal-secret-key-3141592653"
    get_testers(client, key=secret)
    delete_agent(client, "999")
    client.get("/in/v1/S/rcs/agent/testersbyagent", query_string={"agent_number": SEED_AGENT})  # no key at all

    raw = client.get("/__mock/journal").get_data(as_text=True)
    assert secret not in raw
    assert sha256(secret) not in raw
    no_key, with_k, with_secret = journal(client)
    assert with_secret["api_key"] == "sha256:" + sha256(secret)[:8]
    assert with_k["api_key"] == "sha256:" + sha256(API_KEY)[:8]
    assert no_key["api_key"] is None
    assert no_key["status"] == 401


def test_clear_journal__empties_it(client: FlaskClient) -> None:
    _traffic(client)
    response = client.delete("/__mock/journal")
    assert response.status_code == 200
    assert response.get_json() == {"status": "cleared"}
    assert journal(client) == []
    get_testers(client)
    assert len(journal(client)) == 1


def test_journal__disabled_by_config_keeps_nothing() -> None:
    client = create_app(config=MockConfig(journal=False)).test_client()
    _traffic(client)
    assert journal(client) == []


def test_journal__records_faults_and_scenarios_with_their_source(client: FlaskClient) -> None:
    arm_scenario(client, "gateway_error")
    arm_fault(client, "empty_response", times=1, match={"pod": "na"})
    get_testers(client, pod="in")
    get_testers(client, pod="na")
    faulted, armed = journal(client)
    assert (armed["source"], armed["example"], armed["status"]) == ("armed", "gateway_error", 500)
    assert (faulted["source"], faulted["status"]) == ("fault", 200)


# -- control plane switched off -----------------------------------------------------------------


def test_control_plane_disabled__answers_403_and_the_api_still_works() -> None:
    client = create_app(control_plane=False).test_client()

    response = client.get("/__mock/health")
    assert response.status_code == 403
    body = response.get_json()
    assert body["code"] == "MOCK403"
    assert body["data"]["error"]["error_code"] == "CONTROL_PLANE_DISABLED"

    for method, url in (("POST", "/__mock/reset"), ("GET", "/__mock/state"), ("POST", "/__mock/scenarios")):
        refused = client.open(url, method=method, json={"scenario": "gateway_error"})
        assert refused.status_code == 403
        assert refused.get_json()["code"] == "MOCK403"

    api = get_testers(client)
    assert api.status_code == 200
    assert api.get_json()[0]["phoneno"] == "91077XXXXXX79"
    assert delete_agent(client, EMPTY_AGENT).status_code == 200


def test_control_plane_disabled__state_is_untouched_by_refused_requests(spec: SpecIndex) -> None:
    app = create_app(control_plane=False)
    client = app.test_client()
    client.put("/__mock/state", json={"default_account": None})
    client.post("/__mock/scenarios", json={"scenario": "gateway_error"})
    handle = app.extensions["kaleyra_mock"]
    assert handle.store.dump().to_document() == default_seed_document(spec)
    assert get_testers(client).status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        pytest.param("GET", "/__mock/no-such-thing", 404, id="unknown-path"),
        pytest.param("GET", "/__mock/reset", 405, id="wrong-method"),
        pytest.param("PATCH", "/__mock/state", 405, id="patch-state"),
    ],
)
def test_control_plane__routing_errors_use_mock_codes_and_stay_out_of_the_journal(
    client: FlaskClient, method: str, url: str, status: int
) -> None:
    # The control document: "Errors use the mock's own codes (MOCK4xx)"; the journal is for API requests.
    response = client.open(url, method=method)
    assert response.status_code == status
    assert response.get_json()["code"] == f"MOCK{status}"
    assert journal(client) == []


def test_fresh_apps__do_not_share_state() -> None:
    first = create_app().test_client()
    second = create_app().test_client()
    assert first.delete("/__mock/default-account").status_code == 200
    arm_scenario(first, "gateway_error", times=None)
    assert get_testers(second).status_code == 200
    assert second.get("/__mock/default-account").get_json() is not None
    assert len(journal(second)) == 1
    assert journal(first) == []
    assert dump(second)["default_account"] is not None


REMOVABLE_TESTER = {
    "phoneno": "15550009",
    "test_status": "",
    "status": "ACTIVE",
    "agent_no": "48900",
    "id": "to-remove",
    "override_dcs_check": False,
    "carrierid": 2,
}


@pytest.mark.parametrize("base", ["/__mock/default-account", "/__mock/accounts/na/REM"])
def test_remove_tester__gone_from_the_api_and_404_the_second_time(base: str) -> None:
    client = create_app().test_client()
    if base.endswith("REM"):
        assert client.put(base, json={"agents": {"48900": []}}).status_code == 200
    assert client.post(f"{base}/agents/48900/testers", json=REMOVABLE_TESTER).status_code == 201
    url = "/na/v1/REM/rcs/agent/testersbyagent?agent_number=48900"
    api = {"api-key": "k", "Content-Type": "application/json"}
    assert "to-remove" in [t["id"] for t in client.get(url, headers=api).json]
    removed = client.delete(f"{base}/agents/48900/testers/to-remove")
    assert removed.status_code == 200
    assert removed.json == {"status": "removed", "count": 1}
    assert "to-remove" not in [t["id"] for t in client.get(url, headers=api).json]
    again = client.delete(f"{base}/agents/48900/testers/to-remove")
    assert again.status_code == 404
    assert again.json["code"] == "MOCK404"
    assert client.delete(f"{base}/agents/nope/testers/to-remove").status_code == 404


def test_put_default_account__api_keys_guard_every_unlisted_sid() -> None:
    client = create_app().test_client()
    stored = client.put("/__mock/default-account", json={"api_keys": ["ci-key"], "agents": {"1": []}})
    assert stored.status_code == 200
    url = "/in/v1/ANY-SID/rcs/agent/testersbyagent?agent_number=1"
    ok = client.get(url, headers={"api-key": "ci-key", "Content-Type": "application/json"})
    assert ok.status_code == 200
    wrong = client.get(url, headers={"api-key": "other", "Content-Type": "application/json"})
    assert wrong.status_code == 401
    assert wrong.json["data"]["error"]["error_message"] == "Invalid api-key"
    shown = client.get("/__mock/default-account").json
    assert "ci-key" not in json.dumps(shown)
    assert len(shown["api_key_sha256"]) == 1
    assert "ci-key" not in json.dumps(client.get("/__mock/state").json)
