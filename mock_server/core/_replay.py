"""Replay: answering a request with what a cassette recorded for it, byte for byte.

The match rule (the key of a request): its method; its pod (the mock's usual rule: Host, else
the /in or /na prefix, else the default pod); its path without the mock's /in or /na prefix;
its raw query string, as sent; and its `Prefer` header. Nothing else: not the body, not the
other headers, and not the api key, because a cassette holds only the key's fingerprint
(the journal's 8 hex digits), which cannot be told from another key's with certainty and
which a replay is not meant to check. A cassette written with masking on (the default) holds
the query masked too; a request that matches no query as sent is tried once more masked.

The n-th request with one key gets the n-th answer recorded for that key (recorded order,
cassette after cassette in the order given); after the last, the last repeats: a GET keeps
its last state, and a DELETE's last recorded answer (usually agent-not-found) is the right
answer to one more. The count is the store's (`Store.next_position`), so it is shared by
every worker process and no two requests get the same place; `reset` rewinds it. A key with
one recorded answer never asks the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._cassette import HOP_BY_HOP, MASKED_EMAIL, Exchange, mask_text, read_cassette
from ._engine import ApiResponse
from ._pods import PODS
from ._store import Store

__all__ = ["REPLAY_SOURCE", "ReplayIndex", "Replayer", "replay_response", "upstream_path"]

REPLAY_SOURCE = "replay"
# What the mock adds to every answer itself: a recorded copy (an upstream that was a mock) is left out.
_OWN_HEADERS = frozenset({"x-mock-source", "x-mock-example"})

Key = tuple[str, str, str, str, str]  # method, pod, path, query, Prefer


def upstream_path(path: str) -> str:
    """The path as the upstream was asked: the mock's /in or /na prefix taken off."""
    head, _slash, rest = path[1:].partition("/")
    return "/" + rest if head in PODS else path


def replay_response(exchange: Exchange) -> ApiResponse:
    """The recorded status, headers (hop-by-hop ones never, Content-Length is the server's) and
    body as it came off the wire, still Content-Encoded."""
    recorded = exchange.response
    headers = tuple((k, v) for k, v in recorded.headers if k.lower() not in HOP_BY_HOP | _OWN_HEADERS)
    return ApiResponse(recorded.status, recorded.body, headers, exchange.example, REPLAY_SOURCE)


@dataclass(frozen=True)
class _Recorded:
    exchange: Exchange
    response: ApiResponse


@dataclass(frozen=True)
class ReplayIndex:
    """Every recorded answer by key, in recorded order; built once when a worker starts."""

    answers: Mapping[Key, tuple[_Recorded, ...]] = field(default_factory=dict)
    cassettes: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # cassette lines left out (cut short, or not an exchange)
    masked: bool = False  # some recorded query was masked

    @classmethod
    def from_exchanges(
        cls, exchanges: Iterable[Exchange], cassettes: Sequence[str] = (), skipped: Sequence[str] = ()
    ) -> ReplayIndex:
        answers: dict[Key, list[_Recorded]] = {}
        masked = False
        for exchange in exchanges:
            req = exchange.request
            key = (req.method, req.pod, req.path, req.query, req.headers.get("prefer", ""))
            answers.setdefault(key, []).append(_Recorded(exchange, replay_response(exchange)))
            # Masking leaves an X for a digit, or the masked address: only then is a miss tried masked.
            masked = masked or (exchange.masked and ("X" in req.query or MASKED_EMAIL in req.query))
        frozen = {key: tuple(found) for key, found in answers.items()}
        return cls(frozen, tuple(cassettes), tuple(skipped), masked)

    @classmethod
    def load(cls, paths: Sequence[Path]) -> ReplayIndex:
        """CassetteError (one line: the file and why) when a cassette cannot be read."""
        exchanges: list[Exchange] = []
        skipped: list[str] = []
        for path in paths:
            found, left_out = read_cassette(path)
            exchanges.extend(found)
            skipped.extend(left_out)
        return cls.from_exchanges(exchanges, [str(p) for p in paths], skipped)

    def find(self, method: str, pod: str, path: str, query: str, prefer: str | None) -> tuple[Key, int] | None:
        """The key a request matches and how many answers it has, or None."""
        key = (method, pod, upstream_path(path), query, prefer or "")
        found = self.answers.get(key)
        if found is None and self.masked and query:
            key = (*key[:3], mask_text(query), key[4])
            found = self.answers.get(key)
        return None if found is None else (key, len(found))

    def pick(self, key: Key, position: int) -> tuple[Exchange, ApiResponse]:
        """The answer at `position`, the last one past the end."""
        found = self.answers[key]
        recorded = found[min(position, len(found) - 1)]
        return recorded.exchange, recorded.response

    def exchange_count(self) -> int:
        return sum(len(found) for found in self.answers.values())

    def to_document(self) -> dict[str, Any]:
        return {
            "cassettes": list(self.cassettes),
            "exchanges": self.exchange_count(),
            "keys": len(self.answers),
            "skipped": list(self.skipped),
        }


class Replayer:
    """The index and the store that keeps each key's place."""

    def __init__(self, index: ReplayIndex, store: Store) -> None:
        self.index = index
        self.store = store

    def answer(
        self, method: str, pod: str, path: str, query: str, prefer: str | None
    ) -> tuple[Exchange, ApiResponse] | None:
        found = self.index.find(method, pod, path, query, prefer)
        if found is None:
            return None
        key, count = found
        position = self.store.next_position(json.dumps(key)) if count > 1 else 0
        return self.index.pick(key, position)
