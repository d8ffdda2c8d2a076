"""The SQLite journal is written in batches (mock_server/core/_journal.py), yet a reader in any
process sees every entry a writer had counted before the read: what a client was answered is in
the journal it reads next, whichever worker served either request."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from mock_server.core import SpecIndex, SqliteStore, StateData, default_seed_document, state_validator
from mock_server.core._journal import FLUSH_S, BatchedJournal
from mock_server.core._shared import SLOTS, SharedFile
from mock_server.testing import start_server

SPEC = SpecIndex.load()
SEED = StateData.from_document(default_seed_document(SPEC), state_validator(SPEC))


def _entry(n: int, who: str = "main") -> dict[str, Any]:
    return {"method": "GET", "path": f"/{who}/{n}", "pod": "in", "status": 200}


def _paths(store: SqliteStore) -> list[str]:
    return [e["path"] for e in store.journal(pod=None, operation=None, status=None, limit=10_000)][::-1]


def _writer(path: str, who: str, count: int, flush_s: float, ready: Any, release: Any) -> None:
    """Records `count` entries in batches gathered for `flush_s`, says so, waits to be released."""
    import mock_server.core._journal as journal

    journal.FLUSH_S = flush_s
    store = SqliteStore(path)
    for n in range(count):
        store.record(_entry(n, who))
    ready.set()
    release.wait(60)
    store.close()


def test_journal__a_reader_in_another_process_waits_for_entries_the_writer_still_holds(tmp_path: Path) -> None:
    """The writer gathers its batch for two seconds; the reader asks before it is written."""
    path = str(tmp_path / "state.sqlite3")
    reader = SqliteStore(path, seed=SEED)
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_writer, args=(path, "w", 50, 2.0, ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        unwritten = sqlite3.connect(path).execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        assert unwritten == 0  # still in the writer's memory
        started = time.monotonic()
        assert _paths(reader) == [f"/w/{n}" for n in range(50)]
        assert time.monotonic() - started < 5
    finally:
        release.set()
        proc.join(30)
        reader.close()
    assert proc.exitcode == 0


def test_journal__entries_come_back_in_the_order_they_were_recorded_across_stores(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    first, second = SqliteStore(path, seed=SEED), SqliteStore(path)
    try:
        for n in range(30):
            (first if n % 2 else second).record(_entry(n))
        assert _paths(first) == [f"/main/{n}" for n in range(30)]
        assert _paths(second) == _paths(first)
    finally:
        first.close()
        second.close()


def test_journal__a_dead_writer_is_not_waited_for(tmp_path: Path) -> None:
    path = str(tmp_path / "state.sqlite3")
    reader = SqliteStore(path, seed=SEED)
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_writer, args=(path, "dead", 5, 3600.0, ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        started = time.monotonic()
        assert _paths(reader) == []  # its five entries went with it
        assert time.monotonic() - started < 1
    finally:
        reader.close()


def test_journal__reset_and_clear_leave_no_earlier_entry_behind(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store, other = SqliteStore(path, seed=SEED), SqliteStore(path)
    try:
        for n in range(10):
            other.record(_entry(n))
        store.reset()
        time.sleep(3 * FLUSH_S)  # other's thread would have written them by now, had they survived
        assert _paths(store) == []
        other.record(_entry(99))
        store.clear_journal()
        time.sleep(3 * FLUSH_S)
        assert _paths(store) == []
    finally:
        store.close()
        other.close()


def test_journal__stays_bounded_when_written_in_batches(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite3", journal_limit=100, seed=SEED)
    try:
        for n in range(1_000):
            store.record(_entry(n))
        paths = _paths(store)
        assert paths == [f"/main/{n}" for n in range(900, 1_000)]
        rows = sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        assert rows <= 100 + 64 + 1_000  # trimmed as it goes; never the whole history
    finally:
        store.close()


def test_journal__without_a_free_slot_every_entry_is_written_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "state.sqlite3")
    SqliteStore(path, seed=SEED).close()
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT OR REPLACE INTO journal_writers VALUES (?, ?, ?)", [(s, os.getpid(), "held") for s in range(SLOTS)]
    )
    db.commit()
    journal = BatchedJournal(SharedFile(path), lambda: sqlite3.connect(path, isolation_level=None), limit=100)
    assert journal.slot is None
    journal.record({"path": "/at-once"})
    assert db.execute("SELECT entry FROM journal").fetchall() == [('{"path":"/at-once"}',)]


def test_journal__a_state_file_from_before_batching_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL)")
    db.execute("""INSERT INTO journal (entry) VALUES ('{"path": "/old"}')""")
    db.commit()
    db.close()
    store = SqliteStore(path, seed=SEED)
    try:
        store.record(_entry(1))
        assert _paths(store) == ["/old", "/main/1"]
    finally:
        store.close()


def test_journal__the_shared_counters_file_is_not_named_like_a_rollback_journal(tmp_path: Path) -> None:
    """SQLite takes `<db>-journal` for a hot rollback journal and refuses new connections."""
    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    try:
        store.record(_entry(1))
        assert not (tmp_path / "state.sqlite3-journal").exists()
        assert (tmp_path / "state.sqlite3.shared").exists()
        sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()
    finally:
        store.close()


# -- the shared state version (mock_server/core/_shared.py) and the look-ups cached under it ----------


def _change_elsewhere(path: str, done: Any) -> None:
    store = SqliteStore(path)
    store.delete_agent("in", "S", "48900")
    store.mutate(lambda state: setattr(state.default_account, "rcs_enabled", False))
    store.close()
    done.set()


def test_sqlite_store__cached_look_ups_follow_a_change_made_in_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "state.sqlite3")
    store = SqliteStore(path, seed=SEED)
    try:
        account = store.account("in", "S")
        assert account is not None and account.rcs_enabled
        assert store.testers("in", "S", "48900")  # both now cached in this process
        assert store.account("in", "S") == account
        ctx = multiprocessing.get_context("spawn")
        done = ctx.Event()
        proc = ctx.Process(target=_change_elsewhere, args=(path, done))
        proc.start()
        assert done.wait(60)
        proc.join(30)
        assert store.testers("in", "S", "48900") is None
        changed = store.account("in", "S")
        assert changed is not None and not changed.rcs_enabled
    finally:
        store.close()


def _bump(path: str, times: int) -> None:
    shared = SharedFile(path)
    for _ in range(times):
        with shared.writing():
            shared.bump_version()


def test_shared_file__bumps_from_many_processes_inside_writing_are_never_lost(tmp_path: Path) -> None:
    path = str(tmp_path / "state.sqlite3")
    start = SharedFile(path).version()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_bump, args=(path, 5_000)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert SharedFile(path).version() == start + 20_000


def test_sqlite_store__the_look_up_cache_is_bounded(tmp_path: Path) -> None:
    from mock_server.core._sqlite import _CACHE_LIMIT

    store = SqliteStore(tmp_path / "state.sqlite3", seed=SEED)
    try:
        for n in range(3 * _CACHE_LIMIT):
            assert store.testers("in", f"SID{n}", "48900")
        assert len(store._reads[1]) <= _CACHE_LIMIT
    finally:
        store.close()


def test_sqlite_store__a_testers_list_handed_out_is_a_copy_even_when_cached(tmp_path: Path) -> None:
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


def test_sqlite_store__a_snapshot_taken_before_a_change_is_not_cached_after_it(tmp_path: Path) -> None:
    """A request that took its control snapshot before another worker's change must not file
    what it builds from that snapshot under the new version."""
    path = tmp_path / "state.sqlite3"
    store, other = SqliteStore(path, seed=SEED), SqliteStore(path)
    try:
        snapshot = store.control()
        other.mutate(lambda state: setattr(state.default_account, "rcs_enabled", False))
        store.account("in", "S", snapshot)  # an in-flight request with the older snapshot
        account = store.account("in", "S")
        assert account is not None and account.rcs_enabled is False
        hint = store.account("na", "LISTED-LATER")
        assert hint is not None and not hint.explicit
        other.mutate(
            lambda state: state.accounts.__setitem__(
                ("na", "LISTED-LATER"),
                type(state.default_account)(rcs_enabled=True, key_hashes=frozenset(), agents={"48900": []}),
            )
        )
        store.testers_body("na", "LISTED-LATER", "48900", hint)  # in flight with the older account
        assert store.testers_body("na", "LISTED-LATER", "48900") == b"[]"
        assert store.testers("na", "LISTED-LATER", "48900", hint) == []
    finally:
        store.close()
        other.close()


def test_server__workers_write_their_last_batch_and_give_back_their_slots_on_sigterm(tmp_path: Path) -> None:
    """granian's workers are forked and leave through os._exit: atexit alone would never run."""
    state = tmp_path / "state.sqlite3"
    server = start_server(("--workers", "2", "--state", str(state)))
    try:
        with httpx.Client(headers={"api-key": "k", "Content-Type": "application/json"}, timeout=10) as client:
            for n in range(40):
                assert client.get(f"{server.url}/in/v1/S{n}/rcs/agent/testersbyagent?agent_number=48900").is_success
        writers = sqlite3.connect(state).execute("SELECT COUNT(*) FROM journal_writers").fetchone()[0]
        assert writers >= 1
    finally:
        assert server.stop() == 0
    db = sqlite3.connect(state)
    assert db.execute("SELECT COUNT(*) FROM journal_writers").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 40


def test_server__a_restart_forgets_the_writers_of_the_run_before(tmp_path: Path) -> None:
    """Rows a killed run left behind would name pids that may belong to anyone by now."""
    state = tmp_path / "state.sqlite3"
    SqliteStore(state, seed=SEED).close()
    db = sqlite3.connect(state)
    db.execute("INSERT INTO journal_writers VALUES (0, ?, 'left-behind')", (os.getpid(),))
    db.commit()
    SharedFile(str(state)).set_slot(0, 5, 1)  # five counted, one written: a reader would wait for it
    server = start_server(("--workers", "1", "--state", str(state)))
    try:
        started = time.monotonic()
        assert httpx.get(f"{server.url}/__mock/journal", timeout=10).status_code == 200
        assert time.monotonic() - started < 2
    finally:
        server.stop()
    assert "left-behind" not in [r[0] for r in sqlite3.connect(state).execute("SELECT token FROM journal_writers")]
