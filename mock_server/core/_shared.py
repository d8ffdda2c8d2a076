"""A few counters every process of one SQLite store shares through memory: `<db>.shared`.

Reading a counter from a shared mapping costs no system call, where asking SQLite costs a
statement. Two uses: the state version, bumped after every committed state change, which lets a
worker keep what it read from SQLite until some process changes it (SqliteStore); and the journal
writers' counters (BatchedJournal). The name never ends in "-journal": SQLite would take such a
file for a hot rollback journal and refuse new connections.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SLOTS", "SharedFile"]

SLOTS = 256
_U64 = struct.Struct("<Q")
_PAIR = struct.Struct("<QQ")
_HEADER = 16  # the state version, 8 bytes kept free
_SIZE = _HEADER + SLOTS * _PAIR.size


class SharedFile:
    """One per store. The mapping is MAP_SHARED; the descriptor is kept for `writing()`'s lock and
    closed when the store is collected (a forked child opens its own)."""

    def __init__(self, db_path: str) -> None:
        self.path = os.path.realpath(db_path) + ".shared"  # one file for every name of the database
        self._threads = threading.Lock()
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(fd).st_size < _SIZE:
            os.ftruncate(fd, _SIZE)
        self._map = mmap.mmap(fd, _SIZE)
        self._fd, self._pid = fd, os.getpid()
        weakref.finalize(self, os.close, fd)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Every writer of the store queues here before SQLite's write lock.

        SQLite's own wait for a busy lock sleeps 1, 2, 5, 10... ms between tries: with two
        workers deleting at full speed that sleep was most of a DELETE's time. flock() waits in
        the kernel and wakes the next writer when the lock is released. It is per open file,
        so the threads of one process queue on a threading lock first.
        """
        with self._threads:
            if self._pid != os.getpid():
                self._open()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    # -- the state version -------------------------------------------------------------

    def version(self) -> int:
        return int(_U64.unpack_from(self._map, 0)[0])

    def bump_version(self) -> None:
        """Called after a commit, inside `writing()`: never lost, never goes back, so a worker that
        read state before a commit always sees a different version after it."""
        _U64.pack_into(self._map, 0, self.version() + 1)

    # -- the journal writers' slots ----------------------------------------------------------

    def reset_slots(self) -> None:
        self._map[_HEADER:_SIZE] = bytes(_SIZE - _HEADER)

    def slot(self, index: int) -> tuple[int, int]:
        """(entries appended, entries written) of one journal writer."""
        appended, written = _PAIR.unpack_from(self._map, _HEADER + index * _PAIR.size)
        return int(appended), int(written)

    def set_slot(self, index: int, appended: int, written: int) -> None:
        _PAIR.pack_into(self._map, _HEADER + index * _PAIR.size, appended, written)

    def set_appended(self, index: int, appended: int) -> None:
        _U64.pack_into(self._map, _HEADER + index * _PAIR.size, appended)

    def set_written(self, index: int, written: int) -> None:
        _U64.pack_into(self._map, _HEADER + index * _PAIR.size + _U64.size, written)
