"""64 concurrent DELETEs of one agent through the whole in-process app (API callable, engine, store),
on both stores: exactly one `agent_deleted`. Over HTTP with every worker: tests/server/test_soak.py."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from mock_server.core import MemoryStore, SpecIndex, SqliteStore, StateData, Store, default_seed_document
from mock_server.core import state_validator as _state_validator
from mock_server.web import create_app

SPEC = SpecIndex.load()
SEED = StateData.from_document(default_seed_document(SPEC), _state_validator(SPEC))
HEADERS = {"api-key": "k", "Content-Type": "application/json"}


def _race(store: Store, path: str, threads: int = 64) -> Counter[str]:
    app = create_app(store, spec=SPEC)
    barrier = threading.Barrier(threads, timeout=30)
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def delete() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.delete(path, headers=HEADERS)
        with lock:
            seen[response.headers.get("X-Mock-Example") or str(response.status_code)] += 1

    workers = [threading.Thread(target=delete) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    return seen


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("path", ["/in/v1/RACE/rcs/agent/48400", "/na/v1/RACE/rcs/agent/48900"])
def test_delete_agent__64_threads_through_the_app_delete_it_exactly_once(kind: str, path: str, tmp_path: Path) -> None:
    store: Store = MemoryStore(SEED) if kind == "memory" else SqliteStore(tmp_path / "s.sqlite3", seed=SEED)
    try:
        assert _race(store, path) == {"agent_deleted": 1, "agent_not_found": 63}
        entries = store.journal(pod=None, operation="deleteAgent", status=None, limit=1_000)
        assert Counter(e["example"] for e in entries) == {"agent_deleted": 1, "agent_not_found": 63}
    finally:
        if isinstance(store, SqliteStore):
            store.close()
