"""The store interface, and the in-memory store used in-process.

The engine asks the store only what one request needs. Everything the control plane
changes (magic numbers, armed scenarios and faults, the any-SID template) comes in one
`Control` snapshot, which a shared store may cache until its generation moves.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Mapping
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
    "Store",
    "filter_journal",
]

T = TypeVar("T")
ArmedKind = Literal["scenario", "fault"]
DEFAULT_JOURNAL_LIMIT = 1000


@dataclass(frozen=True)
class AccountInfo:
    sid: str
    explicit: bool
    rcs_enabled: bool
    key_hashes: frozenset[str]
    # The default account an unlisted SID stands for, so testers/delete_agent need not read it again.
    template: AccountData | None = field(default=None, compare=False, repr=False)


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
    kind: str

    def control(self) -> Control: ...
    def account(self, pod: str, sid: str, control: Control | None = None) -> AccountInfo | None: ...
    def account_for_key(self, pod: str, key_hash: str) -> str | None: ...
    def testers(
        self, pod: str, sid: str, agent: str, account: AccountInfo | None = None
    ) -> list[dict[str, Any]] | None: ...
    def testers_body(self, pod: str, sid: str, agent: str, account: AccountInfo | None = None) -> bytes | None:
        """The testers as the 200 body (encode_json), or None where `testers` gives None."""
        ...

    def delete_agent(self, pod: str, sid: str, agent: str, account: AccountInfo | None = None) -> bool: ...
    def consume(self, armed: Armed) -> bool: ...
    def arm(self, armed: Armed) -> Armed: ...
    def disarm(self, kind: ArmedKind, armed_id: int | None) -> int: ...
    def record(self, entry: dict[str, Any]) -> None: ...
    def journal(
        self, *, pod: str | None, operation: str | None, status: int | None, limit: int
    ) -> list[dict[str, Any]]: ...
    def clear_journal(self) -> None: ...
    def dump(self) -> StateData: ...
    def load(self, state: StateData) -> None: ...
    def mutate(self, fn: Callable[[StateData], T]) -> T: ...
    def set_seed(self, seed: StateData) -> None: ...
    def reset(self) -> None: ...


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
        self._seed = seed.copy() if seed is not None else StateData()
        self._state = self._seed.copy()
        self._armed: dict[int, Armed] = {}
        self._ids = itertools.count(1)
        self._journal: deque[dict[str, Any]] = deque(maxlen=journal_limit)
        self._journal_ids = itertools.count(1)
        self._generation = 0
        self._control: Control | None = None

    def _changed(self) -> None:
        self._generation += 1
        self._control = None

    def control(self) -> Control:
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

    def account(self, pod: str, sid: str, control: Control | None = None) -> AccountInfo | None:
        with self._lock:
            acc = self._state.accounts.get((pod, sid))
            if acc is not None:
                return AccountInfo(sid, True, acc.rcs_enabled, acc.key_hashes)
            default = self._state.default_account
            if default is None:
                return None
            return AccountInfo(sid, False, default.rcs_enabled, default.key_hashes)

    def account_for_key(self, pod: str, key_hash: str) -> str | None:
        with self._lock:
            for (p, sid), acc in sorted(self._state.accounts.items()):
                if p == pod and key_hash in acc.key_hashes:
                    return sid
            return None

    def testers(
        self, pod: str, sid: str, agent: str, account: AccountInfo | None = None
    ) -> list[dict[str, Any]] | None:
        with self._lock:  # a dict look-up costs less than trusting a hint: `account` is not needed
            acc = self._state.accounts.get((pod, sid))
            if acc is not None:
                found = acc.agents.get(agent)
            elif self._state.default_account is None or (pod, sid, agent) in self._state.deleted_default:
                found = None
            else:
                found = self._state.default_account.agents.get(agent)
            return None if found is None else [dict(t) for t in found]

    def testers_body(self, pod: str, sid: str, agent: str, account: AccountInfo | None = None) -> bytes | None:
        found = self.testers(pod, sid, agent, account)
        return None if found is None else encode_json(found)

    def delete_agent(self, pod: str, sid: str, agent: str, account: AccountInfo | None = None) -> bool:
        with self._lock:
            acc = self._state.accounts.get((pod, sid))
            if acc is not None:
                return acc.agents.pop(agent, None) is not None
            default = self._state.default_account
            key = (pod, sid, agent)
            if default is None or agent not in default.agents or key in self._state.deleted_default:
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

    def record(self, entry: dict[str, Any]) -> None:
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

    def set_seed(self, seed: StateData) -> None:
        with self._lock:
            self._seed = seed.copy()

    def reset(self) -> None:
        with self._lock:
            self._state = self._seed.copy()
            self._armed.clear()
            self._journal.clear()
            self._changed()
