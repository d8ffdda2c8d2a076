"""The mock's data: accounts per (pod, sid), their agents and testers.

One document format serves as seed file, state dump and state load, so a dump can be
edited and loaded back, or kept as a seed. Api keys never stay in clear: a seed may
give `api_keys`, which are hashed on load; dumps carry only `api_key_sha256`.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._pods import PODS
from ._schema import Schema
from ._spec import SpecIndex

__all__ = [
    "AccountData",
    "StateData",
    "StateError",
    "default_seed_document",
    "fingerprint_of_hash",
    "hash_key",
    "key_fingerprint",
    "merge_seed",
    "state_validator",
]


class StateError(ValueError):
    """A seed or state document that cannot be loaded; the message says where."""


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).hexdigest()


def key_fingerprint(api_key: str | None) -> str | None:
    """Enough to tell two keys apart in a journal, never enough to use one."""
    return None if not api_key else fingerprint_of_hash(hash_key(api_key))


def fingerprint_of_hash(hashed: str) -> str:
    """`key_fingerprint` of a key already hashed (`hash_key`): the engine keeps the hashes."""
    return "sha256:" + hashed[:8]


def state_validator(spec: SpecIndex) -> Schema:
    tester = copy.deepcopy(spec.document["components"]["schemas"]["Tester"])
    agents = {
        "type": "object",
        "propertyNames": {"minLength": 1, "pattern": "^[^/]+$"},
        "additionalProperties": {"type": "array", "items": {"$ref": "#/$defs/tester"}},
    }
    keys = {"type": "array", "items": {"type": "string", "minLength": 1}}
    key_hashes = {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "version": {"const": 1},
            "default_account": {
                # null, or an object with these properties; no oneOf, which validates (and
                # keeps every error of) both branches
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    "rcs_enabled": {"type": "boolean"},
                    "api_keys": keys,
                    "api_key_sha256": key_hashes,
                    "agents": agents,
                },
            },
            "accounts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["sid"],
                    "properties": {
                        "pod": {"enum": [*PODS, "*"]},
                        "sid": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
                        "rcs_enabled": {"type": "boolean"},
                        "api_keys": keys,
                        "api_key_sha256": key_hashes,
                        "agents": agents,
                    },
                },
            },
            "deleted_default_agents": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["pod", "sid", "agent_number"],
                    "properties": {
                        "pod": {"enum": list(PODS)},
                        "sid": {"type": "string"},
                        "agent_number": {"type": "string", "minLength": 1},
                    },
                },
            },
            "magic_agents": {
                "type": "object",
                "propertyNames": {"minLength": 1, "pattern": "^[^/]+$"},
                "additionalProperties": {"enum": spec.all_example_names()},
            },
        },
        "$defs": {"tester": tester},
    }
    return Schema(schema)


@dataclass
class AccountData:
    rcs_enabled: bool = True
    key_hashes: frozenset[str] = frozenset()
    agents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> AccountData:
        """Clear `api_keys` are hashed here and never kept."""
        hashes = set(doc.get("api_key_sha256", [])) | {hash_key(k) for k in doc.get("api_keys", [])}
        return cls(
            rcs_enabled=doc.get("rcs_enabled", True),
            key_hashes=frozenset(hashes),
            agents=copy.deepcopy(doc.get("agents", {})),
        )

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"rcs_enabled": self.rcs_enabled}
        if self.key_hashes:
            doc["api_key_sha256"] = sorted(self.key_hashes)
        doc["agents"] = copy.deepcopy(self.agents)
        return doc


@dataclass
class StateData:
    """Explicit accounts plus a template that stands for every SID not listed.

    A template account is never copied: deleting one of its agents for a SID records a
    tombstone, so a fuzzer that sends a million SIDs costs nothing until it deletes.
    """

    default_account: AccountData | None = None
    accounts: dict[tuple[str, str], AccountData] = field(default_factory=dict)
    deleted_default: set[tuple[str, str, str]] = field(default_factory=set)
    magic_agents: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: Any, validator: Schema | None) -> StateData:
        """Validate (unless the document is the store's own) and hash any clear keys."""
        problem = None if validator is None else validator.first_problem(doc)
        if problem is not None:
            raise StateError(problem)
        state = cls()
        default = doc.get("default_account")
        if default is not None:
            state.default_account = AccountData.from_document(default)
        for acc in doc.get("accounts", []):
            pods = PODS if acc.get("pod", "*") == "*" else (acc["pod"],)
            for pod in pods:
                if (pod, acc["sid"]) in state.accounts:
                    raise StateError("/accounts: an account (pod and SID) is listed twice")
                state.accounts[(pod, acc["sid"])] = AccountData.from_document(acc)
        for item in doc.get("deleted_default_agents", []):
            state.deleted_default.add((item["pod"], item["sid"], item["agent_number"]))
        state.magic_agents = dict(doc.get("magic_agents", {}))
        return state

    def to_document(self) -> dict[str, Any]:
        return {
            "version": 1,
            "default_account": None if self.default_account is None else self.default_account.to_document(),
            "accounts": [
                {"pod": pod, "sid": sid, **acc.to_document()} for (pod, sid), acc in sorted(self.accounts.items())
            ],
            "deleted_default_agents": [
                {"pod": p, "sid": s, "agent_number": a} for p, s, a in sorted(self.deleted_default)
            ],
            "magic_agents": dict(self.magic_agents),
        }

    def copy(self) -> StateData:
        return copy.deepcopy(self)


def default_seed_document(spec: SpecIndex) -> dict[str, Any]:
    """The documents' samples, for any SID on both pods, plus one magic agent per scenario."""
    testers = spec.example("getTestersByAgent", "testers").value
    return {
        "version": 1,
        "default_account": {
            "rcs_enabled": True,
            "agents": {"48900": copy.deepcopy(testers), "48400": []},
        },
        "accounts": [],
        "deleted_default_agents": [],
        "magic_agents": dict(spec.magic_agents),
    }


def merge_seed(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """A seed file adds to the default seed; it replaces a key only where it names it."""
    merged = dict(base)
    merged.update(overlay)
    return merged
