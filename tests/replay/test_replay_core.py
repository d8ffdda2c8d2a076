"""Replay's pure parts (the key, the order, what is left out of an answer) and the mock in-process
with `MockConfig(replay=...)`: answers, fall-through, strict misses, the journal, reset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from mock_server.core import (
    Cassette,
    CassetteError,
    Exchange,
    MemoryStore,
    MockConfig,
    RecordedRequest,
    RecordedResponse,
    Replayer,
    ReplayIndex,
    SpecIndex,
    mask,
    upstream_path,
)
from mock_server.web import create_app

TESTERS = "/v1/S/rcs/agent/testersbyagent"
DELETE = "/v1/S/rcs/agent/777"
HEADERS = {"api-key": "k", "Content-Type": "application/json"}


def exchange(
    method: str,
    path: str,
    status: int,
    body: bytes,
    *,
    query: str = "",
    pod: str = "in",
    prefer: str | None = None,
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
    example: str | None = None,
) -> Exchange:
    request_headers = {"prefer": prefer} if prefer else {}
    return Exchange(
        RecordedRequest(method, pod, path, query, request_headers, api_key="sha256:0123abcd"),
        RecordedResponse(status, headers, body),
        operation="deleteAgent" if method == "DELETE" else "getTestersByAgent",
        example=example,
    )


def write(path: Path, *exchanges: Exchange) -> Path:
    cassette = Cassette(path)
    for item in exchanges:
        assert cassette.append(item)
    cassette.close()
    return path


def three_deletes() -> list[Exchange]:
    return [
        exchange("DELETE", DELETE, 200, b'{"n":1}', example="agent_deleted"),
        exchange("DELETE", DELETE, 400, b'{"n":2}', example="agent_not_found"),
        exchange("DELETE", DELETE, 400, b'{"n":3}', example="agent_not_found"),
    ]


# -- the key and the order -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "upstream"),
    [("/in/v1/S/x", "/v1/S/x"), ("/na/v1/S/x", "/v1/S/x"), ("/v1/S/x", "/v1/S/x"), ("/india/v1", "/india/v1")],
)
def test_replay__path_key__drops_only_the_mocks_pod_prefix(path: str, upstream: str) -> None:
    assert upstream_path(path) == upstream


def test_replay__repeated_request__answers_in_recorded_order_then_repeats_the_last() -> None:
    replayer = Replayer(ReplayIndex.from_exchanges(three_deletes()), MemoryStore())
    bodies = [replayer.answer("DELETE", "in", "/in" + DELETE, "", None) for _ in range(5)]
    assert [found[1].body for found in bodies if found] == [b'{"n":1}', b'{"n":2}', b'{"n":3}', b'{"n":3}', b'{"n":3}']


def test_replay__key__is_method_pod_path_query_and_prefer_and_nothing_else() -> None:
    recorded = exchange("GET", TESTERS, 200, b"[]", query="agent_number=5", prefer="example=testers")
    index = ReplayIndex.from_exchanges([recorded])
    assert index.find("GET", "in", "/in" + TESTERS, "agent_number=5", "example=testers") is not None
    assert index.find("GET", "in", TESTERS, "agent_number=5", "example=testers") is not None  # no prefix
    for method, pod, query, prefer in [
        ("POST", "in", "agent_number=5", "example=testers"),
        ("GET", "na", "agent_number=5", "example=testers"),
        ("GET", "in", "agent_number=05", "example=testers"),
        ("GET", "in", "agent_number=5&x=1", "example=testers"),
        ("GET", "in", "agent_number=5", None),
    ]:
        assert index.find(method, pod, TESTERS, query, prefer) is None, (method, pod, query, prefer)


def test_replay__masked_cassette__a_request_matches_its_masked_query() -> None:
    recorded = mask(exchange("GET", TESTERS, 200, b"[]", query="agent_number=919876543210"))
    assert recorded.request.query != "agent_number=919876543210"
    index = ReplayIndex.from_exchanges([recorded])
    assert index.find("GET", "in", TESTERS, "agent_number=919876543210", None) is not None
    assert index.find("GET", "in", TESTERS, "agent_number=919876543211", None) is None


def test_replay__cassettes_in_the_order_given__continue_one_key(tmp_path: Path) -> None:
    first = write(tmp_path / "a.jsonl", *three_deletes()[:1])
    second = write(tmp_path / "b.jsonl", *three_deletes()[1:])
    replayer = Replayer(ReplayIndex.load([first, second]), MemoryStore())
    sources = [replayer.answer("DELETE", "in", DELETE, "", None) for _ in range(3)]
    assert [found[0].source for found in sources if found] == ["a.jsonl:1", "b.jsonl:1", "b.jsonl:2"]


def test_replay__recorded_headers__hop_by_hop_and_the_mocks_own_are_left_out() -> None:
    headers = (
        ("Content-Type", "application/json"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "keep-alive"),
        ("Content-Length", "99"),
        ("X-Mock-Source", "state"),
        ("Set-Cookie", "a=masked"),
    )
    index = ReplayIndex.from_exchanges([exchange("GET", TESTERS, 200, b"[]", headers=headers)])
    found = Replayer(index, MemoryStore()).answer("GET", "in", TESTERS, "", None)
    assert found is not None
    assert found[1].headers == (("Content-Type", "application/json"), ("Set-Cookie", "a=masked"))
    assert found[1].source == "replay"


def test_replay__unreadable_cassette__is_one_cassette_error_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"not a cassette\n")
    with pytest.raises(CassetteError, match=r"broken\.jsonl: no exchange in it"):
        ReplayIndex.load([broken])
    with pytest.raises(CassetteError, match="cannot read"):
        ReplayIndex.load([tmp_path / "missing.jsonl"])


# -- in-process ------------------------------------------------------------------------------


def app_client(*exchanges: Exchange, strict: bool = False, layout: str = "data") -> FlaskClient:
    config = MockConfig(
        replay=ReplayIndex.from_exchanges(exchanges),
        replay_strict=strict,
        error_layout="error" if layout == "error" else "data",
    )
    return create_app(config=config).test_client()


def test_replay__in_process__answers_recorded_bytes_and_journals_the_cassette_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", *three_deletes())
    config = MockConfig(replay=ReplayIndex.load([path]))
    client = create_app(config=config).test_client()
    response = client.delete("/na" + DELETE, headers=HEADERS)
    assert (response.status_code, response.headers["X-Mock-Source"]) == (400, "state")  # another pod: the mock
    response = client.delete("/in" + DELETE, headers=HEADERS)
    assert (response.status_code, response.data) == (200, b'{"n":1}')
    assert response.headers["X-Mock-Source"] == "replay"
    assert response.headers["X-Mock-Example"] == "agent_deleted"
    entry = client.get("/__mock/journal").get_json()[0]
    assert (entry["source"], entry["cassette"], entry["operation"]) == ("replay", "c.jsonl:1", "deleteAgent")
    assert entry["api_key"].startswith("sha256:")


def test_replay__no_match__falls_through_to_the_normal_mock() -> None:
    client = app_client(*three_deletes())
    response = client.get(f"/in{TESTERS}?agent_number=48900", headers=HEADERS)
    assert response.status_code == 200
    assert response.headers["X-Mock-Source"] == "state"


@pytest.mark.parametrize("layout", ["error", "data"])
def test_replay_strict__no_match__is_the_mocks_own_404_naming_method_and_path(layout: str) -> None:
    client = app_client(*three_deletes(), strict=True, layout=layout)
    response = client.get(f"/in{TESTERS}?agent_number=48900", headers=HEADERS)
    assert response.status_code == 404
    assert response.headers["X-Mock-Source"] == "replay"
    assert response.headers["X-Mock-Example"] == "not_in_cassette"
    body = response.get_json()
    assert body["code"] == "MOCK404"
    error = body["data"]["error"] if layout == "data" else body["error"]
    assert error["error_code"] == "NOT_IN_CASSETTE"
    assert error["error_message"] == f"no recorded exchange matches GET /in{TESTERS}?agent_number=48900"
    assert client.get("/__mock/journal").get_json()[0]["example"] == "not_in_cassette"


def test_replay_strict__a_path_no_operation_takes__is_replayed_too() -> None:
    recorded = exchange(
        "GET", "/v1/S/rcs/nothing-here", 404, b"<html>gone</html>", headers=(("Content-Type", "text/html"),)
    )
    response = app_client(recorded, strict=True).get("/in/v1/S/rcs/nothing-here")
    assert (response.status_code, response.data, response.mimetype) == (404, b"<html>gone</html>", "text/html")


def test_replay__reset__rewinds_every_key() -> None:
    client = app_client(*three_deletes())
    assert [client.delete(DELETE, headers=HEADERS).data for _ in range(2)] == [b'{"n":1}', b'{"n":2}']
    assert client.post("/__mock/reset").status_code == 200
    assert client.delete(DELETE, headers=HEADERS).data == b'{"n":1}'


def test_replay__health__names_the_cassettes_and_the_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", *three_deletes())
    with path.open("ab") as fh:
        fh.write(b'{"v":1,"cut sho')  # a line cut short is skipped, not fatal
    client = create_app(config=MockConfig(replay=ReplayIndex.load([path]), replay_strict=True)).test_client()
    replay = client.get("/__mock/health").get_json()["replay"]
    assert replay["cassettes"] == [str(path)]
    assert (replay["exchanges"], replay["keys"], replay["strict"]) == (3, 1, True)
    assert len(replay["skipped"]) == 1
    assert replay["skipped"][0].startswith("c.jsonl:4:")
    assert json.dumps(replay)  # JSON as it is served


def test_replay_strict__not_in_cassette__is_listed_as_every_operations_own_404() -> None:
    for op in SpecIndex.load().operations.values():
        own = op.own["not_in_cassette"]
        assert (own.status, own.value["code"]) == (404, "MOCK404"), op.operation_id
        assert own.value["data"]["error"]["error_code"] == "NOT_IN_CASSETTE"
