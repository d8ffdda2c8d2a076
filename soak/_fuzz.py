"""Hostile requests over a real socket, and the rules every answer must keep.

A request here never asks for a failure on purpose: no magic agent number of a documented 5xx
(99500, 99502), no `Prefer` naming one, no valid control-plane change (no control-plane DELETE,
only bodies it refuses), and no DELETE of an agent the seed holds. So any 5xx is a crash, and
the state must come out exactly as it went in.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ._wire import Answer, envelope_problem, exchange

__all__ = ["FuzzReport", "build_request", "check_answer", "fuzz"]

KEY = "soak-key"
METHODS = [b"GET", b"GET", b"POST", b"DELETE", b"DELETE", b"PUT", b"PATCH", b"TRACE", b"OPTIONS", b"HEAD", b"FOO"]
SEGMENTS = [
    b"S1",
    b"in",
    b"testersbyagent",
    b"..",
    b"%2e%2e",
    b"..%2F..%2Fetc%2Fpasswd",
    b"%2F",
    b"%252F",
    b"%FF%FE",
    b"\xff\xfe",
    b"\xc3\x28",
    b"%C0%AF",
    b"%00",
    b"caf\xc3\xa9",
    b"12345",
    b"99404",
    b"99601",
    b"99429",
    b"",
]
ROUTES = [
    b"/v1/{sid}/rcs/agent/testersbyagent",
    b"/v1/{sid}/rcs/agenttester/testersbyagent",
    b"/wsgw/v1/agent/testersbyagent",
    b"/v1/{sid}/rcs/agent/{agent}",
    b"/v1/{sid}/rcs/agent/",
    b"/__mock/{control}",
    b"/{sid}/{agent}",
]
CONTROL = [b"scenarios", b"faults", b"state", b"default-account", b"journal?limit=abc", b"accounts/in/{sid}", b"zz"]
QUERY_VALUES = [b"48900", b"48400", b"", b"%FF", b"%C3%A9", b"a+b", b"\xff", b"99404", b"x" * 300]
PREFER = [b"example=agent_not_found", b"code=429", b"code=401", b"nonsense", b"example=\xff", b"code=abc"]
CONTENT_TYPES = [b"application/json", b"text/plain", b"", b"application/json; charset=\xff", b"multipart/form-data"]
BAD_DOCS: list[Any] = [
    {"name": 5},
    [],
    "x",
    {"name": "gateway_error", "count": "many"},
    {"name": "no_such"},
    {"default_account": 5},
    {"accounts": "none"},
    {"rcs_enabled": "yes"},
    None,
    {"agent_number": 99502.5},
]


@dataclass
class FuzzReport:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "dropped": dict(self.dropped),
            "server_errors": self.server_errors,
            "problems": self.problems[:20],
            "seconds": round(self.seconds, 1),
        }


def _pick(rng: random.Random, options: list[bytes]) -> bytes:
    return options[rng.randrange(len(options))]


def _path(rng: random.Random) -> bytes:
    prefix = _pick(rng, [b"", b"", b"/in", b"/na", b"/eu", b"//"])
    route = _pick(rng, ROUTES)
    sid = _pick(rng, SEGMENTS)
    agent = _pick(rng, SEGMENTS)
    path = prefix + route.replace(b"{control}", _pick(rng, CONTROL)).replace(b"{sid}", sid).replace(b"{agent}", agent)
    if rng.random() < 0.02:
        path += b"/" + b"a" * rng.choice([2_000, 20_000, 70_000])  # past normal URL limits
    return path or b"/"


def _query(rng: random.Random) -> bytes:
    pairs = []
    for _ in range(rng.randrange(4)):
        name = _pick(rng, [b"agent_number", b"agent_number", b"", b"x", b"\xff"])
        pairs.append(name + b"=" + _pick(rng, QUERY_VALUES))
    return b"&".join(pairs)


def _body(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.5:
        return b""
    if roll < 0.7:
        return json.dumps(rng.choice(BAD_DOCS)).encode()
    if roll < 0.8:
        return b'{"agent_number": "12345"}'
    if roll < 0.995:
        return rng.randbytes(rng.randrange(1, 200))
    return b"{" * 9_000_000  # past the 8 MiB body limit


def build_request(rng: random.Random, host: bytes) -> bytes:
    method = _pick(rng, METHODS)
    target = _path(rng)
    control = b"/__mock/" in target
    if control and method == b"DELETE":  # a control-plane DELETE is a valid change (an account gone)
        method = b"PATCH"
    query = _query(rng)
    if query:
        target += b"?" + query
    headers = [b"Host: " + (host if rng.random() < 0.8 else _pick(rng, [b"rcs-api.na.kaleyra.ai", b"\xff", b""]))]
    key = rng.random()
    if key < 0.6:
        headers.append(b"api-key: " + KEY.encode())
    elif key < 0.75:
        headers.append(b"api-key: " + _pick(rng, [b"", b"wrong", b"\xff\xfe", b" soak-key ", b"k" * 20_000]))
    content_type = _pick(rng, CONTENT_TYPES)
    if content_type or rng.random() < 0.5:
        headers.append(b"Content-Type: " + content_type)
    if rng.random() < 0.2:
        headers.append(b"Prefer: " + _pick(rng, PREFER))
    if rng.random() < 0.05:
        headers.extend(b"X-Many-%d: %d" % (i, i) for i in range(rng.choice([50, 300])))
    if rng.random() < 0.02:
        headers.append(b"X-Huge: " + b"h" * 100_000)
    if rng.random() < 0.05:
        headers.append(b"Origin: https://evil.example")
    body = _body(rng)
    if control and body and not body.startswith(b"{" * 2):  # only documents the control plane refuses
        body = json.dumps(rng.choice(BAD_DOCS)).encode() if rng.random() < 0.7 else rng.randbytes(40)
    if body or method in (b"POST", b"PUT"):
        headers.append(b"Content-Length: %d" % len(body))
    headers.append(b"Connection: close")
    return method + b" " + target + b" HTTP/1.1\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body


def check_answer(answer: Answer) -> str | None:
    """Why an answer breaks the rules, or None. A connection closed or reset without an answer is
    a refusal (counted); a hang or a response cut short is a problem."""
    if answer.dropped in ("timeout", "incomplete"):
        return f"{answer.dropped} (status {answer.status})"
    if answer.status is None:
        return None
    if answer.status >= 500:
        return f"{answer.status}: {answer.body[:200]!r}"
    if b"Traceback" in answer.body or b'File "' in answer.body:
        return f"a traceback in a {answer.status}: {answer.body[:200]!r}"
    if answer.status >= 400 and answer.body:  # granian's own refusals come with no body at all
        return envelope_problem(answer)
    return None


def fuzz(host: str, port: int, requests: int, seed: int = 20261123) -> FuzzReport:
    rng = random.Random(seed)  # noqa: S311 - repeatable fuzzing, not secrets
    report = FuzzReport()
    started = time.monotonic()
    host_header = f"{host}:{port}".encode()
    for _ in range(requests):
        raw = build_request(rng, host_header)
        answer = exchange(host, port, raw)
        report.requests += 1
        if answer.status is not None:
            report.statuses[answer.status] += 1
        else:
            report.dropped[answer.dropped or "?"] += 1
        problem = check_answer(answer)
        if problem is not None:
            report.problems.append(f"{raw[:120]!r} -> {problem}")
    report.seconds = time.monotonic() - started
    return report
