"""Short runs of the soak figures (soak/run.py) against the real server, every worker: the long
ones run in `make soak`. Each figure decides `ok` by the issue's rules; these tests also check the
counts that make `ok` mean something."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_server.testing import start_server
from mock_server.web import MAX_BODY
from soak._hostile import (
    CONTROL_ACCEPTED,
    FOREIGN_MEDIA,
    HOSTILE_ORIGINS,
    WELCOME_ORIGINS,
    Check,
    Target,
    _echo_requests,
    api_body_routes,
    body_limits,
    conformance,
    control_body_routes,
    depth,
    echoes,
    origins,
    stalled_clients,
)
from soak.run import (
    HOSTILE_READ_TIMEOUT,
    STOP_LIMIT_S,
    concurrent_deletes,
    fuzz_server,
    kill9_rounds,
    sigterm_under_load,
    state_churn,
    stop_times,
)


def test_fuzz__hostile_requests_over_a_socket_get_clean_4xx_and_change_nothing(tmp_path: Path) -> None:
    report = fuzz_server(400, tmp_path)
    assert report["requests"] == 400
    assert report["server_errors"] == 0, report
    assert report["problems"] == [], report
    assert report["state_unchanged"] and report["alive_after"] and report["served_after"] == 200, report
    assert report["tracebacks_in_log"] == 0, report
    answered = sum(report["statuses"].values())
    # Whether granian answers a malformed request or closes the connection is the server's choice, not
    # the mock's, so these two are bounds: most requests were answered, and past routing and auth.
    assert answered >= 300, report
    assert {"400", "401", "404", "405"} <= set(report["statuses"]), report
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
    assert report["stop_seconds"] < STOP_LIMIT_S, report
    assert report["outcomes"].get("answered", 0) > 50, report
    assert report["outcomes"].get("torn", 0) == 0 and report["outcomes"].get("wrong", 0) == 0, report
    assert report["ok"]


def test_stop__every_process_ends_within_a_second_of_ctrl_c_or_sigterm_idle_or_busy(tmp_path: Path) -> None:
    """`make run` is measured in `make soak` (it needs the venv make builds); here the CLI, 3 tries a way."""
    report = stop_times(3, tmp_path, make=False)
    assert set(report["ways"]) == {
        f"kaleyra-mock {how} {load}" for how in ("sigint_group", "sigterm_parent") for load in ("idle", "in_flight")
    }, report
    for name, way in report["ways"].items():
        assert way["tries"] == 3, (name, way)
        assert way["worst_s"] < STOP_LIMIT_S, (name, way)
        assert way["left_running"] == 0, (name, way)  # no worker outlived its server: none left in /proc
        assert way["exit_codes"] == [0], (name, way)
        assert way["integrity"] == ["ok"] and way["answered_deletes_lost"] == 0, (name, way)
        assert way["outcomes"].get("torn", 0) == 0 and way["outcomes"].get("wrong", 0) == 0, (name, way)
    busy = [way["outcomes"].get("answered", 0) for name, way in report["ways"].items() if name.endswith("in_flight")]
    assert min(busy) > 0, report  # the load was there when the signal came
    assert report["worst_s"] < STOP_LIMIT_S and report["ok"], report


def test_kill9__the_state_file_opens_at_a_document_that_was_written(tmp_path: Path) -> None:
    report = kill9_rounds(2, tmp_path)
    assert report["problems"] == [], report
    assert sum(report["found"].values()) == 2, report
    assert report["ok"]


# -- hostile and careless clients (soak/_hostile.py), one server for the module ---------------------


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, Path]]:
    log = tmp_path_factory.mktemp("hostile") / "server.log"
    with log.open("w") as stderr:
        server = start_server(
            ("--workers", "2", "--read-timeout", str(HOSTILE_READ_TIMEOUT), "--log-level", "warning"), stderr=stderr
        )
    target = Target(server.url)
    try:
        yield target, log
    finally:
        target.close()
        assert server.stop() == 0


@pytest.fixture
def hostile(hostile_server: tuple[Target, Path]) -> Iterator[tuple[Target, Path]]:
    """The module's server, and its log from this test on: one test's traceback fails only it."""
    target, log = hostile_server
    offset = log.stat().st_size
    yield target, log
    target.reset()
    assert "Traceback" not in log.read_bytes()[offset:].decode(errors="replace")


def _held(check: Check, log: Path) -> None:
    assert check.problems == [], check.problems
    assert check.unasked_5xx == 0, check.statuses


def test_body_limits__one_byte_past_8_mib_is_413_however_framed(hostile: tuple[Target, Path]) -> None:
    target, log = hostile
    check = body_limits(target, sizes=(MAX_BODY, MAX_BODY + 1))
    _held(check, log)
    routes = len(api_body_routes()) + len(control_body_routes())
    # two sizes and two framings per route, then four declared-too-large and five incomplete bodies
    assert check.requests == routes * 2 * 2 + 4 + 5
    assert check.statuses[413] == routes * 2 + 4 and check.statuses[400] == 5


def test_origins__look_alike_origins_and_non_json_bodies_steer_nothing(hostile: tuple[Target, Path]) -> None:
    target, log = hostile
    check = origins(target)
    _held(check, log)
    # three writes per hostile origin, and two reads for each of three rebinding hosts; one body per
    # foreign media type; one arming per welcome origin; one API request from a page
    assert check.statuses == Counter(
        {403: 3 * len(HOSTILE_ORIGINS) + 3 * 2, 415: len(FOREIGN_MEDIA), 201: len(WELCOME_ORIGINS), 200: 1}
    )


def test_depth__documents_past_the_nesting_bound_are_refused_on_every_route(hostile: tuple[Target, Path]) -> None:
    target, log = hostile
    depths = (300, 100_000)
    check = depth(target, depths=depths)
    _held(check, log)
    routes = [op_id for op_id, _method, _path in control_body_routes()]
    arming = [op_id for op_id in routes if op_id.startswith("arm")]  # their documents hold no tester
    holding = [op_id for op_id in routes if op_id not in arming]
    # A tester-holding document is taken at the bound and refused one level past it and at each depth;
    # an arming one refused at all four; the API's body taken below the bound and refused at, and
    # past it; then one wide document and four numbers refused, two ids past any not found.
    accepted = Counter(CONTROL_ACCEPTED[op_id] for op_id in holding) + Counter({200: 1})
    refused = len(holding) * (1 + len(depths)) + len(arming) * (2 + len(depths)) + (1 + len(depths)) + 1 + 4
    assert check.statuses == accepted + Counter({400: refused, 404: 2})


def test_stalled_clients__normal_traffic_keeps_its_latency_and_stalls_get_408(hostile: tuple[Target, Path]) -> None:
    target, log = hostile
    check = stalled_clients(target, HOSTILE_READ_TIMEOUT, uploads=48, headers_only=16, trickles=8, normal=100)
    _held(check, log)
    assert check.figures["stalled_outcomes"] == {"upload:408": 48, "trickle:408": 8, "headers:closed": 16}


def test_conformance__the_rfc_musts_hold_over_the_wire(hostile: tuple[Target, Path]) -> None:
    target, log = hostile
    check = conformance(target)
    _held(check, log)
    # one answer per request of the check's fixed list (each already held to its exact status): none skipped
    assert check.statuses == Counter({200: 9, 400: 22, 401: 3, 405: 6, 415: 2, 429: 1, 500: 1})


def test_echoes__no_refusal_quotes_what_it_refused(hostile: tuple[Target, Path]) -> None:
    target, log = hostile
    check = echoes(target)
    _held(check, log)
    assert check.requests == len(list(_echo_requests()))
