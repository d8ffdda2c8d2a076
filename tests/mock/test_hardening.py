"""Inputs that once earned a 500, leaked a key or broke a promise, each pinned down."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from mock_server.core import Armed, MemoryStore, SpecIndex, SqliteStore, StateData, default_seed_document
from mock_server.core import state_validator as make_validator
from mock_server.web import create_app

API = {"api-key": "k", "Content-Type": "application/json"}
SECRET = "sk-very-secret-4711"
SPEC = SpecIndex.load()


@pytest.fixture
def client() -> FlaskClient:
    return create_app().test_client()


def _journal(client: FlaskClient) -> list[dict[str, Any]]:
    return client.get("/__mock/journal").json  # type: ignore[no-any-return]


# -- bodies Python's json would take, and a later step would choke on --------------------------

HOSTILE_BODIES = {
    "deep-nesting": b"[" * 200_000,
    "lone-surrogate": b'{"agent_number": "\\ud800"}',
    "nan": b'{"agent_number": NaN}',
    "infinity": b'{"agent_number": "1", "x": Infinity}',
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_post_testers_by_agent__hostile_json_is_invalid_json(client: FlaskClient, body: bytes) -> None:
    response = client.post("/in/v1/S/rcs/agent/testersbyagent", data=body, headers=API)
    assert response.status_code == 400
    assert response.json["code"] == "RCS701"


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
@pytest.mark.parametrize("target", ["/__mock/state", "/__mock/faults", "/__mock/accounts/in/S"])
def test_control__hostile_json_is_refused_with_400(client: FlaskClient, target: str, body: bytes) -> None:
    before = client.get("/__mock/state").json
    method = "POST" if target.endswith("faults") else "PUT"
    response = client.open(target, method=method, data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["code"] == "MOCK400"
    assert client.get("/__mock/state").json == before


def test_arm_fault__nan_latency_is_refused(client: FlaskClient) -> None:
    body = b'{"fault": "latency", "params": {"ms": NaN}}'
    assert client.post("/__mock/faults", data=body, headers={"Content-Type": "application/json"}).status_code == 400
    assert client.get("/__mock/faults").json == []


def test_add_tester__lone_surrogate_is_refused_and_the_agent_keeps_answering(client: FlaskClient) -> None:
    tester = b'{"phoneno": "\\ud800", "test_status": "", "status": "A", "agent_no": "1", "id": "x", '
    tester += b'"override_dcs_check": false, "carrierid": 1}'
    url = "/__mock/default-account/agents/48900/testers"
    assert client.post(url, data=tester, headers={"Content-Type": "application/json"}).status_code == 400
    assert client.get("/in/v1/S/rcs/agent/testersbyagent?agent_number=48900", headers=API).status_code == 200


@pytest.mark.parametrize(
    ("status", "rule"),
    [
        (100, "minimum 200"),
        (101, "minimum 200"),
        (199, "minimum 200"),
        (204, 'not {"enum": [204, 205, 304]}'),
        (304, 'not {"enum": [204, 205, 304]}'),
        (600, "maximum 599"),
    ],
)
def test_arm_fault__status_without_a_body_or_out_of_range_is_refused(
    client: FlaskClient, status: int, rule: str
) -> None:
    response = client.post("/__mock/faults", json={"fault": "empty_response", "params": {"status": status}})
    assert response.status_code == 400
    assert response.json["data"]["error"]["error_message"] == f"/params/status: must satisfy {rule}"
    assert client.get("/__mock/faults").json == []


# -- api keys never come back in a refusal -------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "body", "where"),
    [
        ("/__mock/accounts/na/ACME", {"api_keys": SECRET}, '/api_keys: must satisfy type "array"'),
        ("/__mock/accounts/na/ACME", {"api_keys": [SECRET, 5]}, '/api_keys/1: must satisfy type "string"'),
        (
            "/__mock/accounts/na/ACME",
            {"api_key_sha256": [SECRET]},
            '/api_key_sha256/0: must satisfy pattern "^[0-9a-f]{64}$"',
        ),
        ("/__mock/default-account", {"api_keys": {"k": SECRET}}, '/api_keys: must satisfy type "array"'),
        ("/__mock/state", {"accounts": {"sid": "A", "api_keys": [SECRET]}}, '/accounts: must satisfy type "array"'),
        (
            "/__mock/state",
            {"accounts": [{"sid": "A", "api_keys": [SECRET], "pod": "eu"}]},
            '/accounts/0/pod: must satisfy enum ["in", "na", "*"]',
        ),
    ],
)
def test_control__refusals_never_echo_an_api_key(client: FlaskClient, target: str, body: Any, where: str) -> None:
    response = client.put(target, json=body)
    assert response.status_code == 400
    assert SECRET not in response.get_data(as_text=True)
    assert response.json["data"]["error"]["error_message"] == where  # where and which rule, never the value


# -- the control plane is not for web pages -------------------------------------------------------


def test_control__a_foreign_origin_is_refused(client: FlaskClient) -> None:
    response = client.post("/__mock/reset", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.json["code"] == "MOCK403"


@pytest.mark.parametrize("media", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"])
def test_control__a_form_body_is_refused(client: FlaskClient, media: str) -> None:
    client.delete("/in/v1/S/rcs/agent/48400", headers=API)
    response = client.post("/__mock/reset", data=b"x=1", headers={"Content-Type": media})
    assert response.status_code == 415
    again = client.delete("/in/v1/S/rcs/agent/48400", headers=API)
    assert again.json["data"]["error"]["error_code"] == "PROV_ERROR"  # the reset did not happen


@pytest.mark.parametrize("origin", [None, "http://127.0.0.1:8080", "http://localhost:3000"])
def test_control__curl_and_local_pages_are_welcome(client: FlaskClient, origin: str | None) -> None:
    headers = {"Origin": origin} if origin else {}
    assert client.post("/__mock/reset", headers=headers).status_code == 200


def test_control__invalid_utf8_and_oversized_bodies_use_mock_codes_and_stay_out_of_the_journal(
    client: FlaskClient,
) -> None:
    bad = client.get("/__mock/health", environ_overrides={"PATH_INFO": "/__mock/\xff"})
    assert bad.status_code == 400
    assert bad.json["code"] == "MOCK400"
    big = client.put("/__mock/state", data=b" " * (9 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    assert big.json["code"] == "MOCK413"
    assert _journal(client) == []


@pytest.mark.parametrize(
    "length",
    ["\u00b2", "4\u0662", "-1", "1e3", "0x10"],
    ids=["superscript", "arabic-digit", "negative", "exponent", "hex"],
)
@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/in/v1/S/rcs/agent/testersbyagent", SPEC.shared["bad_request"].value["code"]),  # the API's refusal
        ("/__mock/scenarios", "MOCK400"),  # the control plane's own code
    ],
)
def test_read_body__a_content_length_that_is_no_ascii_number_is_400(
    client: FlaskClient, path: str, code: str, length: str
) -> None:
    """str.isdigit() takes "²" and int() then raises: RFC 9110 lengths are ASCII digits only."""
    response = client.post(path, data=b"{}", headers=API, environ_overrides={"CONTENT_LENGTH": length})
    assert response.status_code == 400
    assert response.json["code"] == code
    assert client.get("/__mock/scenarios").json == []


# -- faults ---------------------------------------------------------------------------------


def test_random_5xx__does_not_use_up_a_spoiling_fault(client: FlaskClient) -> None:
    client.post("/__mock/faults", json={"fault": "random_5xx", "times": 1})
    client.post("/__mock/faults", json={"fault": "empty_response", "times": 1})
    first = client.get("/in/v1/S/rcs/agent/testersbyagent?agent_number=48900", headers=API)
    assert first.status_code == 500
    second = client.get("/in/v1/S/rcs/agent/testersbyagent?agent_number=48900", headers=API)
    assert second.status_code == 200
    assert second.get_data() == b""
    assert client.get("/__mock/faults").json == []


def test_empty_response__keeps_the_real_status_unless_told(client: FlaskClient) -> None:
    client.post("/__mock/faults", json={"fault": "empty_response", "times": 1})
    unauthorized = client.get("/in/v1/S/rcs/agent/testersbyagent?agent_number=48900")
    assert unauthorized.status_code == 401
    assert unauthorized.get_data() == b""


def test_faults__match_the_sid_the_gateway_path_resolves_from_the_key(client: FlaskClient) -> None:
    client.put("/__mock/accounts/in/ACME", json={"api_keys": ["acme-key"], "agents": {"7": []}})
    client.post("/__mock/faults", json={"fault": "random_5xx", "times": 1, "match": {"sid": "ACME"}})
    headers = {"api-key": "acme-key", "Content-Type": "application/json"}
    assert client.get("/in/wsgw/v1/agent/testersbyagent?agent_number=7", headers=headers).status_code == 500
    assert client.get("/in/v1/ACME/rcs/agent/testersbyagent?agent_number=7", headers=headers).status_code == 200


def test_engine__forgets_the_random_generators_of_disarmed_faults() -> None:
    seed = StateData.from_document(default_seed_document(SPEC), make_validator(SPEC))
    app = create_app(MemoryStore(seed))
    client = app.test_client()
    for _ in range(20):
        armed = client.post("/__mock/faults", json={"fault": "random_5xx", "params": {"rate": 0}}).json
        client.get("/in/v1/S/rcs/agent/testersbyagent?agent_number=48900", headers=API)
        client.delete(f"/__mock/faults/{armed['id']}")
    engine = app.extensions["kaleyra_mock"].engine
    last = client.post("/__mock/faults", json={"fault": "random_5xx", "params": {"rate": 0}}).json
    client.get("/in/v1/S/rcs/agent/testersbyagent?agent_number=48900", headers=API)
    assert list(engine._rngs) == [last["id"]]  # the twenty disarmed ones' generators are gone


# -- state ------------------------------------------------------------------------------------


def test_get_state__a_dump_with_long_names_loads_back(client: FlaskClient) -> None:
    sid, agent = "S" * 300, "9" * 300
    assert client.put(f"/__mock/accounts/in/{sid}", json={"agents": {agent: []}}).status_code == 200
    dump = client.get("/__mock/state").json
    assert client.put("/__mock/state", json=dump).status_code == 200
    assert client.get("/__mock/state").json == dump


def test_sqlite_store__a_seed_fills_a_new_file_once(tmp_path: Any) -> None:
    seed = StateData.from_document(default_seed_document(SPEC), make_validator(SPEC))
    store = SqliteStore(tmp_path / "s.sqlite3", seed=seed)
    assert store.testers("in", "ANY", "48900") == default_seed_document(SPEC)["default_account"]["agents"]["48900"]
    assert store.delete_agent("in", "ANY", "48900") is True
    again = SqliteStore(tmp_path / "s.sqlite3", seed=seed)  # an existing file is not re-seeded
    assert again.testers("in", "ANY", "48900") is None


def test_sqlite_store__standing_faults_come_back_after_reset(tmp_path: Any) -> None:
    seed = StateData.from_document(default_seed_document(SPEC), make_validator(SPEC))
    store = SqliteStore(tmp_path / "s.sqlite3", seed=seed)
    store.set_standing_faults([Armed(0, "fault", "random_5xx", None, params={"rate": 1.0})])
    assert [f.name for f in store.control().faults] == ["random_5xx"]
    store.disarm("fault", None)
    store.reset()
    assert [f.name for f in store.control().faults] == ["random_5xx"]
    assert json.loads(json.dumps(store.control().faults[0].params)) == {"rate": 1.0}


def test_error_layout__default_is_data_error_and_error_moves_it_to_the_top_level() -> None:
    import httpx

    from kaleyra_rcs import AgentNotFound, KaleyraRCS
    from mock_server.core import MockConfig

    default = create_app().test_client()
    default.delete("/in/v1/S/rcs/agent/48400", headers=API)
    body = default.delete("/in/v1/S/rcs/agent/48400", headers=API).json
    assert "error" not in body  # the layout of the one RCS error body Kaleyra shows
    assert body["data"]["error"]["error_code"] == "PROV_ERROR"

    app = create_app(config=MockConfig(error_layout="error"))
    client = app.test_client()
    client.delete("/in/v1/S/rcs/agent/48400", headers=API)
    body = client.delete("/in/v1/S/rcs/agent/48400", headers=API).json
    assert body["data"] == {}
    assert body["error"]["error_code"] == "PROV_ERROR"
    assert body["code"] == "RCS904"
    ok = client.get("/in/v1/S/rcs/agent/testersbyagent?agent_number=48900", headers=API)
    assert ok.status_code == 200  # successes are untouched
    rcs = KaleyraRCS(api_key="k", sid="S", base_url="http://mock/in", transport=httpx.WSGITransport(app=app))
    with pytest.raises(AgentNotFound) as raised:
        rcs.delete_agent("48400")
    assert raised.value.error_code == "PROV_ERROR"
    assert raised.value.detail == {"status": "FAILED", "message": "Agent not found"}
