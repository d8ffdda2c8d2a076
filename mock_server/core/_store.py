"""The store interface, and the in-memory store used in-process.

The engine asks the store only what one request needs. Everything the control plane
changes (magic numbers, armed scenarios and faults, the any-SID template) comes in one
`Control` snapshot. A request begins with `control()`: that is where a store shared by
several processes looks for what the others committed, once per request, so the reads
that follow it in the same thread are at least that new.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from ._spec import encode_json
from ._state import AccountData, StateData

__all__ = [
    "DEFAULT_JOURNAL_LIMIT",
    "AccountInfo",
    "Armed",
    "ArmedKind",
    "Control",
    "MemoryStore",
    "StaleRead",
    "Store",
    "StoreUnavailable",
    "filter_journal",
    "journal_entry",
    "standing_armed",
    "template_agent",
    "unlisted_account",
]

T = TypeVar("T")
ArmedKind = Literal["scenario", "fault"]
DEFAULT_JOURNAL_LIMIT = 1000


class StoreUnavailable(Exception):
    """The store cannot be reached now (a Redis server down or too slow, a SQLite file another
    writer held past the busy timeout): the request is answered 503 `MOCK503`, nothing was
    changed by halves, and the next request tries again. The message names the store and why,
    never a password or a path."""


class StaleRead(Exception):
    """A store that lets a request decide on what it kept (no round trip first) found, when the
    decision was to be written (the journal entry, a delete, a consume), that the state had moved
    on since: nothing was written, and the engine decides again on a fresh read."""


@dataclass(frozen=True, slots=True)
class AccountInfo:
    sid: str
    explicit: bool
    rcs_enabled: bool
    key_hashes: frozenset[str]


@dataclass(frozen=True)
class Armed:
    """A scenario or fault armed through the control plane, for the next N matches."""

    id: int
    kind: ArmedKind
    name: str
    remaining: int | None
    pod: str | None = None
    sid: str | None = None
    operation: str | None = None
    agent_number: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, pod: str, sid: str | None, operation_id: str, canonical: str, agent: str | None) -> bool:
        return (
            (self.pod is None or self.pod == pod)
            and (self.sid is None or self.sid == sid)
            and (self.operation is None or self.operation in (operation_id, canonical))
            and (self.agent_number is None or self.agent_number == agent)
        )

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            self.kind: self.name,
            "remaining": self.remaining,
            "match": {
                k: v
                for k, v in (
                    ("pod", self.pod),
                    ("sid", self.sid),
                    ("operation", self.operation),
                    ("agent_number", self.agent_number),
                )
                if v is not None
            },
        }
        if self.params:
            doc["params"] = dict(self.params)
        return doc


@dataclass(frozen=True)
class Control:
    generation: int
    magic_agents: Mapping[str, str]
    default_account: AccountData | None
    scenarios: tuple[Armed, ...] = ()
    faults: tuple[Armed, ...] = ()


class Store(Protocol):
    """What the engine, the control plane and the command line ask of a store; nothing else.

    A new store (Redis, say) is one new file implementing this; `tests/store/test_store.py` runs
    its contract over every store."""

    kind: str

    def control(self, *, optimistic: bool = False) -> Control:
        """The snapshot a request starts from; the reads after it in this thread are at least as new.

        `optimistic` (the engine asks for it when it journals the request): a store may answer from
        what it kept without asking whether it is current, provided that this thread's next
        `delete_agent`, `consume` and `record(..., checked=True)` write nothing and raise
        `StaleRead` when the state has moved on since. MemoryStore and SqliteStore ignore it."""
        ...

    def account(self, pod: str, sid: str) -> AccountInfo | None:
        """A listed account, else the template standing for every unlisted SID, else None."""
        ...

    def account_for_key(self, pod: str, key_hash: str) -> str | None:
        """The first listed SID (in order) whose keys include this hash: the SID-less path."""
        ...

    def testers(self, pod: str, sid: str, agent: str) -> list[dict[str, Any]] | None:
        """A copy the caller may change; None when the agent is unknown (or deleted) there."""
        ...

    def testers_body(self, pod: str, sid: str, agent: str) -> bytes | None:
        """The testers as the 200 body (encode_json), or None where `testers` gives None."""
        ...

    def delete_agent(self, pod: str, sid: str, agent: str) -> bool:
        """True for exactly one of any number of concurrent deletes, in any process."""
        ...

    def consume(self, armed: Armed) -> bool:
        """Takes one use of an armed item (atomically); False when it is used up or disarmed."""
        ...

    def arm(self, armed: Armed) -> Armed: ...
    def disarm(self, kind: ArmedKind, armed_id: int | None) -> int: ...
    def set_standing_faults(self, faults: Sequence[Armed]) -> None:
        """Faults of the command line: armed now, and again after every reset. Meant to be called
        once, before serving (the CLI does): a second call arms its faults beside the first's."""
        ...

    def next_position(self, key: str) -> int:
        """How many times `key` was asked for before (0 the first time), counted atomically across
        processes: two callers never get the same number. Replay's place in a cassette; reset clears it."""
        ...

    def record(self, entry: dict[str, Any], *, checked: bool = False) -> None:
        """Journals `entry` (JSON-able, no longer changed by the caller) before the answer is sent:
        the next journal read, in any process, has it. `checked`: the end of an optimistic request
        (see `control`), which may raise `StaleRead` instead."""
        ...

    def journal(
        self, *, pod: str | None, operation: str | None, status: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first; at most the store's journal limit, then filtered."""
        ...

    def clear_journal(self) -> None: ...
    def dump(self) -> StateData: ...
    def load(self, state: StateData) -> None: ...
    def mutate(self, fn: Callable[[StateData], T]) -> T:
        """`fn` changes a draft of the whole state, applied atomically unless it raises."""
        ...

    def is_initialized(self) -> bool:
        """Whether the store holds a seed already (a resumed `--state` file)."""
        ...

    def set_seed(self, seed: StateData) -> None:
        """What `reset` goes back to; changes nothing now."""
        ...

    def reset(self) -> None:
        """Back to the seed: standing faults only, an empty journal."""
        ...

    def describe(self) -> dict[str, Any]:
        """What health says of the store beside its kind (a file, a server, the replicas seen)."""
        ...

    def close(self) -> None: ...


def template_agent(default: AccountData | None, agent: str) -> list[dict[str, Any]] | None:
    """The any-SID rule, for every store: an unlisted SID has the template's agents, each until
    it is deleted for that SID (a tombstone); only an agent the template has can be deleted so."""
    return None if default is None else default.agents.get(agent)


def unlisted_account(sid: str, default: AccountData | None) -> AccountInfo | None:
    """What an unlisted SID is, for every store: the default account under that SID, or none."""
    return None if default is None else AccountInfo(sid, False, default.rcs_enabled, default.key_hashes)


def standing_armed(faults: Sequence[Armed]) -> list[Armed]:
    """Standing faults as every store keeps them: unlimited, unmatched, with their params."""
    return [Armed(0, "fault", f.name, None, params=dict(f.params)) for f in faults]


def journal_entry(
    time: str,
    pod: str,
    method: str,
    path: str,
    operation: str | None,
    canonical: str | None,
    sid: str | None,
    agent_number: str | None,
    api_key: str | None,
    status: int,
    example: str | None,
    source: str,
) -> dict[str, Any]:
    """The journal's one entry format, whoever answered (the engine; the proxy adds its own keys
    after these): what `filter_journal`, the dashboard and `GET /__mock/journal` read."""
    return {
        "time": time,
        "pod": pod,
        "method": method,
        "path": path,
        "operation": operation,
        "canonical": canonical,
        "sid": sid,
        "agent_number": agent_number,
        "api_key": api_key,  # a fingerprint (`key_fingerprint`), never the key
        "status": status,
        "example": example,
        "source": source,
    }


def filter_journal(
    entries: list[dict[str, Any]],
    *,
    pod: str | None,
    operation: str | None,
    status: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first."""
    out = []
    for entry in reversed(entries):
        if pod is not None and entry.get("pod") != pod:
            continue
        if operation is not None and operation not in (entry.get("operation"), entry.get("canonical")):
            continue
        if status is not None and entry.get("status") != status:
            continue
        out.append(entry)
        if len(out) >= limit:
            break
    return out


class MemoryStore:
    """One process, one lock: the store for in-process tests and `create_app()` defaults."""

    kind = "memory"

    def __init__(self, seed: StateData | None = None, journal_limit: int = DEFAULT_JOURNAL_LIMIT) -> None:
        self._lock = threading.RLock()
        self._seeded = seed is not None
        self._seed = seed.copy() if seed is not None else StateData()
        self._state = self._seed.copy()
        self._armed: dict[int, Armed] = {}
        self._standing: list[Armed] = []
        self._ids = itertools.count(1)
        self._journal: deque[dict[str, Any]] = deque(maxlen=journal_limit)
        self._journal_ids = itertools.count(1)
        self._generation = 0
        self._control: Control | None = None
        self._positions: dict[str, int] = {}
        # Encoded testers bodies, under the lock and dropped with every change (`_changed`, a
        # delete): never older than the state. 4,096 at most, then started over (a fuzzer's SIDs).
        self._bodies: dict[tuple[str, str, str], bytes | None] = {}

    def _changed(self) -> None:
        self._generation += 1
        self._control = None
        self._bodies.clear()

    def control(self, *, optimistic: bool = False) -> Control:
        with self._lock:
            if self._control is None:
                armed = sorted(self._armed.values(), key=lambda a: a.id)
                self._control = Control(
                    generation=self._generation,
                    magic_agents=dict(self._state.magic_agents),
                    default_account=self._state.default_account,
                    scenarios=tuple(a for a in armed if a.kind == "scenario"),
                    faults=tuple(a for a in armed if a.kind == "fault"),
                )
            return self._control

    def account(self, pod: str, sid: str) -> AccountInfo | None:
        with self._lock:
            acc = self._state.accounts.get((pod, sid))
            if acc is not None:
                return AccountInfo(sid, True, acc.rcs_enabled, acc.key_hashes)
            return unlisted_account(sid, self._state.default_account)

    def account_for_key(self, pod: str, key_hash: str) -> str | None:
        with self._lock:
            for (p, sid), acc in sorted(self._state.accounts.items()):
                if p == pod and key_hash in acc.key_hashes:
                    return sid
            return None

    def testers(self, pod: str, sid: str, agent: str) -> list[dict[str, Any]] | None:
        with self._lock:
            acc = self._state.accounts.get((pod, sid))
            if acc is not None:
                found = acc.agents.get(agent)
            elif (pod, sid, agent) in self._state.deleted_default:
                found = None
            else:
                found = template_agent(self._state.default_account, agent)
            return None if found is None else [dict(t) for t in found]

    def testers_body(self, pod: str, sid: str, agent: str) -> bytes | None:
        with self._lock:
            key = (pod, sid, agent)
            if key in self._bodies:
                return self._bodies[key]
            found = self.testers(pod, sid, agent)
            body = None if found is None else encode_json(found)
            if len(self._bodies) >= 4096:
                self._bodies.clear()
            self._bodies[key] = body
            return body

    def delete_agent(self, pod: str, sid: str, agent: str) -> bool:
        with self._lock:
            self._bodies.pop((pod, sid, agent), None)
            acc = self._state.accounts.get((pod, sid))
            if acc is not None:
                return acc.agents.pop(agent, None) is not None
            key = (pod, sid, agent)
            if template_agent(self._state.default_account, agent) is None or key in self._state.deleted_default:
                return False
            self._state.deleted_default.add(key)
            return True

    def consume(self, armed: Armed) -> bool:
        with self._lock:
            current = self._armed.get(armed.id)
            if current is None:
                return False
            if current.remaining is not None:
                if current.remaining <= 1:
                    del self._armed[armed.id]
                else:
                    self._armed[armed.id] = replace(current, remaining=current.remaining - 1)
                self._changed()
            return True

    def arm(self, armed: Armed) -> Armed:
        with self._lock:
            stored = replace(armed, id=next(self._ids), params=dict(armed.params))
            self._armed[stored.id] = stored
            self._changed()
            return stored

    def disarm(self, kind: ArmedKind, armed_id: int | None) -> int:
        with self._lock:
            ids = [i for i, a in self._armed.items() if a.kind == kind and armed_id in (None, i)]
            for i in ids:
                del self._armed[i]
            if ids:
                self._changed()
            return len(ids)

    def set_standing_faults(self, faults: Sequence[Armed]) -> None:
        with self._lock:
            self._standing = standing_armed(faults)
            self._arm_standing()

    def _arm_standing(self) -> None:
        for fault in self._standing:
            self.arm(fault)
        self._changed()

    def next_position(self, key: str) -> int:
        with self._lock:
            position = self._positions.get(key, 0)
            self._positions[key] = position + 1
            return position

    def record(self, entry: dict[str, Any], *, checked: bool = False) -> None:
        with self._lock:
            self._journal.append({**entry, "id": next(self._journal_ids)})

    def journal(
        self, *, pod: str | None, operation: str | None, status: int | None, limit: int
    ) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._journal)
        found = filter_journal(entries, pod=pod, operation=operation, status=status, limit=limit)
        return [dict(e) for e in found]

    def clear_journal(self) -> None:
        with self._lock:
            self._journal.clear()

    def dump(self) -> StateData:
        with self._lock:
            return self._state.copy()

    def load(self, state: StateData) -> None:
        with self._lock:
            self._state = state.copy()
            self._changed()

    def mutate(self, fn: Callable[[StateData], T]) -> T:
        with self._lock:
            draft = self._state.copy()
            result = fn(draft)
            self._state = draft
            self._changed()
            return result

    def is_initialized(self) -> bool:
        return self._seeded

    def set_seed(self, seed: StateData) -> None:
        with self._lock:
            self._seed = seed.copy()
            self._seeded = True

    def reset(self) -> None:
        with self._lock:
            self._state = self._seed.copy()
            self._armed.clear()
            self._journal.clear()
            self._positions.clear()
            self._arm_standing()

    def describe(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Nothing to let go of: the state goes with the object."""
