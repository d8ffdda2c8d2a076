"""The store contract: every store (MemoryStore, SqliteStore, RedisStore) behaves the same, alone and
under concurrency; SqliteStore keeps it across processes too (forked and spawned, on real files), and
RedisStore across processes on one real redis-server (tests/replicas/ runs it across mock replicas)."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import queue
import random
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from mock_server.core import (
    DEFAULT_JOURNAL_LIMIT,
    PODS,
    AccountData,
    AccountInfo,
    Armed,
    MemoryStore,
    RedisStore,
    Schema,
    SpecIndex,
    SqliteStore,
    StaleRead,
    StateData,
    StateError,
    Store,
    StoreUnavailable,
    default_seed_document,
    hash_key,
    open_store,
    state_validator,
)
from mock_server.core import _sqlite as sqlite_module
from mock_server.web import create_app
from tests._redis import RedisServer

TEMPLATE_AGENTS = ("48900", "48400")
TESTER = {
    "phoneno": "91000XXXXXX01",
    "test_status": "",
    "status": "ACTIVE",
    "agent_no": "555",
    "id": "00000000-0000-4000-8000-000000000001",
    "override_dcs_check": False,
    "carrierid": 1,
}


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> SpecIndex:
    return SpecIndex.load()


@pytest.fixture(scope="module")
def validator(spec: SpecIndex) -> Schema:
    return state_validator(spec)


@pytest.fixture(scope="module")
def seed(spec: SpecIndex, validator: Schema) -> StateData:
    return StateData.from_document(default_seed_document(spec), validator)


@pytest.fixture(scope="module")
def sample_testers(spec: SpecIndex) -> list[dict[str, Any]]:
    value = spec.example("getTestersByAgent", "testers").value
    assert isinstance(value, list)
    assert value
    return value


def _sqlite_store(path: Path, seed: StateData, journal_limit: int | None = None) -> SqliteStore:
    store = SqliteStore(path) if journal_limit is None else SqliteStore(path, journal_limit=journal_limit)
    store.set_seed(seed)
    store.load(seed)
    return store


def _redis_store(url: str, prefix: str, seed: StateData | None, journal_limit: int | None = None) -> RedisStore:
    store = RedisStore(url, prefix=prefix, journal_limit=journal_limit or DEFAULT_JOURNAL_LIMIT)
    if seed is not None:
        store.set_seed(seed)
        store.load(seed)
    return store


def _make_store(kind: str, tmp_path: Path, seed: StateData, journal_limit: int | None = None, redis: str = "") -> Store:
    if kind == "memory":
        return MemoryStore(seed) if journal_limit is None else MemoryStore(seed, journal_limit=journal_limit)
    if kind == "redis":
        return _redis_store(redis, f"{tmp_path.name}-{journal_limit}", seed, journal_limit)
    return _sqlite_store(tmp_path / f"{kind}-{journal_limit}.sqlite3", seed, journal_limit)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_url(kind: str, request: pytest.FixtureRequest) -> str:
    """The session's redis-server, for the redis kind only (a missing server fails only those)."""
    if kind != "redis":
        return ""
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
def make_store(kind: str, tmp_path: Path, seed: StateData, redis_url: str) -> Iterator[Callable[..., Store]]:
    made: list[Store] = []

    def make(journal_limit: int | None = None) -> Store:
        store = _make_store(kind, tmp_path, seed, journal_limit, redis_url)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()


def _add_account(
    store: Store,
    pod: str,
    sid: str,
    *,
    keys: tuple[str, ...] = (),
    agents: dict[str, Any] | None = None,
    rcs: bool = True,
) -> None:
    account = AccountData(
        rcs_enabled=rcs,
        key_hashes=frozenset(hash_key(k) for k in keys),
        agents={"555": [dict(TESTER)]} if agents is None else agents,
    )

    def apply(state: StateData) -> None:
        state.accounts[(pod, sid)] = account

    store.mutate(apply)


# -- the template account, deletes and tombstones -------------------------------------------


@pytest.mark.parametrize("sid", ["XXXXX6913850XXXX", "xxxxx6913850xxxx", "any-sid", "ü-sid", "1" * 256])
def test_template_answers_for_any_sid(store: Store, sid: str, sample_testers: list[dict[str, Any]]) -> None:
    for pod in PODS:
        assert store.testers(pod, sid, "48900") == sample_testers
        assert store.testers(pod, sid, "48400") == []
        assert store.testers(pod, sid, "11111") is None
        info = store.account(pod, sid)
        assert info == AccountInfo(sid, explicit=False, rcs_enabled=True, key_hashes=frozenset())


def test_testers_returns_a_copy(store: Store, sample_testers: list[dict[str, Any]]) -> None:
    got = store.testers("in", "S", "48900")
    assert got is not None
    got[0]["status"] = "CHANGED"
    got.append({})
    assert store.testers("in", "S", "48900") == sample_testers


def test_delete_agent_true_once_then_false(store: Store) -> None:
    assert store.delete_agent("in", "S1", "48900") is True
    assert store.delete_agent("in", "S1", "48900") is False
    assert store.testers("in", "S1", "48900") is None
    assert store.delete_agent("in", "S1", "11111") is False  # never existed
    assert store.dump().deleted_default == {("in", "S1", "48900")}


@pytest.mark.parametrize("listed", [False, True], ids=["template", "listed"])
def test_testers_body__follows_every_change(store: Store, listed: bool) -> None:
    """The encoded body a GET answers is never older than the state, however a store keeps it:
    read, then deleted, loaded, mutated, reset, each read again at once."""
    if listed:
        _add_account(store, "in", "S", agents={"48900": [dict(TESTER)]})
    first = store.testers_body("in", "S", "48900")
    assert first is not None and json.loads(first) == store.testers("in", "S", "48900")
    assert store.delete_agent("in", "S", "48900") is True
    assert store.testers_body("in", "S", "48900") is None
    store.reset()
    assert store.testers_body("in", "S", "48900") is not None  # the seed lists no S: the template again
    changed = dict(TESTER, status="CHANGED")
    _add_account(store, "in", "S", agents={"48900": [changed]})
    assert json.loads(store.testers_body("in", "S", "48900") or b"null") == [changed]
    state = store.dump()
    state.accounts[("in", "S")].agents["48900"] = []
    store.load(state)
    assert store.testers_body("in", "S", "48900") == b"[]"


def test_tombstones_are_per_pod_and_sid(store: Store, sample_testers: list[dict[str, Any]]) -> None:
    assert store.delete_agent("in", "A", "48900") is True
    assert store.testers("in", "A", "48900") is None
    assert store.testers("na", "A", "48900") == sample_testers
    assert store.testers("in", "B", "48900") == sample_testers
    assert store.testers("in", "A", "48400") == []
    assert store.delete_agent("na", "A", "48900") is True
    assert store.delete_agent("in", "B", "48900") is True
    assert store.dump().deleted_default == {("in", "A", "48900"), ("na", "A", "48900"), ("in", "B", "48900")}


# -- explicit accounts -------------------------------------------------------------------


def test_explicit_account_with_key_hashes(store: Store, sample_testers: list[dict[str, Any]]) -> None:
    _add_account(store, "in", "ACME", keys=("k1", "k2"))
    info = store.account("in", "ACME")
    assert info == AccountInfo(
        "ACME", explicit=True, rcs_enabled=True, key_hashes=frozenset(map(hash_key, ["k1", "k2"]))
    )
    # The same SID on the other pod is still the template.
    assert store.account("na", "ACME") == AccountInfo("ACME", False, True, frozenset())
    assert store.testers("na", "ACME", "48900") == sample_testers
    # A listed account has only its own agents: the template does not leak into it.
    assert store.testers("in", "ACME", "555") == [TESTER]
    assert store.testers("in", "ACME", "48900") is None
    assert store.delete_agent("in", "ACME", "48900") is False
    assert store.delete_agent("in", "ACME", "555") is True
    assert store.delete_agent("in", "ACME", "555") is False
    assert store.testers("in", "ACME", "555") is None
    # An explicit delete is a row delete, no tombstone.
    assert store.dump().deleted_default == set()


def test_explicit_account_rcs_disabled(store: Store) -> None:
    _add_account(store, "na", "OFF", rcs=False)
    assert store.account("na", "OFF") == AccountInfo("OFF", True, False, frozenset())


def test_mutate_returns_the_result_and_a_failed_mutate_changes_nothing(store: Store) -> None:
    before = store.dump().to_document()

    def count(state: StateData) -> int:
        return len(state.magic_agents)

    assert store.mutate(count) == len(before["magic_agents"])

    def broken(state: StateData) -> None:
        state.accounts[("in", "BROKEN")] = AccountData()
        state.magic_agents.clear()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.mutate(broken)
    assert store.dump().to_document() == before
    assert store.account("in", "BROKEN") == AccountInfo("BROKEN", False, True, frozenset())


def test_account_is_none_without_default_account(store: Store) -> None:
    _add_account(store, "in", "LISTED")

    def drop(state: StateData) -> None:
        state.default_account = None

    store.mutate(drop)
    assert store.control().default_account is None
    for pod in PODS:
        assert store.account(pod, "anything") is None
        assert store.testers(pod, "anything", "48900") is None
        assert store.delete_agent(pod, "anything", "48900") is False
    assert store.account("in", "LISTED") == AccountInfo("LISTED", True, True, frozenset())
    assert store.testers("in", "LISTED", "555") == [TESTER]


def test_account_for_key(store: Store) -> None:
    _add_account(store, "in", "ZED", keys=("shared",))
    _add_account(store, "in", "ALPHA", keys=("shared", "alpha-only"))
    _add_account(store, "na", "NORTH", keys=("north",))
    assert store.account_for_key("in", hash_key("shared")) == "ALPHA"  # the first by SID
    assert store.account_for_key("in", hash_key("alpha-only")) == "ALPHA"
    assert store.account_for_key("na", hash_key("north")) == "NORTH"
    assert store.account_for_key("in", hash_key("north")) is None  # per pod
    assert store.account_for_key("na", hash_key("shared")) is None
    assert store.account_for_key("in", hash_key("unknown")) is None
    assert store.account_for_key("in", "shared") is None  # a clear key is no hash


# -- dump, load, reset ---------------------------------------------------------------------


def _rich_state(store: Store) -> None:
    _add_account(store, "in", "ACME", keys=("k1",), agents={"555": [dict(TESTER)], "556": []})
    _add_account(store, "na", "OFF", rcs=False, agents={})
    store.delete_agent("in", "S1", "48900")
    store.delete_agent("na", "S2", "48400")

    def more(state: StateData) -> None:
        state.magic_agents["12345"] = "gateway_error"

    store.mutate(more)


def test_dump_load_round_trip(
    store: Store, make_store: Callable[..., Store], validator: Schema, seed: StateData
) -> None:
    _rich_state(store)
    dumped = store.dump()
    doc = dumped.to_document()
    assert doc["deleted_default_agents"] == [
        {"pod": "in", "sid": "S1", "agent_number": "48900"},
        {"pod": "na", "sid": "S2", "agent_number": "48400"},
    ]
    assert doc["accounts"][0]["api_key_sha256"] == [hash_key("k1")]
    # The dump is a copy: changing it changes nothing in the store.
    dumped.accounts.clear()
    assert store.dump().to_document() == doc

    # Through the document format, into a second store of the same kind.
    other = make_store()
    assert other.dump().to_document() == seed.to_document()
    other.load(StateData.from_document(doc, validator))
    assert other.dump().to_document() == doc
    assert other.account("in", "ACME") == store.account("in", "ACME")
    assert other.testers("in", "S1", "48900") is None
    assert other.delete_agent("na", "S2", "48400") is False
    assert other.delete_agent("in", "ACME", "556") is True

    # And back into the first: loading replaces everything.
    store.load(seed)
    assert store.dump().to_document() == seed.to_document()
    store.load(StateData.from_document(doc, validator))
    assert store.dump().to_document() == doc


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_round_trip_between_kinds(
    tmp_path: Path, seed: StateData, validator: Schema, kind: str, redis_url: str
) -> None:
    memory = MemoryStore(seed)
    other = _make_store(kind, tmp_path, seed, None, redis_url)
    try:
        _rich_state(memory)
        doc = memory.dump().to_document()
        other.load(StateData.from_document(doc, validator))
        assert other.dump().to_document() == doc
        _rich_state(other)  # same changes again: idempotent on the dumped document except the deletes
        assert other.dump().to_document() == doc
    finally:
        other.close()


def test_reset_restores_seed_and_clears_armed_and_journal(store: Store, seed: StateData) -> None:
    _rich_state(store)
    store.arm(Armed(0, "scenario", "gateway_error", 3))
    store.arm(Armed(0, "fault", "latency", None, params={"ms": 5}))
    store.record({"pod": "in", "status": 200})
    assert store.journal(pod=None, operation=None, status=None, limit=10)
    store.reset()
    assert store.dump().to_document() == seed.to_document()
    control = store.control()
    assert control.scenarios == ()
    assert control.faults == ()
    assert store.journal(pod=None, operation=None, status=None, limit=10) == []
    assert store.testers("in", "S1", "48900") is not None
    assert store.delete_agent("in", "S1", "48900") is True


def test_set_seed_changes_what_reset_restores(store: Store, seed: StateData, validator: Schema) -> None:
    doc = seed.to_document()
    doc["magic_agents"] = {"777": "rate_limited"}
    store.set_seed(StateData.from_document(doc, validator))
    assert store.dump().to_document() == seed.to_document()  # set_seed alone changes nothing now
    store.reset()
    assert store.dump().to_document() == doc
    assert store.control().magic_agents == {"777": "rate_limited"}


# -- armed scenarios and faults --------------------------------------------------------------


def test_arm_consume_counts_down_to_removal(store: Store) -> None:
    armed = store.arm(Armed(0, "scenario", "gateway_error", 3, pod="in", sid="S", operation="deleteAgent"))
    assert armed.id > 0
    assert store.control().scenarios == (armed,)
    assert store.control().faults == ()
    for left in (2, 1):
        assert store.consume(armed) is True
        (current,) = store.control().scenarios
        assert current.remaining == left
        assert (current.pod, current.sid, current.operation) == ("in", "S", "deleteAgent")
    assert store.consume(armed) is True
    assert store.control().scenarios == ()
    assert store.consume(armed) is False


def test_unlimited_armed_is_never_consumed_away(store: Store) -> None:
    fault = store.arm(Armed(0, "fault", "latency", None, params={"ms": 5, "jitter_ms": 1}))
    for _ in range(50):
        assert store.consume(fault) is True
    (current,) = store.control().faults
    assert current.remaining is None
    assert dict(current.params) == {"ms": 5, "jitter_ms": 1}
    assert current.id == fault.id


def test_disarm(store: Store) -> None:
    s1 = store.arm(Armed(0, "scenario", "gateway_error", 1))
    s2 = store.arm(Armed(0, "scenario", "rate_limited", 2))
    f1 = store.arm(Armed(0, "fault", "connection_reset", 1))
    assert len({s1.id, s2.id, f1.id}) == 3
    assert [a.id for a in store.control().scenarios] == [s1.id, s2.id]
    assert store.disarm("fault", s1.id) == 0  # wrong kind
    assert store.disarm("scenario", s1.id) == 1
    assert store.disarm("scenario", s1.id) == 0
    assert store.consume(s1) is False
    assert [a.id for a in store.control().scenarios] == [s2.id]
    assert store.disarm("scenario", None) == 1
    assert store.control().scenarios == ()
    assert [a.id for a in store.control().faults] == [f1.id]
    assert store.disarm("fault", None) == 1
    assert store.disarm("fault", None) == 0


def test_consume_of_a_disarmed_unlimited_fault_fails(store: Store) -> None:
    """An engine holding an older Control snapshot must not apply a fault disarmed meanwhile."""
    fault = store.arm(Armed(0, "fault", "latency", None, params={"ms": 5}))
    assert store.consume(fault) is True
    assert store.disarm("fault", fault.id) == 1
    assert store.consume(fault) is False


def test_standing_faults_are_armed_now_and_again_after_every_reset(store: Store) -> None:
    store.set_standing_faults([Armed(0, "fault", "random_5xx", 3, pod="in", params={"rate": 1.0})])
    (fault,) = store.control().faults
    assert (fault.name, fault.remaining, fault.pod, dict(fault.params)) == ("random_5xx", None, None, {"rate": 1.0})
    assert store.consume(fault) is True and store.consume(fault) is True  # standing: never used up
    store.disarm("fault", None)
    assert store.control().faults == ()
    store.reset()
    assert [(f.name, dict(f.params)) for f in store.control().faults] == [("random_5xx", {"rate": 1.0})]
    store.set_standing_faults([])
    store.disarm("fault", None)
    store.reset()
    assert store.control().faults == ()


def test_is_initialized_once_a_seed_is_set(kind: str, tmp_path: Path, seed: StateData, redis_url: str) -> None:
    empty: Store
    if kind == "redis":
        empty = _redis_store(redis_url, f"{tmp_path.name}-empty", None)
    else:
        empty = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "empty.sqlite3")
    try:
        assert empty.is_initialized() is False
        assert empty.account("in", "S") is None  # nothing to answer from: every request is a 401
        empty.set_seed(seed)
        assert empty.is_initialized() is True
        assert empty.account("in", "S") is None  # set_seed alone changes nothing now
        empty.reset()
        assert empty.account("in", "S") is not None
    finally:
        empty.close()


def test_generation_changes_after_arm_load_and_consume(store: Store, seed: StateData) -> None:
    seen = [store.control().generation]

    def changed() -> None:
        generation = store.control().generation
        assert generation not in seen
        seen.append(generation)

    armed = store.arm(Armed(0, "scenario", "gateway_error", 2))
    changed()
    store.load(seed)
    changed()
    store.consume(armed)
    changed()
    store.disarm("scenario", None)
    changed()
    store.mutate(lambda state: state.magic_agents.pop("99400"))
    changed()
    assert "99400" not in store.control().magic_agents
    store.reset()
    changed()
    assert "99400" in store.control().magic_agents
    # Nothing changed: the same generation, and the same snapshot is fine.
    assert store.control().generation == seen[-1]


# -- the journal -----------------------------------------------------------------------------


def _lines_on_disk(store: Store) -> int | None:
    """Every journal line SqliteStore keeps in its files, whichever writer wrote it."""
    if not isinstance(store, SqliteStore):
        return None
    folder = Path(os.path.realpath(store.path) + ".journal.d")
    return sum(len(p.read_bytes().split(b"\n")) - 1 for p in folder.glob("*.log"))


@pytest.mark.parametrize("limit", [1, 10, 100])
def test_journal_is_bounded(make_store: Callable[..., Store], limit: int) -> None:
    store = make_store(journal_limit=limit)
    most_rows = 0
    for i in range(3 * limit + 200):
        store.record({"pod": PODS[i % 2], "operation": "getTestersByAgent", "status": 200 + i % 3, "n": i})
        got = store.journal(pod=None, operation=None, status=None, limit=10_000)
        assert len(got) <= limit
        rows = _lines_on_disk(store)
        if rows is not None:
            most_rows = max(most_rows, rows)
            assert rows <= 2 * limit  # the full file before and the one being written
    got = store.journal(pod=None, operation=None, status=None, limit=10_000)
    assert len(got) == limit
    last = 3 * limit + 199
    assert [e["n"] for e in got] == list(range(last, last - limit, -1))  # newest first
    ids = [e["id"] for e in got]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)
    if isinstance(store, SqliteStore):
        assert most_rows == 2 * limit  # it rotates whole files, not a line at a time


def test_journal_filters(store: Store) -> None:
    for i in range(30):
        store.record(
            {
                "pod": PODS[i % 2],
                "operation": "getTestersByAgentWsgw" if i % 3 else "deleteAgent",
                "canonical": "getTestersByAgent" if i % 3 else "deleteAgent",
                "status": 400 if i % 5 == 0 else 200,
                "n": i,
            }
        )

    def ns(**kw: Any) -> list[int]:
        args: dict[str, Any] = {"pod": None, "operation": None, "status": None, "limit": 100, **kw}
        return [e["n"] for e in store.journal(**args)]

    assert ns() == list(range(29, -1, -1))
    assert ns(limit=3) == [29, 28, 27]
    assert ns(pod="in") == list(range(28, -1, -2))
    assert ns(operation="deleteAgent") == list(range(27, -1, -3))
    assert ns(operation="getTestersByAgent") == [n for n in range(29, -1, -1) if n % 3]  # by canonical
    assert ns(status=400) == [25, 20, 15, 10, 5, 0]
    assert ns(pod="na", status=400, limit=2) == [25, 15]
    store.clear_journal()
    assert ns() == []


# -- invalid documents -------------------------------------------------------------------------


def _doc_with(seed: StateData, **changes: Any) -> dict[str, Any]:
    doc = seed.to_document()
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"version": 2}, "/version"),
        ({"accounts": 5}, "/accounts"),
        ({"accounts": [{"pod": "in"}]}, "/accounts/0"),
        ({"accounts": [{"sid": "a/b"}]}, "/accounts/0/sid"),
        ({"accounts": [{"sid": "s", "pod": "eu"}]}, "/accounts/0/pod"),
        ({"accounts": [{"sid": "s", "api_key_sha256": ["nothex"]}]}, "/accounts/0/api_key_sha256/0"),
        ({"accounts": [{"sid": "s", "pod": "in"}, {"sid": "s"}]}, "/accounts"),  # listed twice
        ({"accounts": [{"sid": "s", "agents": {"1": [{"phoneno": 5}]}}]}, "/accounts/0/agents/1/0"),
        ({"default_account": {"rcs_enabled": "yes"}}, "/default_account"),
        ({"deleted_default_agents": [{"pod": "in", "sid": "s"}]}, "/deleted_default_agents/0"),
        ({"magic_agents": {"1": "no_such_example"}}, "/magic_agents/1"),
        ({"surprise": True}, "/"),
    ],
)
def test_invalid_documents_raise_state_error(
    seed: StateData, validator: Schema, changes: dict[str, Any], where: str
) -> None:
    with pytest.raises(StateError) as info:
        StateData.from_document(_doc_with(seed, **changes), validator)
    assert str(info.value).startswith(where)


def test_the_seed_and_every_dump_validate(seed: StateData, validator: Schema) -> None:
    assert list(Draft202012Validator(validator.schema).iter_errors(seed.to_document())) == []
    assert StateData.from_document(seed.to_document(), validator).to_document() == seed.to_document()


@pytest.mark.parametrize(
    ("value", "where"),
    [(datetime.date(2026, 12, 1), "/accounts/0/agents/1/0/phoneno"), ({1: "x"}, "/accounts/0/agents/1/0")],
    ids=["yaml-date", "non-string-key"],
)
def test_invalid_documents_raise_state_error__values_json_has_no_word_for(
    seed: StateData, validator: Schema, value: Any, where: str
) -> None:
    """An unquoted date in a YAML seed is no string; jsonschema-rs cannot take it at all, and
    jsonschema names the rule instead (never a traceback)."""
    tester = {**TESTER, "phoneno": value} if where.endswith("phoneno") else value
    doc = _doc_with(seed, accounts=[{"sid": "s", "agents": {"1": [tester]}}])
    with pytest.raises(StateError) as info:
        StateData.from_document(doc, validator)
    assert str(info.value).startswith(where)


# -- one SQLite file, several stores (what the workers share) -------------------------------------


def test_sqlite_stores_on_one_file_see_each_other(tmp_path: Path, seed: StateData) -> None:
    path = tmp_path / "shared.sqlite3"
    a = _sqlite_store(path, seed)
    b = SqliteStore(path)
    try:
        assert b.is_initialized()
        b.control()  # warm b's cached snapshot: it must not hide a's changes
        fault = a.arm(Armed(0, "fault", "connection_reset", 2))
        (seen,) = b.control().faults
        assert seen == fault
        assert b.consume(seen) is True
        assert a.control().faults[0].remaining == 1
        assert a.consume(fault) is True
        assert b.control().faults == ()
        assert a.delete_agent("in", "S", "48900") is True
        assert b.testers("in", "S", "48900") is None
        assert b.delete_agent("in", "S", "48900") is False
        b.mutate(lambda state: state.magic_agents.clear())
        assert a.control().magic_agents == {}
        a.record({"pod": "in", "n": 1})
        b.record({"pod": "na", "n": 2})
        assert [e["n"] for e in a.journal(pod=None, operation=None, status=None, limit=10)] == [2, 1]
        b.reset()
        assert a.dump().to_document() == seed.to_document()
        assert a.journal(pod=None, operation=None, status=None, limit=10) == []
        assert a.control().magic_agents == seed.magic_agents
    finally:
        a.close()
        b.close()
    reopened = SqliteStore(path)  # what a restart with --state finds
    try:
        assert reopened.is_initialized()
        reopened.load(seed)
        assert reopened.delete_agent("na", "S", "48400") is True
        reopened.close()
        again = SqliteStore(path)
        assert again.testers("na", "S", "48400") is None
        again.reset()
        assert again.testers("na", "S", "48400") == []
        again.close()
    finally:
        reopened.close()


def test_a_fresh_sqlite_file_is_not_initialized(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "new.sqlite3")
    try:
        assert store.is_initialized() is False
        assert store.dump().to_document() == StateData().to_document()
        assert store.account("in", "S") is None
    finally:
        store.close()


_API_HEADERS = {"api-key": "k", "Content-Type": "application/json"}
_TESTERS = "/in/v1/S/rcs/agent/testersbyagent?agent_number=48900"


def _held_sqlite_mock(
    tmp_path: Path, seed: StateData, monkeypatch: pytest.MonkeyPatch
) -> tuple[SqliteStore, FlaskClient, sqlite3.Connection]:
    """A SQLite store with a 0.2 s busy timeout, an app on it, and a connection of another client
    (the holder, not yet holding anything) on the same file."""
    monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "held.sqlite3"
    store = _sqlite_store(path, seed)
    return store, create_app(store).test_client(), sqlite3.connect(path, isolation_level=None)


def test_sqlite_store__a_file_locked_elsewhere_is_store_unavailable(
    tmp_path: Path, seed: StateData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder outside the mock (a sqlite3 shell on a --state file) past the busy timeout: each
    write is a 503 MOCK503 with nothing written, reads go on, and the first write after it lets go
    succeeds. It was a 500 MOCK500 (an OperationalError taken for a bug)."""
    store, client, holder = _held_sqlite_mock(tmp_path, seed, monkeypatch)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="locked by another connection"):
            store.delete_agent("in", "S", "48900")
        refused = client.delete("/in/v1/S/rcs/agent/48900", headers=_API_HEADERS)
        assert (refused.status_code, refused.headers["Retry-After"], refused.headers["X-Mock-Source"]) == (
            503,
            "1",
            "store",
        )
        assert refused.get_json()["code"] == "MOCK503"
        reset = client.post("/__mock/reset")
        assert (reset.status_code, reset.get_json()["data"]["error"]["error_code"]) == (503, "STORE_UNAVAILABLE")
        assert client.get(_TESTERS, headers=_API_HEADERS).status_code == 200  # WAL: readers are never held
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    try:
        assert client.get(_TESTERS, headers=_API_HEADERS).status_code == 200  # the refused delete wrote nothing
        assert client.delete("/in/v1/S/rcs/agent/48900", headers=_API_HEADERS).status_code == 200
        assert store.testers("in", "S", "48900") is None
    finally:
        store.close()


def test_sqlite_store__a_file_no_one_else_may_read_is_store_unavailable(
    tmp_path: Path, seed: StateData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder in exclusive locking mode (`PRAGMA locking_mode=EXCLUSIVE` in a sqlite3 shell)
    keeps readers out too: a GET the worker has not kept, and health, answer 503 and say why;
    both were a 500. Once it lets go, the same app answers again."""
    store, client, holder = _held_sqlite_mock(tmp_path, seed, monkeypatch)
    store.close()  # the holder takes the file while the mock has no connection open
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE meta SET value = value WHERE key = 'generation'")
        refused = client.get(_TESTERS, headers=_API_HEADERS)
        assert (refused.status_code, refused.get_json()["code"], refused.headers["X-Mock-Source"]) == (
            503,
            "MOCK503",
            "store",
        )
        health = client.get("/__mock/health")
        assert health.status_code == 503
        assert "locked by another connection" in health.get_json()["store_error"]
    finally:
        holder.execute("COMMIT")
        holder.close()
    try:
        assert client.get(_TESTERS, headers=_API_HEADERS).status_code == 200
        assert client.get("/__mock/health").get_json()["status"] == "ok"
    finally:
        store.close()


def test_state_documents__a_tuple_from_python_is_no_array(seed: StateData, validator: Schema) -> None:
    """jsonschema-rs takes a tuple for an array and jsonschema does not: a state handed in from
    Python (`KaleyraMock.load_state`) with one is refused, as before, rather than kept and failing
    later in the store (`.append` on a tuple was a 500)."""
    for doc in (
        {"accounts": ({"sid": "S"},)},
        {"accounts": [{"sid": "S", "api_keys": ("k",)}]},
        {"accounts": [{"sid": "S", "pod": "in", "agents": {"1": ()}}]},
    ):
        with pytest.raises(StateError, match="must satisfy type"):
            StateData.from_document(_doc_with(seed, **doc), validator)


# -- concurrency -------------------------------------------------------------------------------


def _race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(i) for i in range(n) on n threads released together; re-raise any error."""
    barrier = threading.Barrier(n, timeout=30)

    def run(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(run, i) for i in range(n)]
        return [f.result(timeout=60) for f in futures]


@pytest.mark.parametrize("target", ["template", "explicit"])
def test_64_threads_delete_one_agent_exactly_once(store: Store, target: str) -> None:
    if target == "explicit":
        _add_account(store, "na", "ACME")
        pod, sid, agent = "na", "ACME", "555"
    else:
        pod, sid, agent = "in", "XXXXX6913850XXXX", "48400"
    results = _race(64, lambda _i: store.delete_agent(pod, sid, agent))
    assert results.count(True) == 1
    assert results.count(False) == 63
    assert store.testers(pod, sid, agent) is None


def test_64_threads_consume_a_scenario_armed_for_5(store: Store) -> None:
    armed = store.arm(Armed(0, "scenario", "gateway_error", 5))
    results = _race(64, lambda _i: store.consume(armed))
    assert results.count(True) == 5
    assert store.control().scenarios == ()


# -- across processes (SqliteStore: what the server's workers share) --------------------------------

CONTEXTS = ["fork", "spawn"]  # fork: the child inherits a store in use; spawn: a new interpreter


def _run_processes(ctx_name: str, target: Callable[..., None], args: list[tuple[Any, ...]], *extra: Any) -> list[Any]:
    """One process per `args` item, each putting one result on a queue; every process is ended."""
    ctx = multiprocessing.get_context(ctx_name)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, *extra, out)) for a in args]
    for p in procs:
        p.start()
    results: list[Any] = []
    try:
        for _ in procs:
            results.append(out.get(timeout=90))
    except queue.Empty:
        pytest.fail(f"a process gave no answer; got {results}")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    assert [p.exitcode for p in procs] == [0] * len(procs), results
    assert not [r for r in results if isinstance(r, str)], results  # a child's error, as its repr
    return results


def _delete_in_process(
    path: str, targets: list[tuple[str, str, str]], barrier: Any, out: Any, prefix: str | None = None
) -> None:
    store = SqliteStore(path) if prefix is None else open_store(path, prefix=prefix)
    try:
        store.control()  # a warm cache, as a worker's
        barrier.wait(60)
        out.put([store.delete_agent(*t) for t in targets])
    except BaseException as exc:
        out.put(repr(exc))
        raise
    finally:
        store.close()


@pytest.mark.parametrize("context", CONTEXTS)
def test_sqlite_processes_delete_one_agent_exactly_once(tmp_path: Path, seed: StateData, context: str) -> None:
    path = tmp_path / "shared.sqlite3"
    store = _sqlite_store(path, seed)
    _add_account(store, "in", "ACME")
    assert store.testers("in", "ACME", "555") is not None  # the parent's store is in use when it forks
    targets = [("in", "XXXXX6913850XXXX", "48400"), ("na", "XXXXX6913850XXXX", "48400"), ("in", "ACME", "555")]
    barrier = multiprocessing.get_context(context).Barrier(4)
    try:
        results = _run_processes(context, _delete_in_process, [(str(path), targets, barrier)] * 4)
        for i, target in enumerate(targets):
            outcomes = [r[i] for r in results]
            assert outcomes.count(True) == 1, (target, outcomes)
        store.control()
        assert all(store.testers(*t) is None for t in targets)  # the parent's own cache followed
    finally:
        store.close()


@pytest.mark.parametrize("context", CONTEXTS)
def test_redis_processes_delete_one_agent_exactly_once(
    redis_server: RedisServer, redis_prefix: str, seed: StateData, context: str
) -> None:
    store = _redis_store(redis_server.url, redis_prefix, seed)
    _add_account(store, "in", "ACME")
    assert store.testers("in", "ACME", "555") is not None  # the parent's store is in use when it forks
    targets = [("in", "XXXXX6913850XXXX", "48400"), ("na", "XXXXX6913850XXXX", "48400"), ("in", "ACME", "555")]
    barrier = multiprocessing.get_context(context).Barrier(4)
    try:
        args = [(redis_server.url, targets, barrier)] * 4
        results = _run_processes(context, _delete_in_redis, args, redis_prefix)
        for i, target in enumerate(targets):
            outcomes = [r[i] for r in results]
            assert outcomes.count(True) == 1, (target, outcomes)
        store.control()
        assert all(store.testers(*t) is None for t in targets)
    finally:
        store.close()


def _delete_in_redis(url: str, targets: list[tuple[str, str, str]], barrier: Any, prefix: str, out: Any) -> None:
    _delete_in_process(url, targets, barrier, out, prefix)


def _delete_one_by_one(path: str, count: int, deleted: Any, seen: Any, out: Any) -> None:
    """Deletes agents one after another; after each, waits until the other process saw it."""
    store = SqliteStore(path)
    try:
        for n in range(count):
            assert store.delete_agent("in", f"S{n}", "48900")
            deleted.put(n)
            assert seen.get(timeout=60) == n
        store.mutate(lambda state: setattr(state.default_account, "rcs_enabled", False))
        out.put("done")
    except BaseException as exc:
        out.put(repr(exc))
        raise
    finally:
        store.close()


@pytest.mark.parametrize("context", CONTEXTS)
def test_sqlite_a_change_in_one_process_is_seen_by_the_next_request_in_another(
    tmp_path: Path, seed: StateData, context: str
) -> None:
    """The reader keeps every look-up warm: each must still follow the writer's last commit."""
    path = str(tmp_path / "shared.sqlite3")
    store = _sqlite_store(Path(path), seed)
    count = 50
    for n in range(count):  # all cached before any change
        store.control()
        assert store.testers("in", f"S{n}", "48900") is not None
        assert store.testers_body("in", f"S{n}", "48900") is not None
    ctx = multiprocessing.get_context(context)
    deleted, seen, out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=_delete_one_by_one, args=(path, count, deleted, seen, out))
    proc.start()
    try:
        for n in range(count):
            assert deleted.get(timeout=60) == n
            store.control()  # what every request starts with
            assert store.testers("in", f"S{n}", "48900") is None
            assert store.testers_body("in", f"S{n}", "48900") is None
            assert store.testers("in", f"S{n + 1}", "48900") is not None
            seen.put(n)
        assert out.get(timeout=60) == "done"
        store.control()
        account = store.account("in", "ANY")
        assert account is not None and account.rcs_enabled is False
    finally:
        proc.join(30)
        store.close()
    assert proc.exitcode == 0


def _record_in_process(path: str, who: str, count: int, barrier: Any, out: Any) -> None:
    store = SqliteStore(path, journal_limit=50)
    try:
        for n in range(count):
            store.record({"who": who, "n": n})
        barrier.wait(60)  # alive together, as workers are: each keeps its own slot
        out.put([who])
    except BaseException as exc:
        out.put(repr(exc))
        raise
    finally:
        store.close()


@pytest.mark.parametrize("context", CONTEXTS)
def test_sqlite_journal_of_every_process_is_in_the_next_read_and_bounded(
    tmp_path: Path, seed: StateData, context: str
) -> None:
    path = tmp_path / "shared.sqlite3"
    store = _sqlite_store(path, seed, journal_limit=50)
    try:
        store.record({"who": "parent", "n": 0})  # the parent holds a slot when it forks
        barrier = multiprocessing.get_context(context).Barrier(3)
        _run_processes(context, _record_in_process, [(str(path), f"p{i}", 120, barrier) for i in range(3)])
        wide = SqliteStore(path, journal_limit=1000)  # reads all that the writers keep: 50 to 100 each
        try:
            every = wide.journal(pod=None, operation=None, status=None, limit=1000)
        finally:
            wide.close()
        for who in ("p0", "p1", "p2"):  # each one's newest, read at once with no waiting, in its order
            ns = [e["n"] for e in every if e["who"] == who]
            assert ns[0] == 119 and 50 <= len(ns) <= 100
            assert ns == list(range(119, 119 - len(ns), -1))
        got = store.journal(pod=None, operation=None, status=None, limit=1000)
        assert got == every[:50]  # the newest 50 of all writers together
        lines = _lines_on_disk(store)
        assert lines is not None and lines <= 4 * 2 * 50  # four writers, two files each
        store.clear_journal()
        assert store.journal(pod=None, operation=None, status=None, limit=1000) == []
        store.record({"who": "parent", "n": 1})
        assert [e["n"] for e in store.journal(pod=None, operation=None, status=None, limit=1000)] == [1]
    finally:
        store.close()


def _record_and_wait(path: str, count: int, ready: Any, out: Any) -> None:
    store = SqliteStore(path)
    for n in range(count):
        store.record({"who": "killed", "n": n})
    out.put("recorded")
    ready.wait(120)  # killed here, its slot still held


def test_sqlite_a_killed_writer_s_entries_stay_and_its_slot_is_taken_over(tmp_path: Path, seed: StateData) -> None:
    path = tmp_path / "shared.sqlite3"
    store = _sqlite_store(path, seed)
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_record_and_wait, args=(str(path), 5, ready, out))
    proc.start()
    try:
        assert out.get(timeout=90) == "recorded"
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        got = store.journal(pod=None, operation=None, status=None, limit=100)
        assert [e["n"] for e in got] == [4, 3, 2, 1, 0]  # written before they were answered: not lost
        folder = Path(os.path.realpath(path) + ".journal.d")
        slots = sorted(p.name for p in folder.glob("w*.lock"))
        again = SqliteStore(path)  # the kernel let go of the dead one's lock: its slot is free
        again.record({"who": "after", "n": 5})
        assert sorted(p.name for p in folder.glob("w*.lock")) == slots
        assert [e["n"] for e in again.journal(pod=None, operation=None, status=None, limit=100)] == [5, 4, 3, 2, 1, 0]
        again.close()
    finally:
        store.close()


def _load_forever(path: str, states: list[dict[str, Any]], out: Any) -> None:
    store = SqliteStore(path)
    out.put("loading")
    n = 0
    while True:  # killed in the middle of some load
        store.load(StateData.from_document(states[n % 2], None))
        n += 1


def test_sqlite_state_file_survives_kill_9_in_mid_load_whole(
    tmp_path: Path, seed: StateData, validator: Schema
) -> None:
    """`--state` is atomic and crash-safe: the file is at one state or the other, never between."""
    small = seed.to_document()
    big = StateData.from_document(seed.to_document(), validator)
    for n in range(2000):
        big.accounts[("in", f"ACC{n}")] = AccountData(True, frozenset(), {str(a): [dict(TESTER)] for a in range(3)})
    states = [small, big.to_document()]
    path = tmp_path / "state.sqlite3"
    _sqlite_store(path, seed).close()
    ctx = multiprocessing.get_context("spawn")
    for delay in (0.05, 0.2, 0.5):
        out = ctx.Queue()
        proc = ctx.Process(target=_load_forever, args=(str(path), states, out))
        proc.start()
        assert out.get(timeout=90) == "loading"
        threading.Event().wait(delay)  # somewhere in a load; which one does not matter
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        reopened = SqliteStore(path)
        try:
            assert reopened.dump().to_document() in states
            assert reopened.is_initialized()
        finally:
            reopened.close()


def test_dump_during_deletes_and_loads_always_loads_back(store: Store, seed: StateData, validator: Schema) -> None:
    _add_account(store, "in", "ACME", keys=("k",), agents={str(n): [dict(TESTER)] for n in range(20)})
    full = store.dump()
    stop = threading.Event()
    errors: list[BaseException] = []
    dumps = 0

    def guarded(fn: Callable[[random.Random], None], seed_value: int) -> Callable[[], None]:
        def run() -> None:
            rng = random.Random(seed_value)
            try:
                while not stop.is_set():
                    fn(rng)
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        return run

    def deleter(rng: random.Random) -> None:
        if rng.random() < 0.5:
            store.delete_agent(rng.choice(PODS), f"S{rng.randrange(50)}", rng.choice(TEMPLATE_AGENTS))
        else:
            store.delete_agent("in", "ACME", str(rng.randrange(20)))

    def loader(rng: random.Random) -> None:
        store.load(full if rng.random() < 0.5 else seed)

    def dumper(_rng: random.Random) -> None:
        nonlocal dumps
        doc = store.dump().to_document()
        again = StateData.from_document(doc, validator)
        assert again.to_document() == doc
        dumps += 1

    threads = [threading.Thread(target=guarded(deleter, i)) for i in range(4)]
    threads += [threading.Thread(target=guarded(loader, 10 + i)) for i in range(2)]
    threads += [threading.Thread(target=guarded(dumper, 20 + i)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        timer = threading.Timer(1.5, stop.set)
        timer.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        stop.set()
        timer.cancel()
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert dumps > 5
    # Whatever was left is itself a valid state.
    StateData.from_document(store.dump().to_document(), validator)


# -- optimistic requests (RedisStore: no round trip before the decision) ---------------------------


def test_redis_optimistic_request_on_a_moved_state_writes_nothing_and_raises_stale_read(
    redis_server: RedisServer, redis_prefix: str, seed: StateData
) -> None:
    reader = _redis_store(redis_server.url, redis_prefix, seed)
    writer = RedisStore(redis_server.url, prefix=redis_prefix)
    try:
        reader.control()
        assert reader.testers_body("in", "S", "48900") is not None  # kept
        for write in ("record", "delete", "consume"):
            armed = writer.arm(Armed(0, "scenario", "gateway_error", 2))
            reader.control()  # fresh: knows the scenario
            control = reader.control(optimistic=True)  # from what it kept: no round trip
            assert [a.id for a in control.scenarios] == [armed.id]
            assert writer.delete_agent("in", f"MOVED-{write}", "48400")  # the state moves on elsewhere
            before = len(writer.journal(pod=None, operation=None, status=None, limit=100))
            attempts: dict[str, Callable[[], object]] = {
                "record": lambda: reader.record({"n": 1}, checked=True),
                "delete": lambda: reader.delete_agent("in", "S", "48900"),
                "consume": lambda: reader.consume(control.scenarios[0]),  # noqa: B023 - called at once
            }
            with pytest.raises(StaleRead):
                attempts[write]()
            writer.control()
            assert writer.testers("in", "S", "48900") is not None  # nothing deleted
            assert writer.control().scenarios[0].remaining == 2  # nothing consumed
            assert len(writer.journal(pod=None, operation=None, status=None, limit=100)) == before
            writer.disarm("scenario", None)
        reader.control()
        reader.control(optimistic=True)
        reader.record({"n": 2}, checked=True)  # nothing moved: journalled
        assert writer.journal(pod=None, operation=None, status=None, limit=1)[0]["n"] == 2
    finally:
        reader.close()
        writer.close()
