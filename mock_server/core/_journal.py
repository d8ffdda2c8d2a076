"""The SQLite store's request journal: one append-only file per writer, merged on read.

Each entry is one `write()` of one line to a file opened with O_APPEND, done before the answer
leaves the worker: once it returns, every process that reads the file sees the line, so what a
client was answered is in the journal it reads next, whichever worker served either request,
with no thread, batch or settle protocol. Measured (`benchmarks/store_costs.py --alternatives`):
a line costs 8 µs, an INSERT per request into a journal database in WAL mode 27 µs with
synchronous=OFF and 48 µs with NORMAL, and one shared database would make the workers queue for
its one write lock.

A writer owns a slot, `w<N>.lock` in `<db>.journal.d/`, by holding flock() on it: the kernel
lets go when the process dies, so a new worker takes over a dead one's slot and its files, and
no process id is ever checked. A slot's entries are in `w<N>.<gen>.log` files of at most `limit`
lines each: when one is full the writer starts the next and removes the one before it, so a
slot keeps at most 2 x limit entries and its newest `limit` are always in its two newest files.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

__all__ = ["SLOTS", "FileJournal"]

SLOTS = 1024  # an entry's id is its time in ns with the slot in the low 10 bits: unique across writers
_NAME = re.compile(r"w(\d+)\.(\d+)\.log")


class FileJournal:
    """The journal files of one store in one directory. `record` claims a slot on first use;
    any process may read or clear."""

    def __init__(self, folder: str, limit: int) -> None:
        self.folder = folder
        self.limit = limit
        self._lock = threading.Lock()  # the threads of one process take turns on their slot
        self._slot: _Slot | None = None
        os.makedirs(folder, mode=0o700, exist_ok=True)

    # -- writing ---------------------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        """Appends `entry` (JSON-able); visible to every reader once this returns."""
        with self._lock:
            slot = self._slot
            if slot is None:
                slot = self._slot = _Slot(self.folder, self.limit)
            slot.append(entry)

    def forget(self) -> None:
        """In a forked child: the parent's slot is the parent's, its descriptors are not ours."""
        self._lock = threading.Lock()
        if self._slot is not None:
            self._slot.abandon()
            self._slot = None

    def close(self) -> None:
        with self._lock:
            if self._slot is not None:
                self._slot.close()
                self._slot = None

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> list[dict[str, Any]]:
        """The newest `limit` entries of every slot, oldest first, each with its `id`."""
        streams = [_entries(lines) for lines in self._newest_lines()]
        merged = list(heapq.merge(*streams, key=lambda e: int(e["id"])))
        return merged[-self.limit :]

    def _newest_lines(self) -> list[list[bytes]]:
        """Each slot's last `limit` lines. A file that is gone when opened was rotated away after
        the listing: then at least `limit` newer lines exist, so list again."""
        for _ in range(100):
            try:
                return [self._tail(files) for files in self._files().values()]
            except FileNotFoundError:
                continue
        # Never an empty journal that is not: the reader answers MOCK500 and logs why.
        raise RuntimeError("the journal files rotated away 100 times while being read")

    def _files(self) -> dict[int, list[str]]:
        """Per slot, its two newest files, older first."""
        found: dict[int, list[tuple[int, str]]] = {}
        for name in os.listdir(self.folder):
            match = _NAME.fullmatch(name)
            if match:
                found.setdefault(int(match[1]), []).append((int(match[2]), name))
        return {slot: [os.path.join(self.folder, n) for _, n in sorted(files)[-2:]] for slot, files in found.items()}

    def _tail(self, files: list[str]) -> list[bytes]:
        lines: list[bytes] = []
        for path in files:
            with open(path, "rb") as f:
                lines.extend(line for line in f.read().split(b"\n") if line)
        return lines[-self.limit :]

    def clear(self) -> None:
        """Empties every slot's files in place: a live writer's next O_APPEND write lands at the
        start of its emptied file, so nothing recorded before this call survives it."""
        for files in self._files().values():
            for path in files:
                with contextlib.suppress(FileNotFoundError):
                    os.truncate(path, 0)


def _entries(lines: list[bytes]) -> Iterator[dict[str, Any]]:
    """A line cut short (a full disk, a kill in mid-write) is skipped, not fatal."""
    for line in lines:
        try:
            at, entry = json.loads(line)
        except (ValueError, TypeError):
            continue
        if isinstance(entry, dict) and isinstance(at, int):
            yield {**entry, "id": at}


class _Slot:
    """The slot this process writes to, held by flock() on its lock file until closed."""

    def __init__(self, folder: str, limit: int) -> None:
        # orjson (the `[mock]` extra) encodes a line in 0.7 µs against json's 5.6; imported by the
        # writer only, so the core imports, and a journal is read, without the extra.
        import orjson

        self._dumps = orjson.dumps
        self.folder, self.limit = folder, limit
        self.index, self._lock_fd = self._claim()
        gens = sorted(int(m[2]) for n in os.listdir(folder) if (m := _NAME.fullmatch(n)) and int(m[1]) == self.index)
        for gen in gens[:-1]:  # a dead writer's files: its newest stays as our "file before"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(gen))
        self._gen = gens[-1] + 1 if gens else 0
        self._fds = [self._open(self._gen), self._lock_fd]  # [the file written now, the slot's lock]
        self._count = 0
        self._last = 0
        self._finalizer = weakref.finalize(self, _close_fds, self._fds)

    def _claim(self) -> tuple[int, int]:
        for index in range(SLOTS):
            fd = os.open(os.path.join(self.folder, f"w{index}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return index, fd
        raise RuntimeError(f"mock_server: all {SLOTS} journal slots of {self.folder} are held by live processes")

    def _path(self, gen: int) -> str:
        return os.path.join(self.folder, f"w{self.index}.{gen}.log")

    def _open(self, gen: int) -> int:
        return os.open(self._path(gen), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, entry: dict[str, Any]) -> None:
        # The id orders entries across writers by time; strictly increasing in each writer.
        at = max((time.time_ns() & ~(SLOTS - 1)) | self.index, self._last + SLOTS)
        self._last = at
        # The newline goes first: a line a dead writer (or a full disk) cut short ends at the next one.
        line = b"\n[%d,%b]" % (at, self._dumps(entry))  # UTF-8, compact, as json.loads reads it
        if self._count >= self.limit:
            self._rotate()
        os.write(self._fds[0], line)
        self._count += 1

    def _rotate(self) -> None:
        """The next file exists before the one before the full file goes (readers take the two
        newest they find)."""
        fd = self._open(self._gen + 1)
        os.close(self._fds[0])
        self._fds[0], self._gen, self._count = fd, self._gen + 1, 0
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(self._gen - 2))

    def abandon(self) -> None:
        """Closes the inherited descriptors; the parent's flock stays the parent's."""
        self._finalizer()

    def close(self) -> None:
        self._finalizer()


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
