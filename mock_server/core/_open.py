"""One place that turns a store URL into a store: the command line and every worker call it."""

from __future__ import annotations

from urllib.parse import urlsplit

from ._redis import SCHEMES, RedisStore
from ._sqlite import SqliteStore
from ._state import StateData
from ._store import DEFAULT_JOURNAL_LIMIT, MemoryStore, Store

__all__ = ["open_store", "sqlite_url", "store_path"]


def sqlite_url(path: str) -> str:
    """`sqlite:///` and the path as given: `sqlite:///state.db` is relative, `sqlite:////tmp/s.db`
    absolute (the SQLAlchemy convention)."""
    return "sqlite:///" + path


def store_path(url: str) -> str | None:
    """The file of a `sqlite:///PATH` URL; None for any other store."""
    return url[len("sqlite:///") :] if url.startswith("sqlite:///") else None


def open_store(
    url: str,
    *,
    journal_limit: int = DEFAULT_JOURNAL_LIMIT,
    prefix: str | None = None,
    seed: StateData | None = None,
    replica: str | None = None,
) -> Store:
    """`sqlite:///PATH`, `redis://HOST:PORT/DB[?prefix=NAME]` (rediss://, valkey:// too) or
    `memory:` (in-process only). ValueError names what is wrong with the URL; a Redis store needs
    the `[redis]` extra (ModuleNotFoundError naming it)."""
    path = store_path(url)
    if path is not None:
        if not path:
            raise ValueError("a SQLite store is sqlite:///PATH")
        if prefix is not None:
            raise ValueError("a store prefix is for a Redis store; a SQLite file holds one mock")
        store: Store = SqliteStore(path, journal_limit=journal_limit, seed=seed)
        return store
    scheme = urlsplit(url).scheme
    if scheme in SCHEMES:
        return RedisStore(url, journal_limit, prefix=prefix, seed=seed, replica=replica)
    if url in ("memory:", "memory://"):
        memory: Store = MemoryStore(seed, journal_limit=journal_limit)
        return memory
    raise ValueError(f"unknown store {url.split(':', 1)[0]!r}: give sqlite:///PATH or redis://HOST:PORT/DB")
