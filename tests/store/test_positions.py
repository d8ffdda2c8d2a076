"""Store.next_position: replay's place in a cassette, one count per key, atomic across threads and
processes, cleared by reset."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mock_server.core import (
    MemoryStore,
    SpecIndex,
    SqliteStore,
    StateData,
    Store,
    default_seed_document,
    state_validator,
)


@pytest.fixture(scope="module")
def seed() -> StateData:
    spec = SpecIndex.load()
    return StateData.from_document(default_seed_document(spec), state_validator(spec))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, seed: StateData) -> Any:
    made: Store = MemoryStore(seed) if request.param == "memory" else SqliteStore(tmp_path / "s.sqlite3", seed=seed)
    yield made
    made.close()


def test_next_position__counts_per_key_from_zero(store: Store) -> None:
    assert [store.next_position("a") for _ in range(3)] == [0, 1, 2]
    assert store.next_position("b") == 0
    assert store.next_position("a") == 3


def test_next_position__reset_starts_every_key_over(store: Store) -> None:
    store.next_position("a")
    store.next_position("a")
    store.reset()
    assert store.next_position("a") == 0


def test_next_position__64_threads_never_get_the_same_number(store: Store) -> None:
    barrier = threading.Barrier(64, timeout=30)

    def take(_i: int) -> int:
        barrier.wait()
        return store.next_position("k")

    with ThreadPoolExecutor(max_workers=64) as pool:
        got = list(pool.map(take, range(64)))
    assert sorted(got) == list(range(64))


def _take_many(path: str, count: int, barrier: Any, out: Any) -> None:
    store = SqliteStore(path)
    try:
        barrier.wait(60)
        out.put([store.next_position("shared") for _ in range(count)])
    finally:
        store.close()


def test_next_position__four_processes_share_one_count(tmp_path: Path, seed: StateData) -> None:
    path = tmp_path / "shared.sqlite3"
    SqliteStore(path, seed=seed).close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_take_many, args=(str(path), 50, barrier, out)) for _ in range(4)]
    for proc in procs:
        proc.start()
    got = [n for _ in procs for n in out.get(timeout=90)]
    for proc in procs:
        proc.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert sorted(got) == list(range(200))
