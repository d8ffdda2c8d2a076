"""SqliteStore's journal (mock_server/core/_journal.py): one append-only file per writer, written
before the answer leaves, merged on read. What a client was answered is in the journal it reads
next, whichever worker served either request, with nothing to wait for. And the look-ups a worker
keeps follow every commit of another (the change counter, then PRAGMA data_version). The
cross-process store contract is in tests/store/test_store.py; here are the files' own rules and the
real server."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server.core import SpecIndex, SqliteStore, StateData, StoreUnavailable, default_seed_document, state_validator
from mock_server.core._changes import ChangeCounter, NoCounter
from mock_server.core._journal import FileJournal
from mock_server.testing import start_server

SPEC = SpecIndex.load()
SEED = StateData.from_document(default_seed_document(SPEC), state_validator(SPEC))


Stores = tuple[SqliteStore, SqliteStore]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    """Two stores on one file, as two workers have: a seeded one, and another."""
    path = tmp_path / "state.sqlite3"
    store, other = SqliteStore(path, seed=SEED), SqliteStore(path)
    try:
        yield store, other
    finally:
        store.close()
        other.close()


def _entry(n: int, who: str = "main") -> dict[str, Any]:
    return {"method": "GET", "path": f"/{who}/{n}", "pod": "in", "status": 200}


def _paths(store: SqliteStore) -> list[str]:
    return [e["path"] for e in store.journal(pod=None, operation=None, status=None, limit=10_000)][::-1]


def _folder(path: str | Path) -> Path:
    return Path(os.path.realpath(path) + ".journal.d")


def test_journal__entries_come_back_in_the_order_they_were_recorded_across_stores(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    first, second = SqliteStore(path, seed=SEED), SqliteStore(path)
    try:
        for n in range(30):
            (first if n % 2 else second).record(_entry(n))
        assert _paths(first) == [f"/main/{n}" for n in range(30)]
        assert _paths(second) == _paths(first)
        ids = [e["id"] for e in first.journal(pod=None, operation=None, status=None, limit=100)]
        assert len(set(ids)) == 30  # two writers, never the same id
    finally:
        first.close()
        second.close()


def test_journal__an_entry_is_in_its_file_when_record_returns(tmp_path: Path) -> None:
    """No thread, no batch: what another process reads is what is on disk now."""
    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    try:
        store.record(_entry(1))
        (log,) = _folder(store.path).glob("*.log")
        assert b'"path":"/main/1"' in log.read_bytes()
        assert FileJournal(str(_folder(store.path)), 10).read()[0]["path"] == "/main/1"  # a reader of its own
    finally:
        store.close()


def test_journal__reset_and_clear_leave_no_earlier_entry_behind(stores: Stores) -> None:
    store, other = stores
    for n in range(10):
        other.record(_entry(n))
    store.reset()
    assert _paths(store) == []
    assert _paths(other) == []
    other.record(_entry(99))
    store.clear_journal()
    assert _paths(store) == []
    other.record(_entry(100))  # the writer goes on in its emptied file
    assert _paths(store) == ["/main/100"]


def test_journal__stays_bounded_on_disk(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite3", journal_limit=100, seed=SEED)
    try:
        for n in range(1_000):
            store.record(_entry(n))
        assert _paths(store) == [f"/main/{n}" for n in range(900, 1_000)]
        logs = sorted(_folder(store.path).glob("*.log"))
        assert len(logs) == 2  # the full file before and the one being written
        assert sum(len(p.read_bytes().split(b"\n")) - 1 for p in logs) <= 200
    finally:
        store.close()


def test_journal__a_line_cut_short_is_skipped(tmp_path: Path) -> None:
    """A full disk or a kill in mid-write may leave half a line; the rest still reads."""
    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    try:
        store.record(_entry(1))
        (log,) = _folder(store.path).glob("*.log")
        with log.open("ab") as f:
            f.write(b'\n[1,{"path":"/cut')
        store.record(_entry(2))
        assert _paths(store) == ["/main/1", "/main/2"]
    finally:
        store.close()


def test_journal__a_closed_store_gives_its_slot_to_the_next(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    first = SqliteStore(path, seed=SEED)
    first.record(_entry(1))
    first.close()
    second = SqliteStore(path)
    try:
        second.record(_entry(2))
        assert [p.name for p in _folder(path).glob("w*.lock")] == ["w0.lock"]
        assert _paths(second) == ["/main/1", "/main/2"]  # the slot's earlier file is kept as its "before"
    finally:
        second.close()


def test_journal__a_state_file_of_the_batched_journal_opens_without_its_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL, at_ns INTEGER)")
    db.execute("CREATE TABLE journal_writers (slot INTEGER PRIMARY KEY, pid INTEGER NOT NULL, token TEXT NOT NULL)")
    db.commit()
    db.close()
    store = SqliteStore(path, seed=SEED)
    try:
        store.record(_entry(1))
        assert _paths(store) == ["/main/1"]
        tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not tables & {"journal", "journal_writers"}
    finally:
        store.close()


def test_journal__no_file_is_named_like_a_rollback_journal(tmp_path: Path) -> None:
    """SQLite takes `<db>-journal` for a hot rollback journal and refuses new connections."""
    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    try:
        store.record(_entry(1))
        assert not (tmp_path / "state.sqlite3-journal").exists()
        assert _folder(store.path).is_dir()
        sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()
    finally:
        store.close()


# -- the look-ups kept between changes ------------------------------------------------------------


def _statements(store: SqliteStore) -> list[str]:
    """The SQL this thread's connection of `store` runs from now on."""
    statements: list[str] = []
    store._db().set_trace_callback(statements.append)
    return statements


def test_sqlite_store__a_get_on_unchanged_state_runs_no_statement(tmp_path: Path) -> None:
    """The change counter says nothing changed: control(), the account and the body all come
    from what was kept, with no statement at all."""
    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    try:
        store.control()
        store.account("in", "S")
        store.testers_body("in", "S", "48900")
        statements = _statements(store)
        for _ in range(3):
            store.control()
            assert store.account("in", "S") is not None
            assert store.testers_body("in", "S", "48900") is not None
        assert statements == []
        store.delete_agent("in", "S", "48900")  # its own commit: data_version does not tell of it
        statements.clear()
        store.control()
        assert store.testers_body("in", "S", "48900") is None
        assert len(statements) > 1
    finally:
        store.close()


def _kept_then_deleted(store: SqliteStore, deleter: SqliteStore) -> list[str]:
    """`store` keeps agent 48900's testers, then `deleter` (it, or another store on its file)
    deletes the agent: the SQL `store`'s connection runs after that delete."""
    store.control()
    assert store.testers_body("in", "S", "48900") is not None
    statements = _statements(store)
    assert deleter.delete_agent("in", "S", "48900")
    statements.clear()
    return statements


def test_sqlite_store__another_connections_commit_is_asked_of_sqlite_once(stores: Stores) -> None:
    store, other = stores
    statements = _kept_then_deleted(store, other)
    store.control()
    assert statements.count("PRAGMA data_version") == 1
    assert store.testers_body("in", "S", "48900") is None
    statements.clear()
    store.control()  # the counter has not moved since: nothing asked
    assert store.testers_body("in", "S", "48900") is None
    assert statements == []


def test_sqlite_store__after_its_own_commit_a_thread_asks_sqlite_nothing_but_reads_anew(stores: Stores) -> None:
    """A DELETE's successor on the same worker: its store's own commit emptied what was kept and
    left the counter where that thread knows it, so PRAGMA data_version is not asked; a commit of
    another connection after it still is."""
    store, other = stores
    statements = _kept_then_deleted(store, store)
    store.control()
    assert store.testers_body("in", "S", "48900") is None
    assert "PRAGMA data_version" not in statements
    assert any("FROM deleted_default" in sql for sql in statements)  # read anew: nothing kept from before
    assert other.delete_agent("in", "S", "48400")
    statements.clear()
    store.control()
    assert statements.count("PRAGMA data_version") == 1
    assert store.testers_body("in", "S", "48400") is None


def test_sqlite_store__a_commit_of_another_thread_after_this_ones_is_seen(tmp_path: Path) -> None:
    """The counter value a writer keeps is its own turn's end: another thread of the same process
    that reads and keeps, and then another connection's commit, both come after it."""
    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    other = SqliteStore(tmp_path / "state.sqlite3")
    try:
        assert store.delete_agent("in", "S", "48900")
        kept: list[bytes | None] = []
        reader = threading.Thread(target=lambda: kept.append(store.testers_body("in", "S", "48400")))
        reader.start()
        reader.join()  # kept by another thread, after this thread's commit
        assert kept[0] is not None and ("body", "in", "S", "48400") in store._reads[1]
        assert other.delete_agent("in", "S", "48400")
        store.control()
        assert store.testers_body("in", "S", "48400") is None
    finally:
        store.close()
        other.close()


def test_sqlite_store__a_writer_that_died_inside_its_transaction_leaves_readers_asking(stores: Stores) -> None:
    """The counter stays odd when a writer is killed between making it odd and even (here: its
    commit went through, its last step never ran): readers then ask SQLite on every request and
    see that commit, until the next writer makes the counter even again."""
    store, other = stores
    store.control()
    assert store.testers_body("in", "S", "48900") is not None
    counter = other._changes
    assert isinstance(counter, ChangeCounter)
    counter._value[0] |= 1  # what `writing()` does first; the kill comes before its last step
    db = other._db()
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO deleted_default VALUES ('in', 'S', '48900')")
    db.execute("COMMIT")
    statements = _statements(store)
    for _ in range(3):
        store.control()
        assert store.testers_body("in", "S", "48900") is None
    assert statements.count("PRAGMA data_version") == 3
    assert other.delete_agent("in", "S", "48400")  # the next writer
    assert counter.read() % 2 == 0
    store.control()
    assert store.testers_body("in", "S", "48400") is None
    statements.clear()
    store.control()
    assert statements == []


def test_sqlite_store__the_change_counter_is_even_and_grown_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = SqliteStore(path, seed=SEED)
    try:
        before = store._changes.read()
        assert before % 2 == 0
        assert store.delete_agent("in", "S", "48900")
        assert not store.delete_agent("in", "S", "48900")  # a write that changed nothing still counts
        with contextlib.suppress(RuntimeError):
            store.mutate(_fail)  # a write that rolled back: even again, and moved
        after = store._changes.read()
        assert after % 2 == 0 and after >= before + 6
        assert Path(os.path.realpath(path) + ".changes").stat().st_size == 8
    finally:
        store.close()


class _FailsOnce:
    """A cursor whose next execute() raises, as a busy or broken database would."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.cursor, self.failed = cursor, False

    def execute(self, sql: str) -> sqlite3.Cursor:
        if not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database is locked")
        return self.cursor.execute(sql)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()


def test_sqlite_store__an_ask_of_sqlite_that_failed_is_asked_again(stores: Stores) -> None:
    """The counter's value is taken as seen only once SQLite answered: else the failed request's
    successors would skip asking and answer from before the change."""
    store, other = stores
    store.control()
    assert store.testers_body("in", "S", "48900") is not None
    assert other.delete_agent("in", "S", "48900")
    real = store._local.version
    store._local.version = _FailsOnce(real)
    with pytest.raises(sqlite3.OperationalError):
        store.control()
    store.control()
    assert store.testers_body("in", "S", "48900") is None


def test_sqlite_store__a_write_inside_a_write_is_refused_at_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="inside another write"):
            store.mutate(lambda state: store.delete_agent("in", "S", "48900"))
        assert time.monotonic() - started < 5
        assert store._changes.read() % 2 == 0
        assert store.delete_agent("in", "S", "48900")  # the store writes on
    finally:
        store.close()


def test_sqlite_store__a_closed_store_is_used_again(stores: Stores) -> None:
    store, other = stores
    store.control()
    store.close()
    assert other.delete_agent("in", "S", "48900")
    store.control()
    assert store.testers_body("in", "S", "48900") is None
    assert store.delete_agent("in", "S", "48400")


@contextlib.contextmanager
def _turn_held(counter: ChangeCounter | NoCounter) -> Iterator[None]:
    """Another thread inside `counter.writing()` for as long as the block runs."""
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with counter.writing():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert inside.wait(10)
        yield
    finally:
        leave.set()
        thread.join(10)


def test_change_counter__a_turn_held_past_the_timeout_is_store_unavailable(tmp_path: Path) -> None:
    """Two processes' counters are two descriptors: modelled here by two objects on one file."""
    path = str(tmp_path / "state.sqlite3.changes")
    holder, waiter = ChangeCounter(path, 5.0), ChangeCounter(path, 0.2)
    with _turn_held(holder):
        assert waiter.read() % 2 == 1  # a writer is inside: every reader asks SQLite
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="another writer held it"), waiter.writing():
            pass
        assert 0.15 < time.monotonic() - started < 3
    with waiter.writing():  # the turn is free again
        pass
    assert waiter.read() % 2 == 0


def _write_in_child(store: SqliteStore, done: Any) -> None:
    started = time.monotonic()
    store.delete_agent("in", "S", "48400")  # the store the child inherited (fork: not pickled)
    done.put(time.monotonic() - started)


def test_sqlite_store__a_forked_child_waits_for_its_parents_writer(tmp_path: Path) -> None:
    """The child inherits the parent's descriptor, whose flock a parent thread holds: the child's
    store opens its own, so its write waits for the parent's to end instead of joining it."""
    path = tmp_path / "state.sqlite3"
    store = SqliteStore(path, seed=SEED)
    context = multiprocessing.get_context("fork")
    done = context.Queue()
    try:
        child = context.Process(target=_write_in_child, args=(store, done))
        with _turn_held(store._changes):
            child.start()
            time.sleep(0.5)
        waited = done.get(timeout=20)
        child.join(10)
        assert child.exitcode == 0
        assert waited >= 0.4
        store.control()
        assert store.testers_body("in", "S", "48400") is None
        assert store._changes.read() % 2 == 0
    finally:
        store.close()


def _use_in_child(store: SqliteStore, done: Any) -> None:
    """Reports what the inherited store became and did, in the child."""
    statements = _statements(store)
    store.control()
    found = store.testers_body("in", "S", "48900")
    try:
        store.delete_agent("in", "S", "48400")
        refused = ""
    except StoreUnavailable as exc:
        refused = str(exc)
    done.put((type(store._changes).__name__, statements.count("PRAGMA data_version"), found is None, refused))


def test_sqlite_store__a_child_that_cannot_reopen_the_counter_asks_sqlite_and_refuses_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forked child whose counter cannot be opened again (a descriptor limit, say) must not
    write through the inherited descriptor, whose flock is the parent's: it reads by asking
    SQLite every time, and its writes are answered 503."""
    path = tmp_path / "state.sqlite3"
    store, other = SqliteStore(path, seed=SEED), SqliteStore(path)
    try:
        store.control()
        assert store.testers_body("in", "S", "48900") is not None
        assert other.delete_agent("in", "S", "48900")

        def no_counter(path: str, timeout: float) -> ChangeCounter:
            raise OSError(24, "Too many open files")

        monkeypatch.setattr("mock_server.core._sqlite.ChangeCounter", no_counter)
        context = multiprocessing.get_context("fork")
        done = context.Queue()
        child = context.Process(target=_use_in_child, args=(store, done))
        child.start()
        kind, asked, deleted_seen, refused = done.get(timeout=20)
        child.join(10)
        assert child.exitcode == 0
        assert kind == "NoCounter"
        assert asked == 1 and deleted_seen  # asked SQLite, and saw the other store's delete
        assert "could not be opened in this process" in refused and "Too many open files" in refused
        assert store._changes.read() % 2 == 0  # the parent's counter is untouched
    finally:
        store.close()
        other.close()


def _hold_and_wait(path: str, inside: Any) -> None:
    store = SqliteStore(path)
    with store._changes.writing():
        inside.set()
        time.sleep(60)  # killed here


def test_sqlite_store__a_writer_killed_inside_its_turn_lets_go_of_it(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = SqliteStore(path, seed=SEED)
    context = multiprocessing.get_context("spawn")
    inside = context.Event()
    child = context.Process(target=_hold_and_wait, args=(str(path), inside))
    child.start()
    try:
        assert inside.wait(30)
        assert store._changes.read() % 2 == 1
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(10)
        started = time.monotonic()
        assert store.delete_agent("in", "S", "48400")
        assert time.monotonic() - started < 5  # the kernel let go of the turn with the process
        assert store._changes.read() % 2 == 0
    finally:
        if child.is_alive():
            child.kill()
        store.close()


def _fail(state: StateData) -> None:
    raise RuntimeError("refused")


def test_sqlite_store__the_look_up_cache_is_bounded(tmp_path: Path) -> None:
    from mock_server.core._sqlite import _CACHE_LIMIT

    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    try:
        store.control()
        most = 0
        for n in range(3 * _CACHE_LIMIT):
            assert store.testers_body("in", f"SID{n}", "48900")
            most = max(most, len(store._reads[1]))
        assert most == _CACHE_LIMIT  # filled up to the bound, then started over
    finally:
        store.close()


def test_sqlite_store__a_testers_list_handed_out_is_a_copy(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    try:
        first = store.testers("in", "S", "48900")
        assert first
        first[0]["status"] = "CHANGED BY THE CALLER"
        first.append({})
        again = store.testers("in", "S", "48900")
        assert again is not None and len(again) == 1 and again[0]["status"] == "ACTIVE"
    finally:
        store.close()


def test_sqlite_store__a_read_in_flight_across_a_change_is_not_kept_after_it(tmp_path: Path) -> None:
    """A request that took its control snapshot before another worker's change must not keep
    what it read for the requests after the change."""
    path = tmp_path / "state.sqlite3"
    store, other = SqliteStore(path, seed=SEED), SqliteStore(path)
    try:
        store.control()
        assert store.account("na", "LISTED-LATER") is not None
        assert store.testers_body("na", "LISTED-LATER", "48900") != b"[]"
        other.mutate(lambda state: setattr(state.default_account, "rcs_enabled", False))
        other.mutate(
            lambda state: state.accounts.__setitem__(
                ("na", "LISTED-LATER"),
                type(state.default_account)(rcs_enabled=True, key_hashes=frozenset(), agents={"48900": []}),
            )
        )
        store.account("in", "S")  # in flight: read after the change, under the epoch before it
        store.control()  # the next request
        account = store.account("in", "S")
        assert account is not None and account.rcs_enabled is False
        assert store.testers_body("na", "LISTED-LATER", "48900") == b"[]"
        assert store.testers("na", "LISTED-LATER", "48900") == []
    finally:
        store.close()
        other.close()


# -- the real server ------------------------------------------------------------------------------


def test_server__every_answer_of_every_worker_is_in_the_journal_at_once_and_after_sigterm(tmp_path: Path) -> None:
    """granian's workers are forked and leave through os._exit: nothing may wait for an exit hook."""
    state = tmp_path / "state.sqlite3"
    server = start_server(("--workers", "2", "--state", str(state)))
    try:
        with httpx.Client(headers={"api-key": "k", "Content-Type": "application/json"}, timeout=10) as client:
            for n in range(40):
                assert client.get(f"{server.url}/in/v1/S{n}/rcs/agent/testersbyagent?agent_number=48900").is_success
                journal = httpx.get(f"{server.url}/__mock/journal?limit=1", timeout=10).json()
                assert journal[0]["sid"] == f"S{n}"  # whichever worker answered either request
    finally:
        assert server.stop() == 0
    store = SqliteStore(state)
    try:
        entries = store.journal(pod=None, operation=None, status=None, limit=1000)
        assert [e["sid"] for e in entries if e.get("operation")] == [f"S{n}" for n in range(39, -1, -1)]
    finally:
        store.close()


def test_server__a_restart_takes_over_the_slots_of_the_run_before(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    for _ in range(3):
        server = start_server(("--workers", "2", "--state", str(state)))
        try:
            with httpx.Client(headers={"api-key": "k", "Content-Type": "application/json"}, timeout=10) as client:
                for n in range(10):
                    assert client.get(f"{server.url}/in/v1/S{n}/rcs/agent/testersbyagent?agent_number=1").status_code
        finally:
            assert server.stop() == 0
    assert len(list(_folder(state).glob("w*.lock"))) <= 2  # one per worker, not two per run
