"""Whether any process committed to the SQLite store since this one last looked, for the price
of reading 8 bytes of shared memory.

`PRAGMA data_version` answers the same question, but each ask is a read transaction: a lock
and an unlock of the `-shm` file and a stat of the database (three system calls) and a
statement, 12.7 µs of a 39 µs GET in a loop of whole requests on this machine, where the
same GET with the counter below costs 26 µs (ARCHITECTURE.md, "Choices").

The counter lives in `<db>.changes`, mapped by every process that opens the store. Writers
take turns on it (flock, and a lock for the threads of one process) around their whole
transaction: the counter is made odd before the transaction begins and even once it has
committed. A reader that finds it even and where it saw it last knows that no transaction
began since, so what it read then is current; one that finds it odd or moved asks SQLite
(`PRAGMA data_version`). A writer killed mid-transaction leaves it odd, so readers keep asking
SQLite until the next writer makes it even again: a crash costs speed, never a stale answer.

The counter only ever grows (writers take turns), so "where it was" means "no writer since".
An aligned 8-byte load or store is one instruction on the machines CPython runs on, so a
reader never sees half of a write.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ChangeCounter"]

_SIZE = 8
# Waits between tries for the writers' turn: a transaction holds it for tens of µs, so the first
# tries come soon; then less often, up to a millisecond, as SQLite's busy handler does.
_FIRST_WAIT_S = 0.00005
_LONGEST_WAIT_S = 0.001


class ChangeCounter:
    """The store's change counter: `read()` for readers, `writing()` around each transaction."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < _SIZE:  # new; a larger or concurrent one is never cut
            os.ftruncate(self._fd, _SIZE)
        self._map = mmap.mmap(self._fd, _SIZE)
        self._value = memoryview(self._map).cast("Q")

    def read(self) -> int:
        return self._value[0]

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Odd for the whole transaction, whatever it raises; even after it."""
        with self._lock:
            self._take_turn()
            try:
                self._value[0] |= 1
                try:
                    yield
                finally:
                    self._value[0] += 1
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _take_turn(self) -> None:
        """flock, waiting at most `timeout` (SQLite's busy timeout), as BEGIN IMMEDIATE would."""
        deadline = time.monotonic() + self.timeout
        wait = _FIRST_WAIT_S
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{self.path}: another writer held the store for {self.timeout} s") from None
                time.sleep(wait)
                wait = min(2 * wait, _LONGEST_WAIT_S)

    def close(self) -> None:
        """Also in a forked child, whose inherited descriptor shares the parent's flock (closing
        it lets go of nothing the parent holds). A second call does nothing."""
        if self._fd < 0:
            return
        self._value.release()
        self._map.close()
        os.close(self._fd)
        self._fd = -1
