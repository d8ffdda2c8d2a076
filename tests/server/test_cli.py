"""The command line's own logic, without starting a server (tests/server/test_server.py does that)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mock_server._cli import _load_seed, main
from mock_server.core import MemoryStore, SpecIndex, StateError, hash_key
from mock_server.web import create_app, is_loopback_host
from tests._spec import ROOT

SPEC = SpecIndex.load()
HEADERS = {"api-key": "acme-test-key", "Content-Type": "application/json"}


def test_load_seed__example_file_lays_over_the_default_seed() -> None:
    state = _load_seed(SPEC, ROOT / "examples" / "seed.yaml")
    assert state.default_account is not None
    assert state.default_account.agents["48900"][0]["id"] == "tester-1"
    assert state.magic_agents == SPEC.magic_agents  # the file names none: the default seed's, from the spec
    assert set(state.accounts) == {("na", "ACME"), ("in", "DISABLED"), ("na", "DISABLED")}
    assert state.accounts[("na", "ACME")].key_hashes == frozenset({hash_key("acme-test-key")})


def test_load_seed__example_file_behaves_as_its_comments_say() -> None:
    client = create_app(MemoryStore(_load_seed(SPEC, ROOT / "examples" / "seed.yaml"))).test_client()
    assert client.get("/na/v1/ACME/rcs/agent/testersbyagent?agent_number=700", headers=HEADERS).json == []
    wrong_key = {**HEADERS, "api-key": "another"}
    response = client.get("/na/v1/ACME/rcs/agent/testersbyagent?agent_number=700", headers=wrong_key)
    assert response.status_code == 401
    assert response.json["data"]["error"]["error_message"] == "Invalid api-key"
    disabled = client.delete("/in/v1/DISABLED/rcs/agent/701", headers=HEADERS)
    assert disabled.json["code"] == "RCS601"
    assert disabled.json["data"]["error"]["error_code"] == "RCS_CHANNEL_DISABLED"


def test_load_seed__json_file(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"default_account": None, "accounts": [{"pod": "in", "sid": "ONLY"}]}))
    state = _load_seed(SPEC, seed)
    assert state.default_account is None
    assert list(state.accounts) == [("in", "ONLY")]


def _enum_rule(values: list[str]) -> str:
    """How a refusal spells an enum rule: its JSON, cut at 120 characters."""
    rule = json.dumps(values)
    return rule if len(rule) <= 120 else rule[:120] + "…"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "/: a seed file holds a JSON or YAML object"),
        ("accounts: [{pod: eu, sid: X}]", '/accounts/0/pod: must satisfy enum ["in", "na", "*"]'),
        ("accounts: [{sid: X}, {sid: X}]", "/accounts: an account (pod and SID) is listed twice"),
        (
            "default_account: {agents: {'1': [{phoneno: 1}]}}",
            "/default_account/agents/1/0: 'test_status' is a required property",
        ),
        (
            "magic_agents: {'5': no_such_example}",
            "/magic_agents/5: must satisfy enum " + _enum_rule(SPEC.all_example_names()),
        ),
        (
            "surprise: true",
            "/: a property the schema does not allow "
            "(allowed: version, default_account, accounts, deleted_default_agents, magic_agents)",
        ),
    ],
)
def test_load_seed__invalid_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(content)
    with pytest.raises(StateError) as refused:
        _load_seed(SPEC, seed)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "--workers and --journal-limit must be at least 1"),
        (["--journal-limit", "0"], "--workers and --journal-limit must be at least 1"),
        (["--random-5xx", "2"], "--random-5xx must be between 0 and 1"),
        (["--latency-ms", "-1"], "--latency-ms must be between 0 and 120000"),
    ],
)
def test_main__bad_numbers_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err == f"kaleyra-mock: {message}\n"


def test_main__unreadable_seed_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "cannot load seed" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_prepare_store__a_start_killed_between_state_and_seed_is_seeded_again(tmp_path: Path) -> None:
    """The state is written before the seed that marks a file initialized: a start killed in
    between leaves a file the next start seeds again, never one that resumes an empty state."""
    from mock_server._cli import _prepare_store, build_parser
    from mock_server.core import SqliteStore, StateData, default_seed_document, sqlite_url, state_validator

    path = tmp_path / "state.sqlite3"
    url = sqlite_url(str(path))
    seed = StateData.from_document(default_seed_document(SPEC), state_validator(SPEC))
    killed = SqliteStore(path)
    killed.load(StateData())  # what a start had written when it was killed
    killed.close()
    args = build_parser().parse_args(["--state", str(path)])

    assert _prepare_store(args, url, seed, True)[0] is False  # not initialized: seeded again
    store = SqliteStore(path)
    try:
        assert store.is_initialized()
        assert store.dump().to_document() == seed.to_document()
    finally:
        store.close()
    assert _prepare_store(args, url, seed, True)[0] is True
