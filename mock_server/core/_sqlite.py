"""The store shared by every worker process of the server: one SQLite file in WAL mode.

SQLite gives what the mock promises across processes without a server of its own:
a delete seen by every later request whichever worker serves it, exactly one success
for concurrent deletes (a row delete or a tombstone insert in one transaction), and a
`--state` file that a kill -9 leaves at the old or the new state, never half-written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from ._journal import JOURNAL_SCHEMA, BatchedJournal
from ._shared import SharedFile
from ._spec import encode_json
from ._state import AccountData, StateData
from ._store import (
    DEFAULT_JOURNAL_LIMIT,
    AccountInfo,
    Armed,
    ArmedKind,
    Control,
    filter_journal,
)

__all__ = ["SqliteStore"]

T = TypeVar("T")

_CACHE_LIMIT = 4096  # look-ups kept between two state changes; more, and the cache starts over
_MISSING: Any = object()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    pod TEXT NOT NULL, sid TEXT NOT NULL, rcs_enabled INTEGER NOT NULL,
    key_hashes TEXT NOT NULL, PRIMARY KEY (pod, sid));
CREATE TABLE IF NOT EXISTS agents (
    pod TEXT NOT NULL, sid TEXT NOT NULL, agent_number TEXT NOT NULL,
    testers TEXT NOT NULL, PRIMARY KEY (pod, sid, agent_number));
CREATE TABLE IF NOT EXISTS deleted_default (
    pod TEXT NOT NULL, sid TEXT NOT NULL, agent_number TEXT NOT NULL,
    PRIMARY KEY (pod, sid, agent_number));
CREATE TABLE IF NOT EXISTS armed (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT NOT NULL,
    remaining INTEGER, pod TEXT, sid TEXT, operation TEXT, agent_number TEXT,
    params TEXT NOT NULL);
"""


class SqliteStore:
    kind = "sqlite"

    def __init__(
        self, path: str | Path, journal_limit: int = DEFAULT_JOURNAL_LIMIT, *, seed: StateData | None = None
    ) -> None:
        """Opens (or creates) the file. A `seed` fills a file that has none yet; without
        one a new file starts empty, where every request answers 401."""
        self.path = str(path)
        self.journal_limit = journal_limit
        self._local = threading.local()
        self._cache_lock = threading.Lock()
        self._control: tuple[int, Control] | None = None  # (state version, control)
        self._reads: tuple[int, dict[tuple[str, ...], Any]] = (-1, {})  # (state version, look-ups)
        self._journal: BatchedJournal | None = None
        self._journal_pid = 0
        db = self._db()
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(journal)")}
        if columns and "at_ns" not in columns:  # a state file from before the batched journal
            db.execute("ALTER TABLE journal ADD COLUMN at_ns INTEGER NOT NULL DEFAULT 0")
        db.executescript(JOURNAL_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
        self._shared = SharedFile(self.path)  # after SQLite had its say about the path
        if seed is not None and not self.is_initialized():
            self.set_seed(seed)
            self.load(seed)

    # -- connections -------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        """One connection per thread and per process: sqlite3 objects survive no fork."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            # WAL is a property of the file: set once. Asking for it again on every new connection
            # fails at once with "database is locked" while another connection reads.
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        with self._shared.writing():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a failed COMMIT may leave it open: never keep the lock
                    db.execute("ROLLBACK")
                raise
            self._shared.bump_version()  # every process's cached look-ups are stale from here on

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One snapshot across tables (WAL readers never block the writer)."""
        db = self._db()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    @staticmethod
    def _bump(db: sqlite3.Connection) -> None:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def _journal_writer(self) -> BatchedJournal:
        """Made on first use in each process: its thread and shared slot are the process's own."""
        if self._journal is None or self._journal_pid != os.getpid():
            with self._cache_lock:
                if self._journal is None or self._journal_pid != os.getpid():
                    self._journal = BatchedJournal(self._shared, self._db, self.journal_limit)
                    self._journal_pid = os.getpid()
        return self._journal

    def forget_journal_writers(self) -> None:
        """Before any worker starts: the writers of an earlier run are gone, whatever their rows say
        (their pids may belong to other processes by now)."""
        with self._write() as db:
            db.execute("DELETE FROM journal_writers")
            self._shared.reset_slots()

    def close(self) -> None:
        if self._journal is not None and self._journal_pid == os.getpid():
            self._journal.close()
            self._journal = None
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- set-up --------------------------------------------------------------------

    def is_initialized(self) -> bool:
        row = self._db().execute("SELECT 1 FROM meta WHERE key = 'seed'").fetchone()
        return row is not None

    def set_seed(self, seed: StateData) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('seed', ?)", (json.dumps(seed.to_document()),))

    def _seed(self, db: sqlite3.Connection) -> StateData:
        row = db.execute("SELECT value FROM meta WHERE key = 'seed'").fetchone()
        return StateData.from_document(json.loads(row[0]), None) if row else StateData()

    # -- the hot path --------------------------------------------------------------

    # Between two state changes, any process answers from what it read: the shared state version
    # (bumped after every commit) says when that is stale. The version is read before SQLite is,
    # and what is kept is built only from reads made after that (never from a snapshot a caller
    # took earlier), so it is never older than the version it is kept under.

    def _cached(self, key: tuple[str, ...]) -> tuple[int, Any]:
        version = self._shared.version()
        reads = self._reads
        if reads[0] != version:
            return version, _MISSING
        return version, reads[1].get(key, _MISSING)

    def _keep(self, version: int, key: tuple[str, ...], value: Any) -> None:
        reads = self._reads
        if reads[0] != version or len(reads[1]) >= _CACHE_LIMIT:
            reads = self._reads = (version, {})
        reads[1][key] = value

    def control(self) -> Control:
        version = self._shared.version()
        kept = self._control
        if kept is not None and kept[0] == version:
            return kept[1]
        control = self._read_control()
        self._control = (version, control)
        return control

    def _read_control(self) -> Control:
        db = self._db()
        generation = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        kept = self._control
        if kept is not None and kept[1].generation == generation:
            return kept[1]
        with self._cache_lock:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
            generation = int(rows["generation"])
            default = json.loads(rows.get("default_account", "null"))
            armed = [_armed_from_row(r) for r in db.execute("SELECT * FROM armed ORDER BY id")]
            control = Control(
                generation=generation,
                magic_agents=json.loads(rows.get("magic_agents", "{}")),
                default_account=None if default is None else AccountData.from_document(default),
                scenarios=tuple(a for a in armed if a.kind == "scenario"),
                faults=tuple(a for a in armed if a.kind == "fault"),
            )
            return control

    def account(self, pod: str, sid: str, control: Control | None = None) -> AccountInfo | None:
        version, kept = self._cached(("account", pod, sid))
        if kept is _MISSING:  # built from reads made now, never from the caller's older snapshot
            kept = self._read_account(pod, sid)
            self._keep(version, ("account", pod, sid), kept)
        return kept  # type: ignore[no-any-return]

    def _read_account(self, pod: str, sid: str) -> AccountInfo | None:
        row = (
            self._db()
            .execute("SELECT rcs_enabled, key_hashes FROM accounts WHERE pod = ? AND sid = ?", (pod, sid))
            .fetchone()
        )
        if row is not None:
            return AccountInfo(sid, True, bool(row[0]), frozenset(json.loads(row[1])))
        default = self.control().default_account
        if default is None:
            return None
        return AccountInfo(sid, False, default.rcs_enabled, default.key_hashes, template=default)

    def account_for_key(self, pod: str, key_hash: str) -> str | None:
        """Kept per state version like the other look-ups, and searched by SQLite itself: one
        Python parse per listed account made a /wsgw request with 20,000 accounts take 44 ms."""
        version, kept = self._cached(("key", pod, key_hash))
        if kept is _MISSING:
            row = (
                self._db()
                .execute(
                    "SELECT sid FROM accounts, json_each(accounts.key_hashes) AS k"
                    " WHERE accounts.pod = ? AND k.value = ? ORDER BY sid LIMIT 1",
                    (pod, key_hash),
                )
                .fetchone()
            )
            kept = None if row is None else str(row[0])
            self._keep(version, ("key", pod, key_hash), kept)
        return kept  # type: ignore[no-any-return]

    def testers(
        self, pod: str, sid: str, agent: str, account: AccountInfo | None = None
    ) -> list[dict[str, Any]] | None:
        """`account` is a hint other stores may use; this one caches, and builds what it keeps
        from reads made after the version it files them under, so it ignores the hint."""
        version, kept = self._cached(("testers", pod, sid, agent))
        if kept is _MISSING:
            found = self._read_testers(pod, sid, agent)
            kept = None if found is None else tuple(found)
            self._keep(version, ("testers", pod, sid, agent), kept)
        return None if kept is None else [dict(t) for t in kept]

    def testers_body(self, pod: str, sid: str, agent: str, account: AccountInfo | None = None) -> bytes | None:
        version, kept = self._cached(("body", pod, sid, agent))
        if kept is _MISSING:
            found = self._read_testers(pod, sid, agent)
            kept = None if found is None else encode_json(found)
            self._keep(version, ("body", pod, sid, agent), kept)
        return kept  # type: ignore[no-any-return]

    def _read_testers(self, pod: str, sid: str, agent: str) -> list[dict[str, Any]] | None:
        db = self._db()
        listed = db.execute("SELECT 1 FROM accounts WHERE pod = ? AND sid = ?", (pod, sid)).fetchone() is not None
        if listed:
            row = db.execute(
                "SELECT testers FROM agents WHERE pod = ? AND sid = ? AND agent_number = ?",
                (pod, sid, agent),
            ).fetchone()
            return None if row is None else list(json.loads(row[0]))
        default = self.control().default_account
        if default is None or agent not in default.agents:
            return None
        if db.execute(
            "SELECT 1 FROM deleted_default WHERE pod = ? AND sid = ? AND agent_number = ?",
            (pod, sid, agent),
        ).fetchone():
            return None
        return [dict(t) for t in default.agents[agent]]

    def delete_agent(self, pod: str, sid: str, agent: str, account: AccountInfo | None = None) -> bool:
        # The listed-or-not check stays inside the transaction: one success for concurrent deletes.
        with self._write() as db:
            if db.execute("SELECT 1 FROM accounts WHERE pod = ? AND sid = ?", (pod, sid)).fetchone():
                cur = db.execute(
                    "DELETE FROM agents WHERE pod = ? AND sid = ? AND agent_number = ?",
                    (pod, sid, agent),
                )
                return cur.rowcount == 1
            default = account.template if account is not None else self.control().default_account
            if default is None or agent not in default.agents:
                return False
            cur = db.execute("INSERT OR IGNORE INTO deleted_default VALUES (?, ?, ?)", (pod, sid, agent))
            return cur.rowcount == 1

    def consume(self, armed: Armed) -> bool:
        if armed.remaining is None:  # still armed? a snapshot may predate a disarm
            return self._db().execute("SELECT 1 FROM armed WHERE id = ?", (armed.id,)).fetchone() is not None
        with self._write() as db:
            cur = db.execute("UPDATE armed SET remaining = remaining - 1 WHERE id = ? AND remaining > 0", (armed.id,))
            if cur.rowcount != 1:
                return False
            db.execute("DELETE FROM armed WHERE id = ? AND remaining <= 0", (armed.id,))
            self._bump(db)
            return True

    def record(self, entry: dict[str, Any]) -> None:
        self._journal_writer().record(entry)

    # -- the control plane -----------------------------------------------------------

    def arm(self, armed: Armed) -> Armed:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO armed (kind, name, remaining, pod, sid, operation, agent_number, params)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    armed.kind,
                    armed.name,
                    armed.remaining,
                    armed.pod,
                    armed.sid,
                    armed.operation,
                    armed.agent_number,
                    json.dumps(dict(armed.params)),
                ),
            )
            self._bump(db)
            return replace(armed, id=int(cur.lastrowid or 0))

    def disarm(self, kind: ArmedKind, armed_id: int | None) -> int:
        with self._write() as db:
            if armed_id is None:
                cur = db.execute("DELETE FROM armed WHERE kind = ?", (kind,))
            else:
                cur = db.execute("DELETE FROM armed WHERE kind = ? AND id = ?", (kind, armed_id))
            if cur.rowcount:
                self._bump(db)
            return cur.rowcount

    def journal(
        self, *, pod: str | None, operation: str | None, status: int | None, limit: int
    ) -> list[dict[str, Any]]:
        self._journal_writer().settle()
        rows = (
            self._db()
            .execute("SELECT id, entry FROM journal ORDER BY at_ns DESC, id DESC LIMIT ?", (self.journal_limit,))
            .fetchall()
        )
        entries = [{**json.loads(entry), "id": rid} for rid, entry in reversed(rows)]
        return filter_journal(entries, pod=pod, operation=operation, status=status, limit=limit)

    def clear_journal(self) -> None:
        self._journal_writer().settle()
        self._db().execute("DELETE FROM journal")

    def dump(self) -> StateData:
        with self._read() as db:
            return self._read_state(db)

    def load(self, state: StateData) -> None:
        rows = _state_rows(state)  # encoded before the write lock: a large document holds no other writer
        with self._write() as db:
            self._write_rows(db, rows)

    def mutate(self, fn: Callable[[StateData], T]) -> T:
        with self._write() as db:
            draft = self._read_state(db)
            result = fn(draft)
            self._write_state(db, draft)
            return result

    def set_standing_faults(self, faults: list[Armed]) -> None:
        """Faults from the command line: armed now, and again after every reset."""
        doc = [{"name": f.name, "params": dict(f.params)} for f in faults]
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('standing_faults', ?)", (json.dumps(doc),))
            self._arm_standing(db)

    def _arm_standing(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT value FROM meta WHERE key = 'standing_faults'").fetchone()
        for fault in json.loads(row[0]) if row else []:
            db.execute(
                "INSERT INTO armed (kind, name, remaining, params) VALUES ('fault', ?, NULL, ?)",
                (fault["name"], json.dumps(fault["params"])),
            )
        self._bump(db)

    def reset(self) -> None:
        self._journal_writer().settle()  # no entry from before the reset lands after it
        with self._write() as db:
            self._write_state(db, self._seed(db))
            db.execute("DELETE FROM armed")
            db.execute("DELETE FROM journal")
            self._arm_standing(db)

    def _read_state(self, db: sqlite3.Connection) -> StateData:
        rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
        default = json.loads(rows.get("default_account", "null"))
        state = StateData(
            default_account=None if default is None else AccountData.from_document(default),
            magic_agents=json.loads(rows.get("magic_agents", "{}")),
        )
        for pod, sid, enabled, hashes in db.execute("SELECT * FROM accounts"):
            state.accounts[(pod, sid)] = AccountData(bool(enabled), frozenset(json.loads(hashes)), {})
        for pod, sid, agent, testers in db.execute("SELECT * FROM agents"):
            state.accounts[(pod, sid)].agents[agent] = json.loads(testers)
        state.deleted_default = {tuple(r) for r in db.execute("SELECT * FROM deleted_default")}
        return state

    def _write_state(self, db: sqlite3.Connection, state: StateData) -> None:
        self._write_rows(db, _state_rows(state))

    def _write_rows(self, db: sqlite3.Connection, rows: _StateRows) -> None:
        for table in ("accounts", "agents", "deleted_default"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows.meta)
        db.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?)", rows.accounts)
        db.executemany("INSERT INTO agents VALUES (?, ?, ?, ?)", rows.agents)
        db.executemany("INSERT INTO deleted_default VALUES (?, ?, ?)", rows.deleted)
        self._bump(db)


@dataclass(frozen=True)
class _StateRows:
    """A state as the rows of its tables, encoded and ready to insert."""

    meta: list[tuple[str, str]]
    accounts: list[tuple[str, str, int, str]]
    agents: list[tuple[str, str, str, str]]
    deleted: list[tuple[str, str, str]]


def _state_rows(state: StateData) -> _StateRows:
    default = state.default_account
    return _StateRows(
        meta=[
            ("default_account", json.dumps(None if default is None else default.to_document())),
            ("magic_agents", json.dumps(state.magic_agents)),
        ],
        accounts=[
            (pod, sid, int(acc.rcs_enabled), json.dumps(sorted(acc.key_hashes)))
            for (pod, sid), acc in state.accounts.items()
        ],
        agents=[
            (pod, sid, agent, json.dumps(testers))
            for (pod, sid), acc in state.accounts.items()
            for agent, testers in acc.agents.items()
        ],
        deleted=sorted(state.deleted_default),
    )


def _armed_from_row(row: tuple[Any, ...]) -> Armed:
    rid, kind, name, remaining, pod, sid, operation, agent, params = row
    return Armed(rid, kind, name, remaining, pod, sid, operation, agent, json.loads(params))
