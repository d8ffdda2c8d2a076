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

__all__ = ["SLOTS", "SharedFile"]

SLOTS = 256
_U64 = struct.Struct("<Q")
_PAIR = struct.Struct("<QQ")
_HEADER = 16  # the state version, 8 bytes kept free
_SIZE = _HEADER + SLOTS * _PAIR.size


class SharedFile:
    """Opened once per store; the mapping is MAP_SHARED, so forked children share it too. It holds
    no descriptor open: the mapping closes when the store is collected."""

    def __init__(self, db_path: str) -> None:
        self.path = db_path + ".shared"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)

    # -- the state version -------------------------------------------------------------

    def version(self) -> int:
        return int(_U64.unpack_from(self._map, 0)[0])

    def bump_version(self) -> None:
        """Called after a commit. Under a file lock: never lost, never goes back, so a worker that
        read state before a commit always sees a different version after it."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX, _U64.size, 0)
            _U64.pack_into(self._map, 0, self.version() + 1)
        finally:
            os.close(fd)  # and with it the lock

    # -- the journal writers' slots ----------------------------------------------------------

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
