"""The SQLite journal, written in batches by one thread per process.

A journal INSERT per request was half of each request's cost in `make bench`, and at 64
connections the two workers queued for SQLite's single write lock. Requests now append to a list
and a thread writes the list every few milliseconds in one transaction. What the journal promised
still holds: a request whose answer a client has seen is in the journal that client reads next,
whichever worker serves either request. A reader first settles the journal: it flushes its own
process's list and waits until every other live writer has written what it had counted when the
read began. The counts live in the store's shared-memory file (`_shared.py`), one slot of two
counters per writer, so a request pays for no system call to publish its entry.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import multiprocessing.util
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ._shared import SLOTS, SharedFile

__all__ = ["JOURNAL_SCHEMA", "BatchedJournal"]

log = logging.getLogger("mock_server")

JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL, at_ns INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS journal_writers (slot INTEGER PRIMARY KEY, pid INTEGER NOT NULL, token TEXT NOT NULL);
"""

FLUSH_S = 0.005  # how long a batch gathers before it is written
_TRIM_EVERY = 64


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BatchedJournal:
    """One per store and process. Falls back to an INSERT per entry when no slot is free."""

    def __init__(self, shared: SharedFile, connect: Callable[[], sqlite3.Connection], limit: int) -> None:
        self.limit = limit
        self._connect = connect
        self._lock = threading.Lock()  # the pending list and the appended count
        self._flush_lock = threading.Lock()  # one batch at a time, in order
        self._pending: list[tuple[dict[str, Any], int]] = []
        self._appended = 0
        self._since_trim = 0
        self._wake = threading.Event()
        self._closed = False
        self.token = uuid.uuid4().hex
        self._shared = shared
        self.slot = self._claim()
        if self.slot is not None:
            threading.Thread(target=self._run, name="mock-journal", daemon=True).start()
            # The last batch is written, and the slot given back, when the process ends: atexit for
            # a plain process, multiprocessing's finalizers for a forked worker (granian's), which
            # leaves through os._exit and never runs atexit.
            atexit.register(self.close)
            self._finalizer = multiprocessing.util.Finalize(self, self.close, exitpriority=10)

    # -- writers ---------------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        """`entry` is JSON-able and no longer changed by the caller: it is encoded with its batch."""
        at_ns = time.time_ns()
        if self.slot is None:
            with self._flush_lock:
                self._write([(entry, at_ns)])
            return
        with self._lock:
            self._pending.append((entry, at_ns))
            self._appended += 1
            self._shared.set_appended(self.slot, self._appended)
            first = len(self._pending) == 1
        if first:  # the thread drains everything once woken: one wake per batch
            self._wake.set()

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
                count = self._appended
            if batch:
                try:
                    self._write(batch)
                except BaseException:
                    with self._lock:  # nothing lost: the batch goes back to the front
                        self._pending[:0] = batch
                    raise
            if self.slot is not None:
                self._shared.set_written(self.slot, count)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self.flush()
        if self.slot is not None:
            with contextlib.suppress(sqlite3.Error):  # at interpreter exit the file may be gone already
                self._connect().execute(
                    "DELETE FROM journal_writers WHERE slot = ? AND token = ?", (self.slot, self.token)
                )
            atexit.unregister(self.close)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            time.sleep(FLUSH_S)
            self._wake.clear()
            if self._closed:  # close() writes what is left itself
                return
            try:
                self.flush()
            except Exception as exc:
                log.warning("mock_server: journal batch not written yet (%s); retrying", exc)
                self._wake.set()
                time.sleep(10 * FLUSH_S)

    def _write(self, batch: list[tuple[dict[str, Any], int]]) -> None:
        db = self._connect()
        with self._shared.writing():
            self._insert(db, batch)

    def _insert(self, db: sqlite3.Connection, batch: list[tuple[dict[str, Any], int]]) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            # One statement and one json.dumps for the whole batch: executemany would hand the GIL
            # back and forth once per row with the threads that serve requests. SQLite stores each
            # entry as the minified JSON text of its object.
            db.execute(
                "INSERT INTO journal (entry, at_ns)"
                " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)",
                (json.dumps(batch),),
            )
            self._since_trim += len(batch)
            if self._since_trim >= _TRIM_EVERY:
                self._since_trim = 0
                db.execute("DELETE FROM journal WHERE id <= (SELECT MAX(id) FROM journal) - ?", (self.limit,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # -- readers ---------------------------------------------------------------------

    def settle(self, timeout: float = 5.0) -> None:
        """Every entry counted anywhere before this call is in the table when it returns.

        A writer that died meanwhile is not waited for: its unwritten entries went with it.
        """
        self.flush()
        rows = self._connect().execute("SELECT slot, pid, token FROM journal_writers").fetchall()
        deadline = time.monotonic() + timeout
        for slot, pid, token in rows:
            if token == self.token or not 0 <= slot < SLOTS:
                continue
            appended, written = self._shared.slot(slot)
            while written < appended and time.monotonic() < deadline and _alive(pid):
                time.sleep(FLUSH_S / 5)
                written = self._shared.slot(slot)[1]
            if written < appended and _alive(pid):
                log.warning("mock_server: journal writer %d (pid %d) did not catch up in %.0f s", slot, pid, timeout)

    # -- the slot --------------------------------------------------------------------------

    def _claim(self) -> int | None:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            taken = {slot for slot, pid in db.execute("SELECT slot, pid FROM journal_writers") if _alive(pid)}
            free = next((s for s in range(SLOTS) if s not in taken), None)
            if free is not None:  # counters zeroed before any reader can see the slot is ours
                self._shared.set_slot(free, 0, 0)
                db.execute("INSERT OR REPLACE INTO journal_writers VALUES (?, ?, ?)", (free, os.getpid(), self.token))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return free
