"""The drift report from recorded exchanges (`python -m contracts.live.cassette`, `make drift`).

The cassettes here are written by the tests with `mock_server.core.Cassette`, shaped like an
application's own traffic (no probe names), and judged in-process by `main`. The `server`
tests run `make live`'s suite against the mock, then the cassette drift on the cassette that
run wrote, and compare the two reports part by part.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts._support import CONTRACT_API_KEY, CONTRACT_SID, SPEC
from contracts.live._drift import CANNOT_TELL, CONFIRMS, CONTRADICTS
from contracts.live.cassette import main
from mock_server.core import Cassette, Exchange, RecordedRequest, RecordedResponse, key_fingerprint
from tests._spec import ROOT
from tests.suites.test_drift_report import FULL, mock_server, run_live, stand_in_env

KEY = CONTRACT_API_KEY
SID = CONTRACT_SID
TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent"


def _exchange(
    method: str,
    path: str,
    answer: tuple[int, Any],
    *,
    query: str = "",
    key: str | None = KEY,
    content_type: str | None = "application/json",
    body: bytes = b"",
) -> Exchange:
    status, doc = answer
    headers = {"content-type": content_type} if content_type else {}
    return Exchange(
        request=RecordedRequest(method, "in", path, query, headers, key_fingerprint(key), body),
        response=RecordedResponse(status, (("content-type", "application/json"),), json.dumps(doc).encode()),
        upstream="https://rcs-api.in.kaleyra.io",
    )


def _example(operation: str, name: str) -> tuple[int, Any]:
    example = SPEC.example(operation, name)
    return example.status, example.value


def _traffic(**answers: tuple[int, Any]) -> list[Exchange]:
    """An application's session: testers of its agent, a delete, the delete again, the testers of the
    deleted agent, a request without a key. `answers` changes what one of them was answered."""
    testers = (200, SPEC.example("getTestersByAgent", "testers").value)
    plan = {
        "get": ("GET", TESTERS, "agent_number=48900", KEY, testers),
        "delete": ("DELETE", f"/v1/{SID}/rcs/agent/48400", "", KEY, _example("deleteAgent", "agent_deleted")),
        "again": ("DELETE", f"/v1/{SID}/rcs/agent/48400", "", KEY, _example("deleteAgent", "agent_not_found")),
        "deleted": ("GET", TESTERS, "agent_number=48400", KEY, _example("getTestersByAgent", "agent_not_found")),
        "no_key": ("GET", TESTERS, "agent_number=48900", None, _example("getTestersByAgent", "missing_api_key")),
    }
    return [
        _exchange(method, path, answers.get(step, answer), query=query, key=key)
        for step, (method, path, query, key, answer) in plan.items()
    ]


def _record(path: Path, exchanges: list[Exchange]) -> Path:
    cassette = Cassette(path)
    for exchange in exchanges:
        assert cassette.append(exchange)
    cassette.close()
    return path


def _drift(tmp_path: Path, *files: Path, args: tuple[str, ...] = ()) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "report"
    code = main([*map(str, files), "--out", str(out), *args])
    return code, json.loads((out / "drift.json").read_text()), (out / "drift.md").read_text()


def _parts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for i in doc["items"] for p in i["parts"]}


def test_drift_from_cassette__recorded_traffic_confirms_the_documented_items_it_holds(tmp_path: Path) -> None:
    cassette = _record(tmp_path / "app.jsonl", _traffic())
    code, doc, md = _drift(tmp_path, cassette)
    parts = _parts(doc)
    assert code == 0
    assert doc["origin"] == "cassette"
    assert doc["recorded"]["exchanges"] == doc["recorded"]["classified"] == 5
    assert (doc["target"]["agent_number"], doc["target"]["delete_agent_number"]) == ("48900", "48400")
    # each part names the exchange its verdict rests on
    assert (parts["D2-testers-path.sample"]["verdict"], parts["D2-testers-path.sample"]["exchanges"]) == (
        CONFIRMS,
        ["app.jsonl:1"],
    )
    assert (parts["D8-typo-and-json-string.typo"]["verdict"], parts["D8-typo-and-json-string.typo"]["exchanges"]) == (
        CONFIRMS,
        ["app.jsonl:2"],
    )
    assert parts["D8-typo-and-json-string.json-string"]["exchanges"] == ["app.jsonl:3"]
    deleted = parts["A2-testers-errors.deleted-agent"]
    assert (deleted["verdict"], deleted["exchanges"]) == (CONFIRMS, ["app.jsonl:4", "app.jsonl:2"])
    assert parts["A3-other-errors.no-key"]["verdict"] == CONFIRMS
    assert [a["source"] for a in doc["answers"] if a["sent"]] == [f"app.jsonl:{n}" for n in (1, 2, 3, 4, 5)]
    assert doc["exchanges"] == [json.loads(line) for line in cassette.read_text().splitlines()]
    assert f"- Written from a cassette, not a live run: {cassette}; 5 exchanges, 5 classified" in md
    assert "| D8-typo-and-json-string.typo |" in md and "| app.jsonl:2 |" in md


def test_drift_from_cassette__documented_contradiction__fails_the_report(tmp_path: Path) -> None:
    fixed = SPEC.example("deleteAgent", "agent_deleted").value | {"message": "Agent deleted successfully"}
    cassette = _record(tmp_path / "app.jsonl", _traffic(delete=(200, fixed)))
    code, doc, md = _drift(tmp_path, cassette)
    typo = _parts(doc)["D8-typo-and-json-string.typo"]
    assert code == 1
    assert doc["documented_contradictions"] == ["D8-typo-and-json-string"]
    assert (typo["verdict"], typo["fails_run"], typo["exchanges"]) == (CONTRADICTS, True, ["app.jsonl:2"])
    assert "'Agent deleted successfully' (documented 'Agent deleted succesfully')" in typo["observed"]
    assert "**The run fails**: the target contradicts what the spec marks documented in D8" in md


def test_drift_from_cassette__x_assumed_contradiction__is_reported_and_does_not_fail(tmp_path: Path) -> None:
    """An agent a DELETE answered agent-not-found is known absent: its testers GET is `unknown_agent`."""
    exchanges = [
        *_traffic(),
        _exchange("DELETE", f"/v1/{SID}/rcs/agent/47000", _example("deleteAgent", "agent_not_found")),
        _exchange("GET", TESTERS, (200, []), query="agent_number=47000"),
    ]
    code, doc, _ = _drift(tmp_path, _record(tmp_path / "app.jsonl", exchanges))
    unknown = _parts(doc)["A2-testers-errors.unknown-agent"]
    assert code == 0
    assert (unknown["verdict"], unknown["mark"], unknown["fails_run"]) == (CONTRADICTS, "x-assumed", False)
    assert unknown["exchanges"] == ["app.jsonl:7"]
    assert [n["exchange"] for n in doc["recorded"]["not_classified"]] == ["app.jsonl:6"]  # a DELETE of another agent


def test_drift_from_cassette__probes_it_does_not_hold__cannot_tell_with_the_reason(tmp_path: Path) -> None:
    """Another key refused, another agent answered []: neither is known to be wrong or absent, so no guess."""
    exchanges = [
        *_traffic(),
        _exchange("GET", TESTERS, (401, {"error": "Unauthorized"}), query="agent_number=48900", key="another-key"),
        _exchange("GET", TESTERS, (200, []), query="agent_number=47000"),
    ]
    code, doc, md = _drift(tmp_path, _record(tmp_path / "app.jsonl", exchanges))
    parts = _parts(doc)
    assert code == 0
    wrong_key = parts["A3-other-errors.wrong-key"]
    assert wrong_key["verdict"] == CANNOT_TELL
    assert "not in this cassette: a cassette holds keys as fingerprints" in wrong_key["observed"]
    assert parts["A2-testers-errors.unknown-agent"]["verdict"] == CANNOT_TELL
    assert "not in this cassette: no testers GET of an agent this cassette shows to be absent" in md
    assert {"wrong_key", "unknown_agent", "json_upper", "na_host_ai"} <= set(doc["recorded"]["probes_missing"])
    why = {n["exchange"]: n["why"] for n in doc["recorded"]["not_classified"]}
    assert "another api key" in why["app.jsonl:6"]
    assert "does not show to be absent" in why["app.jsonl:7"]


def test_drift_from_cassette__a_cut_short_line_is_skipped_and_reported(tmp_path: Path) -> None:
    cassette = tmp_path / "app.jsonl"
    lines = [e.to_line() for e in _traffic()]
    cassette.write_bytes(lines[0] + lines[1][:40] + b"\n" + b"".join(lines[2:]))
    code, doc, md = _drift(tmp_path, cassette)
    assert code == 0
    assert doc["recorded"]["exchanges"] == 4
    assert [s.split(":", 2)[:2] for s in doc["recorded"]["lines_skipped"]] == [["app.jsonl", "2"]]
    assert "1 line(s) skipped (app.jsonl:2: not strict JSON (cut short?))" in md
    # the line after it is read: the second DELETE is now the first of its agent
    assert _parts(doc)["D8-typo-and-json-string.typo"]["exchanges"] == ["app.jsonl:3"]


def test_drift_from_cassette__a_key_echoed_in_a_body_never_reaches_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cassette holds keys as fingerprints; a body that echoes one is redacted when KALEYRA_API_KEY names it."""
    monkeypatch.setenv("KALEYRA_API_KEY", KEY)
    echo = (404, {"code": "RCS404", "message": f"no route for api-key {KEY}", "data": {}, "error": {}})
    exchanges = [*_traffic(), _exchange("GET", f"/v1/{SID}/rcs/drift-probe-no-such-operation", echo)]
    cassette = _record(tmp_path / "app.jsonl", exchanges)
    assert f"api-key {KEY}" in cassette.read_text()
    _, doc, md = _drift(tmp_path, cassette)
    assert KEY not in md
    assert KEY not in json.dumps(doc)
    answer = next(a for a in doc["answers"] if a["probe"] == "not_found_path")
    assert (answer["source"], answer["status"]) == ("app.jsonl:6", 404)
    assert "no route for api-key ***" in answer["text"]
    assert "no route for api-key ***" in doc["exchanges"][-1]["response"]["body"]


def test_drift_from_cassette__a_file_with_no_exchange_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("not a cassette\n")
    assert main([str(empty), "--out", str(tmp_path / "report")]) == 2
    assert "no exchange in it" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_drift__runs_the_cassette_command_with_the_agent() -> None:
    done = subprocess.run(
        ["make", "-n", "drift", "CASSETTE=reports/live-cassette.jsonl", "AGENT=48900"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ".venv/bin/python -m contracts.live.cassette reports/live-cassette.jsonl --agent 48900" in done.stdout


# -- one live run, its cassette, the same verdicts ---------------------------------------------


def _verdicts(doc: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {p["id"]: (p["verdict"], p["fails_run"]) for p in _parts(doc).values()} | {
        i["id"]: (i["verdict"], i["fails_run"]) for i in doc["items"]
    }


@pytest.mark.server
@pytest.mark.parametrize("mock_args", [(), ("--error-layout", "error")], ids=["default", "error-layout-error"])
def test_live_cassette__judged_again_gives_the_live_runs_verdicts(tmp_path: Path, mock_args: tuple[str, ...]) -> None:
    with mock_server(tmp_path / "state.sqlite3", *mock_args) as server:
        server.reset(keys=True)
        live = run_live(tmp_path / "live", "--destructive", **stand_in_env(server.in_url, **FULL))
    assert live.returncode == 0, live.output
    assert live.report is not None
    cassette = tmp_path / "live" / "live-cassette.jsonl"
    lines = cassette.read_text().splitlines()
    assert live.report["exchanges"] == [json.loads(line) for line in lines]
    assert len(lines) == live.report["bounds"]["requests_sent"]
    assert all(doc["probe"] and doc["masked"] for doc in live.report["exchanges"])
    assert KEY not in cassette.read_text()
    done = subprocess.run(  # the command `make drift` runs
        [sys.executable, "-m", "contracts.live.cassette", str(cassette), "--out", str(tmp_path / "again")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    again = json.loads((tmp_path / "again" / "drift.json").read_text())
    assert again["recorded"]["classified"] == len(lines) and again["recorded"]["probes_missing"] == []
    assert _verdicts(again) == _verdicts(live.report)
    assert {p["id"]: p["exchanges"] for p in _parts(again).values()} == {
        p["id"]: p["exchanges"] for p in _parts(live.report).values()
    }
    layout = (CONTRADICTS, False) if mock_args else (CONFIRMS, False)
    assert _verdicts(live.report)["A1-error-envelope.layout"] == _verdicts(again)["A1-error-envelope.layout"] == layout
    if mock_args:
        assert "under error" in _parts(again)["A1-error-envelope.layout"]["observed"]
