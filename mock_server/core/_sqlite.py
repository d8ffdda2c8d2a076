"""The store shared by every worker process of the server: one SQLite file in WAL mode.

SQLite gives what the mock promises across processes without a server of its own:
a delete seen by every later request whichever worker serves it (a worker keeps what it
read until another connection commits: the change counter beside the file says when one
may have, `_changes.py`, and then `PRAGMA data_version` whether one did), exactly one
success for concurrent deletes (a row delete or a tombstone insert in one `BEGIN IMMEDIATE`
transaction), and a `--state` file that a kill -9 leaves at the old or the new state, never
half-written. The journal is beside it (`_journal.py`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from ._changes import ChangeCounter, NoCounter
from ._journal import FileJournal
from ._spec import encode_json
from ._state import AccountData, StateData
from ._store import (
    DEFAULT_JOURNAL_LIMIT,
    AccountInfo,
    Armed,
    ArmedKind,
    Control,
    StoreUnavailable,
    filter_journal,
    standing_armed,
    template_agent,
    unlisted_account,
)

__all__ = ["SqliteStore"]

T = TypeVar("T")

_BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another (SQLite's busy_timeout, and the counter's)
_CACHE_LIMIT = 4096  # look-ups kept between two state changes; more, and the cache starts over
_MISSING: Any = object()
_CONTROL = ("control",)

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
CREATE TABLE IF NOT EXISTS replay_positions (key TEXT PRIMARY KEY, next INTEGER NOT NULL);
DROP TABLE IF EXISTS journal_writers;  -- the batched journal's, before the journal left the file
DROP TABLE IF EXISTS journal;
"""

_STORES: weakref.WeakSet[SqliteStore] = weakref.WeakSet()
# SQLite's own "database is locked" (SQLITE_BUSY and its extended codes): a holder outside the
# counter's turn (a sqlite3 shell on a --state file, a checkpoint when another connection closes)
# kept the file past the busy timeout. SQLITE_LOCKED is not among them: without a shared cache it
# is a conflict inside one connection, a bug, and stays a 500.


@contextmanager
def _busy_is_unavailable() -> Iterator[None]:
    """A locked file is the store being unavailable, as a Redis timeout is: 503, nothing written
    (the transaction rolls back), and the next request tries again. Never the 500 of a bug.
    Around every statement that can meet the lock: the transactions, and the reads a kept answer
    spares (so a GET answered from what a worker kept pays nothing for it)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
            raise
        raise StoreUnavailable(
            f"SQLite store: the state file stayed locked by another connection ({exc.sqlite_errorname})"
        ) from exc


def _after_fork() -> None:
    for store in list(_STORES):
        with contextlib.suppress(Exception):  # one store's trouble never leaves the others unreset
            store._forked()


os.register_at_fork(after_in_child=_after_fork)


class SqliteStore:
    kind = "sqlite"

    def __init__(
        self, path: str | Path, journal_limit: int = DEFAULT_JOURNAL_LIMIT, *, seed: StateData | None = None
    ) -> None:
        """Opens (or creates) the file. A `seed` fills a file that has none yet; without
        one a new file starts empty, where every request answers 401."""
        self.path = str(path)
        self.journal_limit = journal_limit
        self._local = threading.local()  # this thread's connection and the data_version it saw last
        self._epochs = itertools.count(1)
        self._reads: tuple[int, dict[tuple[str, ...], Any]] = (0, {})  # (epoch, look-ups)
        self._control: Control | None = None  # the last one read, reused while `generation` holds
        # Beside the file, for every name of it: never `<db>-journal`, SQLite's hot rollback journal.
        self._changes: ChangeCounter | NoCounter = ChangeCounter(self._beside(".changes"), _BUSY_TIMEOUT_S)
        db = self._db()
        with self._changes.writing():
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
        self._journal = FileJournal(self._beside(".journal.d"), journal_limit)
        _STORES.add(self)
        if seed is not None and not self.is_initialized():
            self.set_seed(seed)
            self.load(seed)

    # -- connections -------------------------------------------------------------

    def _beside(self, suffix: str) -> str:
        return os.path.realpath(self.path) + suffix

    def _db(self) -> sqlite3.Connection:
        """One connection per thread; a forked child starts with none (`_forked`)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # busy_timeout: a writer that meets another waits for it (BEGIN IMMEDIATE queues writers).
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            # WAL is a property of the file: set once. Asking for it again on every new connection
            # fails at once with "database is locked" while another connection reads.
            with _busy_is_unavailable():
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
            # No fsync, as for the journal beside it: a commit is in the OS's hands when it returns,
            # which is what a kill -9 leaves safe (`make soak` kills writers); an OS crash or power
            # loss may lose the newest commits of a --state file. A mock's state is a test fixture;
            # NORMAL's fsync at each WAL checkpoint cost 60 µs a delete against 37 µs and held one
            # delete in a thousand for 8 ms (ARCHITECTURE.md, "Choices").
            conn.execute("PRAGMA synchronous=OFF")
            self._local.conn = conn
            self._local.version = conn.cursor()  # kept: saves a cursor per control() that asks
            self._local.seen = None  # the data_version this thread's connection gave last
            self._local.changes = None  # the change counter when this thread last asked it
        return conn

    def _forked(self) -> None:
        """sqlite3 connections survive no fork, and the parent's journal slot and its flock on the
        change counter stay the parent's."""
        self._local = threading.local()
        self._invalidate()
        self._journal.forget()
        inherited = self._changes
        try:
            self._changes = ChangeCounter(self._beside(".changes"), _BUSY_TIMEOUT_S)
        except OSError as exc:
            self._changes = NoCounter(exc)
        finally:
            inherited.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Every write of the store: inside the change counter's turn, so readers hear of it."""
        with _busy_is_unavailable(), self._changes.writing() as after:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a failed COMMIT may leave it open: never keep the lock
                    db.execute("ROLLBACK")
                raise
            finally:
                self._invalidate()  # data_version tells only of other connections' commits
                # Nothing kept predates this turn, and no other writer commits before it ends: at
                # `after`, this thread's next control() has nothing to ask SQLite (a DELETE's
                # successor skips PRAGMA data_version). A commit after this turn moves the counter on.
                self._local.changes = after

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One snapshot across tables (WAL readers never block the writer)."""
        with _busy_is_unavailable():
            db = self._db()
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    @staticmethod
    def _bump(db: sqlite3.Connection) -> None:
        """Whatever `Control` holds changed: the next control() reads it again."""
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def describe(self) -> dict[str, Any]:
        """Nothing beside the kind: health never names a file on the server's disk."""
        return {}

    def close(self) -> None:
        """This thread's connection and the journal slot; both open again if the store is used
        again. The change counter stays mapped until the store is collected."""
        self._journal.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- set-up --------------------------------------------------------------------

    @_busy_is_unavailable()
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

    # What this process read is kept under an epoch, which moves on when this thread's connection
    # reports another connection's commit (PRAGMA data_version, asked in control() whenever the
    # change counter moved or a writer is inside) and after every commit of this store's own. A
    # look-up is kept only under the epoch its read began in, so nothing read before a change is
    # ever kept after it.

    def _invalidate(self) -> None:
        self._reads = (next(self._epochs), {})

    def _keep(self, epoch: int, key: tuple[str, ...], value: Any) -> None:
        reads = self._reads
        if reads[0] != epoch:
            return
        if len(reads[1]) >= _CACHE_LIMIT:
            self._invalidate()
            return
        reads[1][key] = value

    def control(self, *, optimistic: bool = False) -> Control:
        local = self._local
        if getattr(local, "conn", None) is None:
            self._db()
        changes = self._changes.read()  # before SQLite is asked: a writer after this moves it
        if changes & 1 or changes != local.changes:  # a writer is inside, or one began since
            self._ask_version(local)
            local.changes = changes  # only once SQLite answered: a failed ask is asked again
        return self._kept_control()

    @_busy_is_unavailable()
    def _ask_version(self, local: threading.local) -> None:
        local.version.execute("PRAGMA data_version")
        version = local.version.fetchone()[0]
        if version != local.seen:
            local.seen = version
            self._invalidate()

    def _kept_control(self) -> Control:
        epoch, reads = self._reads
        control: Control | None = reads.get(_CONTROL)
        if control is None:
            control = self._read_control(self._db())
            self._keep(epoch, _CONTROL, control)
        return control

    @_busy_is_unavailable()
    def _read_control(self, db: sqlite3.Connection) -> Control:
        """Read again only when `generation` moved: another worker's DELETE changes no Control."""
        generation = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        kept = self._control
        if kept is not None and kept.generation == generation:
            return kept
        # Without a snapshot: `armed` read after `meta` is at least as new as the generation kept.
        rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
        armed = [_armed_from_row(r) for r in db.execute("SELECT * FROM armed ORDER BY id")]
        default = json.loads(rows.get("default_account", "null"))
        control = Control(
            generation=int(rows["generation"]),
            magic_agents=json.loads(rows.get("magic_agents", "{}")),
            default_account=None if default is None else AccountData.from_document(default),
            scenarios=tuple(a for a in armed if a.kind == "scenario"),
            faults=tuple(a for a in armed if a.kind == "fault"),
        )
        self._control = control
        return control

    def account(self, pod: str, sid: str) -> AccountInfo | None:
        epoch, reads = self._reads
        kept = reads.get(("account", pod, sid), _MISSING)
        if kept is _MISSING:
            kept = self._read_account(pod, sid)
            self._keep(epoch, ("account", pod, sid), kept)
        return kept  # type: ignore[no-any-return]

    @_busy_is_unavailable()
    def _read_account(self, pod: str, sid: str) -> AccountInfo | None:
        row = (
            self._db()
            .execute("SELECT rcs_enabled, key_hashes FROM accounts WHERE pod = ? AND sid = ?", (pod, sid))
            .fetchone()
        )
        if row is not None:
            return AccountInfo(sid, True, bool(row[0]), frozenset(json.loads(row[1])))
        return unlisted_account(sid, self._kept_control().default_account)

    def account_for_key(self, pod: str, key_hash: str) -> str | None:
        """Kept like the other look-ups, and searched by SQLite itself: one Python parse per
        listed account made a /wsgw request with 20,000 accounts take 44 ms."""
        epoch, reads = self._reads
        kept = reads.get(("key", pod, key_hash), _MISSING)
        if kept is _MISSING:
            kept = self._read_key(pod, key_hash)
            self._keep(epoch, ("key", pod, key_hash), kept)
        return kept  # type: ignore[no-any-return]

    @_busy_is_unavailable()
    def _read_key(self, pod: str, key_hash: str) -> str | None:
        row = (
            self._db()
            .execute(
                "SELECT sid FROM accounts, json_each(accounts.key_hashes) AS k"
                " WHERE accounts.pod = ? AND k.value = ? ORDER BY sid LIMIT 1",
                (pod, key_hash),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def testers(self, pod: str, sid: str, agent: str) -> list[dict[str, Any]] | None:
        """Read each time (a copy by construction): the hot path asks for `testers_body`."""
        return self._read_testers(pod, sid, agent)

    def testers_body(self, pod: str, sid: str, agent: str) -> bytes | None:
        epoch, reads = self._reads
        kept = reads.get(("body", pod, sid, agent), _MISSING)
        if kept is _MISSING:
            found = self._read_testers(pod, sid, agent)
            kept = None if found is None else encode_json(found)
            self._keep(epoch, ("body", pod, sid, agent), kept)
        return kept  # type: ignore[no-any-return]

    @_busy_is_unavailable()
    def _read_testers(self, pod: str, sid: str, agent: str) -> list[dict[str, Any]] | None:
        db = self._db()
        listed = db.execute("SELECT 1 FROM accounts WHERE pod = ? AND sid = ?", (pod, sid)).fetchone() is not None
        if listed:
            row = db.execute(
                "SELECT testers FROM agents WHERE pod = ? AND sid = ? AND agent_number = ?",
                (pod, sid, agent),
            ).fetchone()
            return None if row is None else list(json.loads(row[0]))
        found = template_agent(self._kept_control().default_account, agent)
        if (
            found is None
            or db.execute(
                "SELECT 1 FROM deleted_default WHERE pod = ? AND sid = ? AND agent_number = ?",
                (pod, sid, agent),
            ).fetchone()
        ):
            return None
        return [dict(t) for t in found]

    def delete_agent(self, pod: str, sid: str, agent: str) -> bool:
        # Listed or not, and the template, are read inside the transaction: one success for
        # concurrent deletes, whatever the control plane changes meanwhile.
        with self._write() as db:
            if db.execute("SELECT 1 FROM accounts WHERE pod = ? AND sid = ?", (pod, sid)).fetchone():
                cur = db.execute(
                    "DELETE FROM agents WHERE pod = ? AND sid = ? AND agent_number = ?",
                    (pod, sid, agent),
                )
                return cur.rowcount == 1
            if template_agent(self._read_control(db).default_account, agent) is None:
                return False
            cur = db.execute("INSERT OR IGNORE INTO deleted_default VALUES (?, ?, ?)", (pod, sid, agent))
            return cur.rowcount == 1

    def consume(self, armed: Armed) -> bool:
        if armed.remaining is None:  # still armed? a snapshot may predate a disarm
            with _busy_is_unavailable():
                return self._db().execute("SELECT 1 FROM armed WHERE id = ?", (armed.id,)).fetchone() is not None
        with self._write() as db:
            cur = db.execute("UPDATE armed SET remaining = remaining - 1 WHERE id = ? AND remaining > 0", (armed.id,))
            if cur.rowcount != 1:
                return False
            db.execute("DELETE FROM armed WHERE id = ? AND remaining <= 0", (armed.id,))
            self._bump(db)
            return True

    def next_position(self, key: str) -> int:
        """One UPSERT ... RETURNING in one transaction: the row's write lock makes the count atomic."""
        with self._write() as db:
            row = db.execute(
                "INSERT INTO replay_positions VALUES (?, 1)"
                " ON CONFLICT (key) DO UPDATE SET next = next + 1 RETURNING next - 1",
                (key,),
            ).fetchone()
            return int(row[0])

    def record(self, entry: dict[str, Any], *, checked: bool = False) -> None:
        self._journal.record(entry)

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
        entries = self._journal.read()
        return filter_journal(entries, pod=pod, operation=operation, status=status, limit=limit)

    def clear_journal(self) -> None:
        self._journal.clear()

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

    def set_standing_faults(self, faults: Sequence[Armed]) -> None:
        doc = [{"name": f.name, "params": dict(f.params)} for f in standing_armed(faults)]
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
        with self._write() as db:
            self._write_state(db, self._seed(db))
            db.execute("DELETE FROM armed")
            db.execute("DELETE FROM replay_positions")
            self._arm_standing(db)
            # Before the commit: every answer given on the new state lands after the clear, as
            # with MemoryStore's one lock (an answer in flight on the old state may land after it).
            self._journal.clear()

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
