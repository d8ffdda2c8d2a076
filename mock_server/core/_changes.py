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
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from ._store import StoreUnavailable

__all__ = ["ChangeCounter", "NoCounter"]

_SIZE = 8
# Waits between tries for the writers' turn: a transaction holds it for tens of µs, so the first
# tries come soon; then less often, up to a millisecond, as SQLite's busy handler does.
_FIRST_WAIT_S = 0.00005
_LONGEST_WAIT_S = 0.001


class ChangeCounter:
    """The store's change counter: `read()` for readers, `writing()` around each transaction.

    Open until garbage-collected: a store may be closed and used again, as its connections are."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._lock = threading.Lock()
        self._owner: int | None = None  # the thread inside `writing()`
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(self._fd).st_size < _SIZE:  # new; a larger or concurrent one is never cut
                os.ftruncate(self._fd, _SIZE)
            mapped = mmap.mmap(self._fd, _SIZE)
        except BaseException:
            os.close(self._fd)
            raise
        self._value = memoryview(mapped).cast("Q")
        self._release = weakref.finalize(self, _release, self._value, mapped, self._fd)

    def read(self) -> int:
        return self._value[0]

    @contextmanager
    def writing(self) -> Iterator[int]:
        """Odd for the whole transaction, whatever it raises; even after it. The turn is waited
        for at most `timeout` in all (then `StoreUnavailable`: 503, nothing written). Yields the
        value the counter will have when this turn ends: no other writer can move it before."""
        if self._owner == threading.get_ident():  # flock would let the same process in twice
            raise RuntimeError("a write of the store inside another write of it, on one thread")
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            raise self._busy()
        try:
            self._owner = threading.get_ident()
            try:
                self._take_turn(deadline)
                self._value[0] |= 1
                try:
                    yield self._value[0] + 1
                finally:
                    self._value[0] += 1
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)  # also after an interrupt mid-wait: never kept
        finally:
            self._owner = None
            self._lock.release()

    def _take_turn(self, deadline: float) -> None:
        wait = _FIRST_WAIT_S
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise self._busy() from None
                time.sleep(wait)
                wait = min(2 * wait, _LONGEST_WAIT_S)

    def _busy(self) -> StoreUnavailable:
        return StoreUnavailable(f"SQLite store: another writer held it for {self.timeout:g} s")

    def close(self) -> None:
        """In a forked child, whose inherited descriptor shares the parent's flock: closing it
        lets go of nothing the parent holds. A second call does nothing."""
        self._release()


def _release(value: memoryview, mapped: mmap.mmap, fd: int) -> None:
    value.release()
    mapped.close()
    os.close(fd)


class NoCounter:
    """In a forked child that could not open the counter again (a descriptor limit, the file's
    folder gone): readers always ask SQLite, and writes are refused, since the inherited flock
    would not keep this process's writers apart from its parent's."""

    def __init__(self, why: OSError) -> None:
        self.why = why

    def read(self) -> int:
        return 1  # odd: always ask

    @contextmanager
    def writing(self) -> Iterator[int]:
        raise StoreUnavailable(f"SQLite store: its change counter could not be opened in this process: {self.why}")
        yield  # pragma: no cover - a generator, for contextmanager

    def close(self) -> None:
        pass
