"""Short runs of the soak figures (soak/run.py) against the real server, every worker: the long
ones run in `make soak`. Each figure decides `ok` by the issue's rules; these tests also check the
counts that make `ok` mean something."""

from __future__ import annotations

from pathlib import Path

from soak.run import concurrent_deletes, fuzz_server, kill9_rounds, sigterm_under_load, state_churn


def test_fuzz__hostile_requests_over_a_socket_get_clean_4xx_and_change_nothing(tmp_path: Path) -> None:
    report = fuzz_server(400, tmp_path)
    assert report["requests"] == 400
    assert report["server_errors"] == 0, report
    assert report["problems"] == [], report
    assert report["state_unchanged"] and report["alive_after"] and report["served_after"] == 200, report
    assert report["tracebacks_in_log"] == 0, report
    answered = sum(report["statuses"].values())
    assert answered >= 300, report  # most requests were answered, not merely dropped
    assert {"400", "401", "404", "405"} <= set(report["statuses"]), report  # it reached past routing and auth
    assert report["ok"], report


def test_concurrent_deletes__one_agent_deleted_once_per_round_over_every_worker() -> None:
    report = concurrent_deletes(rounds=2)
    assert report["outcomes"] == {"agent_deleted": 2, "agent_not_found": 126}, report
    assert report["ok"]


def test_state_churn__dumps_taken_during_resets_loads_and_deletes_load_back() -> None:
    report = state_churn(1.5)
    assert report["problems"] == [], report
    assert all(report["calls"].get(kind, 0) > 0 for kind in ("reset", "load", "delete", "dump")), report
    assert report["ok"]


def test_sigterm_under_load__exits_0_quickly_and_tears_no_response() -> None:
    report = sigterm_under_load(after_s=1.0)
    assert report["exit_code"] == 0, report
    assert report["stop_seconds"] < 5, report
    assert report["outcomes"].get("answered", 0) > 50, report
    assert report["outcomes"].get("torn", 0) == 0 and report["outcomes"].get("wrong", 0) == 0, report
    assert report["ok"]


def test_kill9__the_state_file_opens_at_a_document_that_was_written(tmp_path: Path) -> None:
    report = kill9_rounds(2, tmp_path)
    assert report["problems"] == [], report
    assert sum(report["found"].values()) == 2, report
    assert report["ok"]
