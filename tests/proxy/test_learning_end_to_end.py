"""Learning from a sandbox, end to end over real sockets: one recorded session, then the same
cassette replayed, calibrated from and judged for drift.

The sandbox is played by a second real mock (both pods, listed keys, a seed, and the error layout
the mock itself does not use, `--error-layout error`) on IN, and by the gateway of `_gateway.py`
(TLS with a test CA, gzip, chunked, extra headers) on NA. The proxy records with two workers.
"""

from __future__ import annotations

import gzip
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kaleyra_rcs import AgentNotFound, KaleyraRCS
from mock_server.core import Exchange, key_fingerprint, read_cassette
from tests._spec import ROOT, Spec
from tests.proxy._gateway import TESTER, Gateway
from tests.proxy._support import HEADERS, KEY, SID, Running, journal, running, violations

pytestmark = pytest.mark.server

SPEC = Spec.load()
TESTERS = f"/v1/{SID}/rcs/agent/testersbyagent"
PHONE = "+919876543210"
SANDBOX_TESTER = {**SPEC.examples("getTestersByAgent")["testers"].value[0], "phoneno": PHONE}


@dataclass
class Session:
    """What the proxy answered while it recorded, and the cassette it left."""

    answers: dict[str, httpx.Response]
    raw: dict[str, bytes]  # bodies as they came off the wire, Content-Encoding not undone
    cassette: Path
    exchanges: list[Exchange]


def _seed(folder: Path) -> Path:
    account = {"rcs_enabled": True, "api_keys": [KEY], "agents": {"48900": [SANDBOX_TESTER], "48400": []}}
    path = folder / "sandbox-seed.json"
    path.write_text(json.dumps({"default_account": account, "accounts": [{"pod": "*", "sid": SID, **account}]}))
    return path


def _requests() -> list[tuple[str, str, str, dict[str, str]]]:
    """(name, method, path under the proxy, headers): an application's session, a few mistakes included."""
    return [
        ("testers", "GET", f"/in{TESTERS}?agent_number=48900", HEADERS),
        ("no_key", "GET", f"/in{TESTERS}?agent_number=48900", {"Content-Type": "application/json"}),
        ("missing_agent", "GET", f"/in{TESTERS}", HEADERS),
        ("delete_first", "DELETE", f"/in/v1/{SID}/rcs/agent/48400", HEADERS),
        ("delete_again", "DELETE", f"/in/v1/{SID}/rcs/agent/48400", HEADERS),
        ("gzip", "GET", f"/na{TESTERS}?agent_number=gzip", HEADERS),
        ("chunked", "GET", f"/na{TESTERS}?agent_number=chunked", HEADERS),
        ("headers", "GET", f"/na{TESTERS}?agent_number=headers", HEADERS),
        ("zero", "GET", f"/na{TESTERS}?agent_number=zero", HEADERS),
    ]


def _send(url: str, method: str, path: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    with httpx.Client(timeout=20) as client, client.stream(method, url + path, headers=headers) as response:
        raw = b"".join(response.iter_raw())
    return response, raw


@pytest.fixture(scope="module")
def session(folder: Path, ca: tuple[Path, ssl.SSLContext]) -> Iterator[Session]:
    gateway = Gateway(context=ca[1]).start()
    cassette = folder / "sandbox.jsonl"
    upstream_args = ["--workers", "1", "--error-layout", "error", "--seed", str(_seed(folder))]
    try:
        with running(upstream_args, folder, "sandbox") as sandbox:
            proxy_args = [
                *("--workers", "2", "--upstream", f"in={sandbox.url}/in", "--upstream", f"na={gateway.url}"),
                *("--upstream-ca", str(ca[0]), "--record", str(cassette)),
            ]
            answers: dict[str, httpx.Response] = {}
            raw: dict[str, bytes] = {}
            with running(proxy_args, folder, "recorder") as proxy:
                for name, method, path, headers in _requests():
                    answers[name], raw[name] = _send(proxy.url, method, path, headers)
                for text in (cassette.read_text(), json.dumps(journal(proxy.url)), proxy.log()):
                    assert KEY not in text
        exchanges, skipped = read_cassette(cassette)
        assert skipped == []
        yield Session(answers, raw, cassette, exchanges)
    finally:
        gateway.stop()


def _recorded(session: Session, name: str) -> Exchange:
    """The exchange of one request of the session, by its place (both workers append in answer order)."""
    names = [n for n, *_ in _requests()]
    return session.exchanges[names.index(name)]


# -- proxy and record ------------------------------------------------------------------------------


def test_record__one_line_per_exchange_with_the_verdicts_and_no_key(session: Session) -> None:
    assert [(e.request.method, e.response.status) for e in session.exchanges] == [
        (method, session.answers[name].status_code) for name, method, *_ in _requests()
    ]
    assert {e.request.api_key for e in session.exchanges} == {key_fingerprint(KEY), None}
    text = session.cassette.read_text()
    assert KEY not in text and PHONE not in text and "9876543210" not in text
    # Every answer of the sandbox mock is one the spec documents, in the other error layout.
    assert _recorded(session, "no_key").layout == "error"
    assert _recorded(session, "delete_again").example == "agent_not_found"
    assert [v.kind for v in _recorded(session, "zero").violations] == ["schema"]
    assert violations(session.answers["zero"]) == [v.token() for v in _recorded(session, "zero").violations]
    assert session.answers["delete_first"].headers["x-mock-violations"] == ""
    assert session.answers["gzip"].headers["content-encoding"] == "gzip"
    print("\n" + text.splitlines()[3][:600])


# -- replay -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replaying(session: Session, folder: Path) -> Iterator[Running]:
    with running(["--workers", "2", "--replay", str(session.cassette)], folder, "replay") as server:
        yield server


def test_replay__the_session_again__byte_for_byte_raw_and_decoded(session: Session, replaying: Running) -> None:
    """The session asked again in recorded order (the same request twice gets the second recorded
    answer): byte-equal to the cassette on the wire, and again, after a reset rewinds the replay,
    through httpx's decoding. Where masking changed nothing (the sandbox mock's answers) it is
    byte-equal to what the proxy answered live, too."""
    httpx.post(f"{replaying.url}/__mock/reset", timeout=10)
    for name, method, path, headers in _requests():
        recorded = _recorded(session, name)
        response, raw = _send(replaying.url, method, path, headers)
        assert (response.status_code, response.headers["x-mock-source"]) == (recorded.response.status, "replay"), name
        assert raw == recorded.response.body, name
        live = session.raw[name]
        if PHONE.encode() not in (gzip.decompress(live) if live.startswith(b"\x1f\x8b") else live):
            assert raw == live, name  # nothing to mask: the sandbox's own bytes
        else:
            assert raw != live, name
    httpx.post(f"{replaying.url}/__mock/reset", timeout=10)
    for name, method, path, headers in _requests():
        recorded = _recorded(session, name)
        decoded = httpx.request(method, replaying.url + path, headers=headers, timeout=10)
        body = recorded.response.body
        plain = gzip.decompress(body) if recorded.response.header("content-encoding") == "gzip" else body
        assert decoded.content == plain, name


def test_replay__the_delete_twice__answers_in_recorded_order_then_repeats(session: Session, replaying: Running) -> None:
    httpx.post(f"{replaying.url}/__mock/reset", timeout=10)
    path = f"{replaying.url}/in/v1/{SID}/rcs/agent/48400"
    statuses = [httpx.delete(path, headers=HEADERS, timeout=10).status_code for _ in range(3)]
    assert statuses == [200, 400, 400]
    again = httpx.delete(path, headers=HEADERS, timeout=10)
    assert again.content == _recorded(session, "delete_again").response.body


def test_replay__the_client__reads_the_replayed_session(replaying: Running) -> None:
    httpx.post(f"{replaying.url}/__mock/reset", timeout=10)
    with KaleyraRCS(api_key=KEY, sid=SID, base_url=f"{replaying.url}/in") as rcs:
        assert [t.phoneno for t in rcs.get_testers_by_agent("48900")] != [PHONE]  # masked in the cassette
        rcs.delete_agent("48400")
        with pytest.raises(AgentNotFound):
            rcs.delete_agent("48400")


# -- calibrate ------------------------------------------------------------------------------------------


def test_calibrate__the_mock_answers_the_sandbox_401_and_takes_its_error_layout(session: Session, folder: Path) -> None:
    with running(["--workers", "1", "--calibrate", str(session.cassette)], folder, "calibrated") as mock:
        no_key = httpx.get(f"{mock.url}/in{TESTERS}?agent_number=48900", headers={"Content-Type": "application/json"})
        assert no_key.headers["x-mock-source"] == "observed"
        assert no_key.content == _recorded(session, "no_key").response.body
        assert no_key.json()["error"]["error_code"]  # the sandbox's layout, not the mock's default
        magic = httpx.get(f"{mock.url}/na{TESTERS}?agent_number=99500", headers=HEADERS, timeout=10)
        assert magic.headers["x-mock-source"] == "magic" and "error" in magic.json()  # the observed layout
        health = httpx.get(f"{mock.url}/__mock/health", timeout=10).json()["calibration"]
    applied = {(a["example"], a["source"].rsplit(":", 1)[0]) for a in health["applied"]}
    assert ("missing_api_key", "sandbox.jsonl") in applied
    assert ("agent_not_found", "sandbox.jsonl") in applied
    assert health["error_layout"] == "error"


# -- drift --------------------------------------------------------------------------------------------------


def test_drift__from_the_cassette__names_the_exchanges_and_reports_the_layout(session: Session, folder: Path) -> None:
    out = folder / "drift"
    done = subprocess.run(
        [sys.executable, "-m", "contracts.live.cassette", str(session.cassette), "--agent", "48900", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # only an x-assumed item is contradicted
    report = json.loads((out / "drift.json").read_text())
    parts = {p["id"]: p for item in report["items"] for p in item["parts"]}
    layout = parts["A1-error-envelope.layout"]
    assert (layout["verdict"], layout["mark"]) == ("CONTRADICTS", "x-assumed")
    assert any(source.startswith("sandbox.jsonl:") for source in layout["exchanges"])
    assert report["origin"] == "cassette"
    assert KEY not in (out / "drift.md").read_text() + json.dumps(report)
    assert TESTER["phoneno"] not in json.dumps(report)
