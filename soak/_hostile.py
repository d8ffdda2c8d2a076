"""Hostile and careless clients over a real socket, one check per class of defect.

Each check sends its requests to a running server, asserts the exact status and envelope of
every answer, and that a refused request changed nothing; it returns its figures and the
problems it found (an empty list when every rule held). The lists it walks come from the two
OpenAPI documents: every API operation that reads a body, every control operation with a
request body. `soak/run.py` runs them long, `tests/server/test_soak.py` short.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from mock_server.core import CONTROL_SPEC_PATH, MAX_DEPTH, SpecIndex, default_seed_document, load_yaml
from mock_server.web import MAX_BODY

from ._wire import Answer, chunked, envelope_problem, exchange, read_answer, request

__all__ = [
    "CONTROL_ACCEPTED",
    "FOREIGN_MEDIA",
    "HOSTILE_ORIGINS",
    "Check",
    "Target",
    "api_body_routes",
    "body_limits",
    "conformance",
    "control_body_routes",
    "depth",
    "echoes",
    "origins",
    "stalled_clients",
]

SPEC = SpecIndex.load()
KEY = "hostile-key"
SID = "HOSTILE"
TESTERS_PATH = f"/in/v1/{SID}/rcs/agent/testersbyagent"
GET_TESTERS = f"{TESTERS_PATH}?agent_number=48900"
TESTER = SPEC.example("getTestersByAgent", "testers").value[0]
IN_HOST, NA_HOST = (next(host for host, pod in SPEC.pod_hosts.items() if pod == wanted) for wanted in ("in", "na"))
RATE_LIMITED_AGENT = next(agent for agent, name in SPEC.magic_agents.items() if name == "rate_limited")
# A valid document for each control operation that takes a body, so that a body of exactly the
# limit can be shown to be read whole (it is accepted) and one byte more to be refused.
CONTROL_DOCUMENTS: dict[str, Any] = {
    "putState": default_seed_document(SPEC),
    "putDefaultAccount": {"rcs_enabled": True, "agents": {"48900": [TESTER], "48400": []}},
    "putAccount": {"rcs_enabled": True, "agents": {"48900": []}},
    "putAgent": {"testers": [TESTER]},
    "addTester": TESTER,
    "putDefaultAgent": {"testers": [TESTER]},
    "addDefaultTester": TESTER,
    "armScenario": {"scenario": "gateway_error", "times": 1},
    "armFault": {"fault": "latency", "times": 1, "params": {"ms": 1}},
}
PATH_VALUES = {"pod": "in", "sid": "HOSTILE-ACCOUNT", "agent_number": "48900", "tester_id": "t-1"}
# {operationId: the status a control operation answers when it does what it was asked}, from its document.
CONTROL_ACCEPTED: dict[str, int] = {
    op["operationId"]: min(int(code) for code in op["responses"] if str(code).startswith("2"))
    for item in load_yaml(CONTROL_SPEC_PATH)["paths"].values()
    for op in item.values()
    if isinstance(op, dict) and "operationId" in op
}
# What a DELETE of the seed's agent answers: the agent is there, or it was deleted already.
DELETED = (SPEC.example("deleteAgent", "agent_deleted").status, "agent_deleted")
NOT_FOUND = (SPEC.example("deleteAgent", "agent_not_found").status, "agent_not_found")


@dataclass
class Check:
    """One class of hostile input: requests sent, answers by status, and what broke a rule."""

    name: str
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    asked_5xx: int = 0  # answers that were asked for with a 5xx scenario

    @property
    def unasked_5xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500) - self.asked_5xx

    def saw(self, answer: Answer) -> Answer:
        self.requests += 1
        if answer.status is not None:
            self.statuses[answer.status] += 1
        return answer

    def expect(self, what: str, answer: Answer, status: int, code: str | None = None) -> None:
        """The exact status, and for a 4xx the error envelope with that code."""
        if answer.status != status:
            self.problems.append(f"{what}: {answer.status} ({answer.dropped or answer.body[:160]!r}), not {status}")
            return
        if status >= 500:
            self.asked_5xx += 1
        if status >= 400:
            problem = envelope_problem(answer, code)
            if problem:
                self.problems.append(f"{what}: {problem}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            **self.figures,
            "unasked_5xx": self.unasked_5xx,
            "problems": self.problems[:20],
            "ok": not self.problems and not self.unasked_5xx,
        }


class Target:
    """A running mock: raw exchanges, and its state as the control plane dumps it."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").rpartition(":")
        self.url = url
        self.host = host
        self.port = int(port)
        self.control = httpx.Client(base_url=url, timeout=30)  # one client: each new one costs ~50 ms

    def send(self, raw: bytes, timeout: float = 30.0) -> Answer:
        return exchange(self.host, self.port, raw, timeout)

    def snapshot(self) -> Any:
        """The state, and what is armed: everything a refused request must leave alone."""
        return tuple(self.control.get(f"/__mock/{part}").json() for part in ("state", "scenarios", "faults"))

    def reset(self) -> None:
        self.control.post("/__mock/reset").raise_for_status()

    def close(self) -> None:
        self.control.close()


def api_headers(**extra: str) -> list[tuple[str, str]]:
    headers = [("Host", "127.0.0.1"), ("api-key", KEY), ("Content-Type", "application/json")]
    return headers + list(extra.items()) + [("Connection", "close")]


def control_headers(*extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("Host", "127.0.0.1"), *extra, ("Connection", "close")]


def control_body_routes() -> list[tuple[str, str, str]]:
    """(operationId, method, path) of every control operation with a request body."""
    document = load_yaml(CONTROL_SPEC_PATH)
    routes = []
    for template, item in document["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "requestBody" in op:
                path = template
                for name, value in PATH_VALUES.items():
                    path = path.replace("{" + name + "}", value)
                routes.append((op["operationId"], method.upper(), path))
    return routes


def api_body_routes() -> list[tuple[str, str]]:
    """(operationId, path) of every API operation that reads a body, on the IN pod."""
    return [
        (op.operation_id, "/in" + op.path.replace("{sid}", SID))
        for op in SPEC.operations.values()
        if op.method == "POST"
    ]


def _prepare(target: Target) -> None:
    """A listed account for the control routes under /__mock/accounts/ to act on."""
    target.reset()
    target.control.put(
        f"/__mock/accounts/in/{PATH_VALUES['sid']}", json={"agents": {"48900": [TESTER]}}
    ).raise_for_status()


def _padded(doc: Any, size: int) -> bytes:
    """`doc` as JSON, padded with spaces (still the same JSON text) to exactly `size` bytes."""
    raw = json.dumps(doc).encode()
    return raw + b" " * (size - len(raw))


# -- 1. body limits --------------------------------------------------------------------------------


def body_limits(target: Target, sizes: tuple[int, ...] = (MAX_BODY, MAX_BODY + 1)) -> Check:
    """Bodies of exactly the limit are read whole and one byte more is refused (413, nothing
    changed), with a Content-Length and chunked alike, on every route that reads a body."""
    check = Check("body_limits")
    framings: dict[str, Callable[[bytes], tuple[list[tuple[str, str]], bytes]]] = {
        "content-length": lambda body: ([("Content-Length", str(len(body)))], body),
        "chunked": lambda body: ([("Transfer-Encoding", "chunked")], chunked(body)),
    }
    testers = SPEC.example("getTestersByAgent", "testers").value
    for size in sizes:
        for framing, frame in framings.items():
            for op_id, path in api_body_routes():
                extra, raw = frame(_padded({"agent_number": "48900"}, size))
                answer = check.saw(
                    target.send(request("POST", path, api_headers()[:-1] + extra + [("Connection", "close")], raw))
                )
                what = f"{op_id} {framing} {size}"
                if size <= MAX_BODY:
                    check.expect(what, answer, 200)
                    if answer.status == 200 and json.loads(answer.body) != testers:
                        check.problems.append(f"{what}: not the agent's testers")
                else:
                    check.expect(what, answer, 413, "MOCK413")
            for op_id, method, path in control_body_routes():
                _prepare(target)
                before = target.snapshot()
                extra, raw = frame(_padded(CONTROL_DOCUMENTS[op_id], size))
                headers = control_headers(("Content-Type", "application/json"), *extra)
                answer = check.saw(target.send(request(method, path, headers, raw)))
                what = f"{op_id} {framing} {size}"
                if size <= MAX_BODY:
                    check.expect(what, answer, CONTROL_ACCEPTED[op_id])
                else:
                    check.expect(what, answer, 413, "MOCK413")
                    if target.snapshot() != before:
                        check.problems.append(f"{what}: a refused body changed the state")
    _declared_too_large(target, check)
    _incomplete_bodies(target, check)
    target.reset()
    return check


def _declared_too_large(target: Target, check: Check) -> None:
    """A Content-Length past the limit is refused at once, before any byte of the body (and
    with `Expect: 100-continue`, without inviting the upload with a 100)."""
    routes = [
        ("POST", TESTERS_PATH, api_headers()[:-1]),
        ("POST", "/__mock/reset", control_headers(("Content-Type", "application/json"))[:-1]),  # reads no body
    ]
    for (method, path, base), expect in itertools.product(routes, ((), (("Expect", "100-continue"),))):
        headers = [*base, ("Content-Length", str(MAX_BODY * 12)), *expect]
        sock = socket.create_connection((target.host, target.port), timeout=5)
        try:
            sock.sendall(request(method, path, headers, b'{"agent'))
            started = time.monotonic()
            answer = check.saw(read_answer(sock, method))
        finally:
            sock.close()
        what = f"{path}: a declared Content-Length of 96 MiB" + (" with Expect: 100-continue" if expect else "")
        check.expect(what, answer, 413, "MOCK413")
        if time.monotonic() - started > 1.0:
            check.problems.append(f"{what}: refused only after {time.monotonic() - started:.1f} s")


def _incomplete_bodies(target: Target, check: Check) -> None:
    """A body that ends before its Content-Length or its last chunk (the client half-closed) is
    refused (400), never read as if whole: it arms nothing, loads no state."""
    arm = json.dumps({"scenario": "gateway_error", "times": None}).encode()
    blank = json.dumps({"version": 1, "default_account": None}).encode()
    cases = [
        ("a short Content-Length body", "POST", "/__mock/scenarios", [("Content-Length", str(len(arm) + 59))], arm),
        (
            "a chunked body without its last chunk",
            "POST",
            "/__mock/scenarios",
            [("Transfer-Encoding", "chunked")],
            chunked(arm)[:-5],
        ),
        ("a short state document", "PUT", "/__mock/state", [("Content-Length", str(len(blank) + 50))], blank),
        # a route that reads no body is refused all the same: the body was refused, not the route
        ("a short body to /__mock/reset", "POST", "/__mock/reset", [("Content-Length", "100")], b"{}"),
    ]
    _prepare(target)
    target.control.post("/__mock/scenarios", json={"scenario": "gateway_error", "times": None}).raise_for_status()
    for what, method, path, framing, raw in cases:
        before = target.snapshot()
        headers = control_headers(("Content-Type", "application/json"), *framing)
        sock = socket.create_connection((target.host, target.port), timeout=10)
        try:
            sock.sendall(request(method, path, headers, raw))
            sock.shutdown(socket.SHUT_WR)
            answer = check.saw(read_answer(sock, method))
        finally:
            sock.close()
        check.expect(what, answer, 400, "MOCK400")
        if target.snapshot() != before:
            check.problems.append(f"{what}: read as if whole, the state changed")
    api = [*api_headers()[:-1], ("Content-Length", "100")]
    sock = socket.create_connection((target.host, target.port), timeout=10)
    try:
        sock.sendall(request("POST", TESTERS_PATH, api, b'{"agent_number": "48900"}'))
        sock.shutdown(socket.SHUT_WR)
        answer = check.saw(read_answer(sock, "POST"))
    finally:
        sock.close()
    check.expect("an API body shorter than its Content-Length", answer, 400, "RCS400")


# -- 2. origins and media types ----------------------------------------------------------------------

HOSTILE_ORIGINS = [
    "http://127.0.0.1.evil.example",
    "http://localhost.evil.example",
    "http://127.0.0.1:8080.evil.example",
    "https://evil.example",
    "http://evil.example#@127.0.0.1",
    "http://127.0.0.1@evil.example",
    "http://[::1].evil.example",
    "http://0x7f000001.evil.example",
    "null",
    "file://",
    "http://127.0.0.1/path",
    "",
]
WELCOME_ORIGINS = ["http://127.0.0.1:8080", "http://localhost:3000", "http://[::1]:8080", "https://127.0.0.2"]
FOREIGN_MEDIA = [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]


def origins(target: Target) -> Check:
    """A web page cannot steer the control plane: a look-alike origin is refused (403), a body
    that is not `application/json` (a CORS "simple" request) is refused (415); nothing changes."""
    check = Check("origins")
    scenario = json.dumps({"scenario": "gateway_error", "times": None}).encode()
    writes = [
        ("POST", "/__mock/scenarios", scenario),
        ("POST", "/__mock/reset", b""),
        ("DELETE", "/__mock/default-account", b""),
    ]
    _prepare(target)
    for origin in HOSTILE_ORIGINS:
        for method, path, body in writes:
            before = target.snapshot()
            headers = control_headers(
                ("Origin", origin), ("Content-Type", "application/json"), ("Content-Length", str(len(body)))
            )
            answer = check.saw(target.send(request(method, path, headers, body)))
            check.expect(f"{method} {path} from {origin!r}", answer, 403, "MOCK403")
            if origin and origin.encode() in answer.body:
                check.problems.append(f"{method} {path}: the refused origin is echoed")
            if target.snapshot() != before:
                check.problems.append(f"{method} {path} from {origin!r}: the state changed")
    for media in FOREIGN_MEDIA:
        before = target.snapshot()
        headers = control_headers(("Content-Length", str(len(scenario))))
        if media is not None:
            headers.insert(1, ("Content-Type", media))
        answer = check.saw(target.send(request("POST", "/__mock/scenarios", headers, scenario)))
        check.expect(f"a body sent as {media!r}", answer, 415, "MOCK415")
        if target.snapshot() != before:
            check.problems.append(f"a body sent as {media!r}: the state changed")
    for origin in WELCOME_ORIGINS:
        headers = control_headers(
            ("Origin", origin), ("Content-Type", "application/json"), ("Content-Length", str(len(scenario)))
        )
        check.expect(
            f"from {origin!r}", check.saw(target.send(request("POST", "/__mock/scenarios", headers, scenario))), 201
        )
    target.reset()
    api = check.saw(target.send(request("GET", GET_TESTERS, api_headers(Origin="https://evil.example"))))
    check.expect("the API from a web page (its own rules, not the control plane's)", api, 200)
    # DNS rebinding: a page whose own name now points at 127.0.0.1 is same-origin and sends no
    # Origin with a GET; its Host names it.
    for host in ("rebind.attacker.example", f"rebind.attacker.example:{target.port}", "127.0.0.1.attacker.example"):
        for path in ("/__mock/state", "/__mock/journal"):
            answer = check.saw(target.send(request("GET", path, [("Host", host), ("Connection", "close")])))
            check.expect(f"GET {path} with Host {host}", answer, 403, "MOCK403")
    return check


# -- 3. depth ------------------------------------------------------------------------------------------


def _nested_json(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def depth(target: Target, depths: tuple[int, ...] = (100, 300, 1_000, 100_000)) -> Check:
    """Nesting up to the bound is read; past it every route refuses in its envelope (400), never
    a 500 or a RecursionError, and nothing changes."""
    check = Check("depth")
    _prepare(target)
    # A tester may carry extra fields: the deepest place each document can hold data, and how
    # many levels the document itself takes around that tester.
    room = {"putAgent": 3, "putDefaultAgent": 3, "addTester": 1, "addDefaultTester": 1, "putDefaultAccount": 4}
    room.update({"putAccount": 4, "putState": 5})

    def document(op_id: str, levels: int) -> bytes:
        extra = f'"extra": {_nested_json(levels).decode()}'
        tester = json.dumps(TESTER)[:-1] + ", " + extra + "}"
        docs = {
            "putAgent": '{"testers": [' + tester + "]}",
            "putDefaultAgent": '{"testers": [' + tester + "]}",
            "addTester": tester,
            "addDefaultTester": tester,
            "putDefaultAccount": '{"agents": {"48900": [' + tester + "]}}",
            "putAccount": '{"agents": {"48900": [' + tester + "]}}",
            "putState": '{"version": 1, "default_account": {"agents": {"48900": [' + tester + "]}}}",
            "armScenario": '{"scenario": "gateway_error", "match": {"sid": ' + _nested_json(levels).decode() + "}}",
            "armFault": '{"fault": "latency", "params": {"ms": ' + _nested_json(levels).decode() + "}}",
        }
        return docs[op_id].encode()

    for op_id, method, path in control_body_routes():
        for levels in (MAX_DEPTH - room.get(op_id, 2), MAX_DEPTH - room.get(op_id, 2) + 1, *depths):
            _prepare(target)
            before = target.snapshot()
            raw = document(op_id, levels)
            headers = control_headers(("Content-Type", "application/json"), ("Content-Length", str(len(raw))))
            answer = check.saw(target.send(request(method, path, headers, raw)))
            what = f"{op_id} nested {levels} deep"
            within = levels <= MAX_DEPTH - room.get(op_id, 2)
            if within and op_id in room:
                check.expect(what, answer, CONTROL_ACCEPTED[op_id])
                continue
            check.expect(what, answer, 400, "MOCK400")
            if target.snapshot() != before:
                check.problems.append(f"{what}: the state changed")
    for levels in (MAX_DEPTH - 1, MAX_DEPTH, *depths):
        raw = b'{"agent_number": "48900", "x": ' + _nested_json(levels) + b"}"
        headers = [*api_headers()[:-1], ("Content-Length", str(len(raw))), ("Connection", "close")]
        answer = check.saw(target.send(request("POST", TESTERS_PATH, headers, raw)))
        if levels < MAX_DEPTH:
            check.expect(f"postTestersByAgent nested {levels + 1} deep", answer, 200)
        else:
            check.expect(f"postTestersByAgent nested {levels + 1} deep", answer, 400, "RCS701")
    _wide_and_large(target, check)
    target.reset()
    return check


def _wide_and_large(target: Target, check: Check) -> None:
    """Not deep but wide, or numbers past what the store keeps: a refused document of 100,000
    wrong testers is answered in the time its first error takes (collecting them all once
    took 28 s and 1.7 GB), and an integer past SQLite's is a 400 or 404, never an overflow."""
    _prepare(target)
    before = target.snapshot()
    wide = json.dumps({"version": 1, "default_account": {"agents": {"1": [{"x": 1}] * 100_000}}}).encode()
    headers = control_headers(("Content-Type", "application/json"), ("Content-Length", str(len(wide))))
    answer = check.saw(target.send(request("PUT", "/__mock/state", headers, wide), timeout=5))
    check.expect("a state document of 100,000 wrong testers", answer, 400, "MOCK400")
    huge = 2**63
    for what, method, path, doc, status in (
        ("times past 2**63", "POST", "/__mock/scenarios", {"scenario": "gateway_error", "times": huge}, 400),
        ("times 1e300", "POST", "/__mock/scenarios", {"scenario": "gateway_error", "times": 1e300}, 400),
        ("a fault's times past 2**63", "POST", "/__mock/faults", {"fault": "latency", "times": huge}, 400),
        ("a seed past 2**63", "POST", "/__mock/faults", {"fault": "random_5xx", "params": {"seed": huge}}, 400),
        ("a scenario id past 2**63", "DELETE", f"/__mock/scenarios/{huge}", None, 404),
        ("a fault id of 23 digits", "DELETE", "/__mock/faults/99999999999999999999999", None, 404),
    ):
        raw = b"" if doc is None else json.dumps(doc).encode()
        framing = [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))] if raw else []
        answer = check.saw(target.send(request(method, path, control_headers(*framing), raw)))
        check.expect(what, answer, status, f"MOCK{status}")
    if target.snapshot() != before:
        check.problems.append("a refused wide or large document changed the state")


# -- 4. slow clients ---------------------------------------------------------------------------------


def _latencies(
    target: Target, count: int, path: str = GET_TESTERS, headers: dict[str, str] | None = None
) -> list[float]:
    """Seconds for each of `count` requests on one keep-alive connection; inf for a failure."""
    out: list[float] = []
    with httpx.Client(base_url=target.url, timeout=5) as client:
        while len(out) < count:
            started = time.perf_counter()
            try:
                ok = client.get(path, headers=headers or {"api-key": KEY, "Content-Type": "application/json"})
                out.append(time.perf_counter() - started if ok.status_code == 200 else float("inf"))
            except httpx.HTTPError:
                out += [float("inf")] * (count - len(out))  # a server that stopped answering: no point waiting more
    return out


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class _Stalled:
    kind: str
    sock: socket.socket


def _open_stalled(target: Target, uploads: int, headers_only: int, trickles: int) -> list[_Stalled]:
    """Connections that stop: uploads that sent part of their body, headers never finished, and
    uploads that send one byte every second (slower than any deadline allows)."""
    opened = []
    upload = request("POST", TESTERS_PATH, [*api_headers()[:-1], ("Content-Length", "4096")], b'{"agent_number": "4')
    for kind, count, raw in (
        ("upload", uploads, upload),
        ("headers", headers_only, b"GET " + GET_TESTERS.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: "),
        ("trickle", trickles, upload),
    ):
        for _ in range(count):
            sock = socket.create_connection((target.host, target.port), timeout=30)
            sock.sendall(raw)
            opened.append(_Stalled(kind, sock))
    return opened


def _trickle(stalled: list[_Stalled], stop: threading.Event) -> None:
    while not stop.wait(1.0):
        for item in stalled:
            if item.kind == "trickle":
                try:
                    item.sock.send(b"8")
                except OSError:
                    item.kind = "trickle-closed"


def stalled_clients(
    target: Target, read_timeout: float, uploads: int = 48, headers_only: int = 16, trickles: int = 8, normal: int = 200
) -> Check:
    """Connections that stall mid-upload, mid-headers or trickle a byte a second, beside normal
    traffic: the normal requests keep their usual latency, and once the server's read timeout
    passes every stalled upload has its 408 (MOCK408) and every stalled header its closed
    connection; the stalled requests change nothing."""
    check = Check("stalled_clients")
    _latencies(target, 20)  # warm both workers' caches
    before = _latencies(target, normal)
    state = target.snapshot()
    started = time.monotonic()
    stalled = _open_stalled(target, uploads, headers_only, trickles)
    stop = threading.Event()
    dripper = threading.Thread(target=_trickle, args=(stalled, stop), daemon=True)
    dripper.start()
    measuring = time.monotonic()
    during = _latencies(target, normal)
    health = _latencies(target, 20, "/__mock/health", {})
    measured = time.monotonic()
    failures = sum(1 for t in (*during, *health) if t == float("inf"))
    p50_before, p95_before = statistics.median(before), _percentile(before, 0.95)
    p50_during, p95_during = statistics.median(during), _percentile(during, 0.95)
    if failures:
        check.problems.append(f"{failures} normal requests failed beside the stalled ones")
    # "Their usual latency": a frozen worker shows as seconds; the slack is a loaded 2-core CI
    # machine's noise, and p95 leaves its single hiccups out.
    elif p50_during > 3 * p50_before + 0.005 or p95_during > 5 * p95_before + 0.05:
        check.problems.append(
            f"normal latency grew beside stalled clients: p50 {p50_before * 1e3:.2f} -> {p50_during * 1e3:.2f} ms, "
            f"p95 {p95_before * 1e3:.2f} -> {p95_during * 1e3:.2f} ms"
        )
    if measured - started >= read_timeout:
        why = f"stalls opened at {measuring - started:.1f} s, normal traffic done at {measured - started:.1f} s"
        check.problems.append(f"{why}: past the read timeout, so no stall was measured")
    outcomes: Counter[str] = Counter()
    try:
        for item in stalled:
            item.sock.settimeout(max(1.0, read_timeout + 5 - (time.monotonic() - started)))
            answer = read_answer(item.sock, "POST" if item.kind.startswith(("upload", "trickle")) else "GET")
            check.saw(answer)
            kind = item.kind.split("-")[0]
            outcomes[f"{kind}:{answer.status or answer.dropped}"] += 1
            if kind in ("upload", "trickle"):
                check.expect(f"a stalled {kind}", answer, 408, "MOCK408")
            elif answer.status is not None and answer.status != 408:
                check.problems.append(f"a stalled header section answered {answer.status}")
    finally:
        stop.set()
        dripper.join()
        for item in stalled:
            item.sock.close()
    waited = time.monotonic() - started
    if target.snapshot() != state:
        check.problems.append("stalled requests changed the state")
    if waited > read_timeout + 5:
        check.problems.append(f"the stalled requests were answered after {waited:.1f} s (timeout {read_timeout} s)")
    check.figures["beside_a_large_state_load"] = _beside_a_large_state_load(target, check)
    check.figures.update(
        {
            "stalled": {"uploads": uploads, "headers": headers_only, "trickles": trickles},
            "normal_requests": 2 * normal + 20,
            "latency_ms_before": {"p50": round(p50_before * 1e3, 2), "p95": round(p95_before * 1e3, 2)},
            "latency_ms_during": {"p50": round(p50_during * 1e3, 2), "p95": round(p95_during * 1e3, 2)},
            "health_ms_during_p99": round(_percentile(health, 0.99) * 1e3, 2),
            "normal_traffic_seconds": round(measured - measuring, 2),
            "stalled_outcomes": dict(outcomes),
            "all_stalled_settled_after_s": round(waited, 1),
        }
    )
    return check


def _beside_a_large_state_load(target: Target, check: Check, accounts: int = 30_000) -> dict[str, Any]:
    """A control request that takes seconds on purpose (a 1.5 MB state document) runs off the
    workers' event loops: GETs and DELETEs on 4 connections (both workers) keep answering
    beside it. What they may still wait for: the write lock while the load writes (a DELETE on
    the loading worker, a few hundred ms) and the GIL while it parses; never the whole load."""
    doc = default_seed_document(SPEC)
    doc["accounts"] = [{"pod": "in", "sid": f"LOAD{i}", "agents": {"1": []}} for i in range(accounts)]
    raw = json.dumps(doc).encode()
    result: dict[str, Any] = {}

    def load() -> None:
        started = time.monotonic()
        answer = target.control.put("/__mock/state", content=raw, headers={"Content-Type": "application/json"})
        result.update(status=answer.status_code, seconds=round(time.monotonic() - started, 2))

    times: list[float] = []
    deletes: dict[int, str] = {}
    lock = threading.Lock()

    def traffic(n: int) -> None:
        mine: list[float] = []
        outcomes = ""  # this connection's DELETEs: D deleted, N not found
        with httpx.Client(
            base_url=target.url, timeout=10, headers={"api-key": KEY, "Content-Type": "application/json"}
        ) as client:
            while loader.is_alive():
                started = time.perf_counter()
                path = f"/in/v1/LOADING{n}/rcs/agent/48400" if len(mine) % 2 else GET_TESTERS
                try:
                    answer = client.request("DELETE" if len(mine) % 2 else "GET", path)
                    got = (answer.status_code, answer.headers.get("X-Mock-Example"))
                    if not len(mine) % 2:
                        ok = got == (200, "testers")
                    else:
                        ok = got in (DELETED, NOT_FOUND)
                        outcomes += "D" if got == DELETED else "N"
                except httpx.HTTPError:
                    ok = False
                mine.append(time.perf_counter() - started if ok else float("inf"))
        with lock:
            times.extend(mine)
            deletes[n] = outcomes

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(0.05)
    clients = [threading.Thread(target=traffic, args=(n,)) for n in range(4)]
    for t in clients:
        t.start()
    for t in (loader, *clients):
        t.join()
    target.reset()
    failed = sum(1 for t in times if t == float("inf"))
    slowest = max(times) if times else float("inf")
    # The agent is deleted once, then not found, until the load lands and brings it back once.
    for n, outcomes in sorted(deletes.items()):
        if outcomes and not re.fullmatch(r"DN*(?:DN*)?", outcomes):
            check.problems.append(f"beside a large state load, connection {n} deleted the agent as {outcomes}")
    if result.get("status") != 200 or failed or not times or slowest > max(0.25, result.get("seconds", 0) * 0.6):
        check.problems.append(f"beside a large state load ({result}): {failed} failed, the slowest {slowest:.2f} s")
    return {
        **result,
        "accounts": accounts,
        "api_requests": len(times),
        "p50_ms": round(statistics.median(times) * 1e3, 2) if times else None,
        "max_ms": round(slowest * 1e3, 1),
    }


# -- 5. HTTP conformance -----------------------------------------------------------------------------


def _journal_newest(target: Target) -> dict[str, Any]:
    return dict(target.control.get("/__mock/journal?limit=1").json()[0])


def conformance(target: Target) -> Check:
    """The MUSTs of RFC 9110, 9112, 7240 and 8259 the mock touches, each over the wire."""
    check = Check("conformance")
    target.reset()
    state = target.snapshot()
    delete = f"/in/v1/{SID}/rcs/agent/48400"
    h = api_headers

    def send(what: str, raw: bytes, status: int, code: str | None = None) -> Answer:
        answer = check.saw(target.send(raw))
        check.expect(what, answer, status, code)
        return answer

    # RFC 9110 section 9.1: methods are case-sensitive; `delete` is not DELETE.
    for method in ("get", "delete", "Delete", "pOST"):
        path = delete if method.lower() == "delete" else GET_TESTERS
        answer = send(f"method {method}", request(method, path, h()), 405, "RCS405")
        if not answer.header("allow"):
            check.problems.append(f"method {method}: a 405 without Allow")
    # A name with an underscore is not the header with a hyphen (`api_key` is no api-key): dropped.
    underscored = [("Host", "h"), ("api_key", KEY), ("Content-Type", "application/json"), ("Connection", "close")]
    send("api_key with an underscore", request("GET", GET_TESTERS, underscored), 401, "RCS401")
    # Header names are case-insensitive (RFC 9110 section 5.1).
    casings = [("API-KEY", "CONTENT-TYPE"), ("Api-Key", "Content-type"), ("aPi-kEy", "cOnTeNt-TyPe")]
    for key_name, type_name in casings:
        raw = request(
            "GET",
            GET_TESTERS,
            [("Host", "h"), (key_name, KEY), (type_name, "application/json"), ("Connection", "close")],
        )
        send(f"header names {key_name}/{type_name}", raw, 200)
    if target.snapshot() != state:
        check.problems.append("a request with a lower-case method changed the state")
    # A field that may appear once, twice; Host missing or twice (RFC 9112 section 3.2: 400).
    send("api-key twice", request("GET", GET_TESTERS, [*h(), ("api-key", "other")]), 400, "RCS400")
    send("Content-Type twice", request("GET", GET_TESTERS, [*h(), ("Content-Type", "application/json")]), 400, "RCS400")
    send("Host twice", request("GET", GET_TESTERS, [("Host", IN_HOST), *h()]), 400, "RCS400")
    send("no Host", request("GET", GET_TESTERS, h()[1:]), 400, "RCS400")
    http10 = b"GET " + GET_TESTERS.encode() + b" HTTP/1.0\r\napi-key: " + KEY.encode() + b"\r\n\r\n"
    send("HTTP/1.0 without Host", http10, 200)
    # RFC 9112 section 3.2.2: the authority of an absolute-form target wins over Host.
    absolute = f"http://{NA_HOST}/v1/{SID}/rcs/agent/testersbyagent?agent_number=48900"
    send("absolute-form target", request("GET", absolute, [("Host", IN_HOST), *h()[1:]]), 200)
    if _journal_newest(target)["pod"] != "na":
        check.problems.append("an absolute-form target for the NA pod was answered as IN")
    # RFC 7240 section 2: the first of two preferences counts.
    twice = [*h(), ("Prefer", "example=gateway_error"), ("Prefer", "example=rcs_not_enabled")]
    answer = send("Prefer twice", request("GET", GET_TESTERS, twice), 500, "RCS502")
    if answer.header("preference-applied") != "example=gateway_error":
        check.problems.append("Prefer twice: no Preference-Applied for the first")
    # RFC 9110 section 15.5.6: every 405 has Allow, a forced one too.
    forced = send("Prefer code=405", request("DELETE", delete, [*h(), ("Prefer", "code=405")]), 405, "RCS405")
    if forced.header("allow") != "DELETE":
        check.problems.append(f"a forced 405 has Allow {forced.header('allow')!r}, not 'DELETE'")
    # RFC 9110 section 15.5.2: every 401 has WWW-Authenticate.
    unauthorized = send(
        "no api-key", request("GET", GET_TESTERS, [("Host", "h"), ("Connection", "close")]), 401, "RCS401"
    )
    if not unauthorized.header("www-authenticate"):
        check.problems.append("a 401 without WWW-Authenticate")
    # RFC 9110 sections 12.5.1 and 8.4: a 415 says what is accepted; a coded body is refused.
    plain = send(
        "text/plain",
        request("GET", GET_TESTERS, [("Host", "h"), ("api-key", KEY), ("Content-Type", "text/plain")]),
        415,
        "RCS415",
    )
    if plain.header("accept") != "application/json":
        check.problems.append("a 415 without Accept: application/json")
    body = b'{"agent_number": "48900"}'
    coded = [*h()[:-1], ("Content-Encoding", "gzip"), ("Content-Length", str(len(body))), ("Connection", "close")]
    send("Content-Encoding gzip", request("POST", TESTERS_PATH, coded, body), 415, "RCS415")
    # RFC 9110 section 9.3.2: HEAD is GET without the body.
    get = send("GET", request("GET", GET_TESTERS, h()), 200)
    head = send("HEAD", request("HEAD", GET_TESTERS, h()), 200)
    if head.body or head.header("content-length") != get.header("content-length"):
        check.problems.append("HEAD is not GET without its body")
    # RFC 8259: JSON is UTF-8 (a byte order mark may be ignored); names are unique; numbers fit.
    for what, raw_body, status, code in (
        ("UTF-16 JSON", '{"agent_number": "48900"}'.encode("utf-16"), 400, "RCS701"),
        ("UTF-32 JSON", '{"agent_number": "48900"}'.encode("utf-32"), 400, "RCS701"),
        ("latin-1 text", '{"agent_number": "4890é"}'.encode("latin-1"), 400, "RCS701"),
        ("a byte order mark", b'\xef\xbb\xbf{"agent_number": "48900"}', 200, None),
        ("a name twice", b'{"agent_number": "48900", "agent_number": "48400"}', 400, "RCS701"),
        ("a number past a double", b'{"agent_number": "48900", "x": 1e400}', 400, "RCS701"),
        ("NaN", b'{"agent_number": "48900", "x": NaN}', 400, "RCS701"),
    ):
        headers = [*h()[:-1], ("Content-Length", str(len(raw_body))), ("Connection", "close")]
        send(what, request("POST", TESTERS_PATH, headers, raw_body), status, code)
        control = control_headers(("Content-Type", "application/json"), ("Content-Length", str(len(raw_body))))
        if status == 400:
            send(
                f"{what} to the control plane", request("POST", "/__mock/scenarios", control, raw_body), 400, "MOCK400"
            )
    # A Content-Type with a parameter, then another: two values (a comma outside quotes).
    twice_typed = [("Host", "h"), ("api-key", KEY), ("Content-Type", "application/json; charset=utf-8")]
    twice_typed += [("Content-Type", "text/plain"), ("Connection", "close")]
    send("Content-Type with a parameter, twice", request("GET", GET_TESTERS, twice_typed), 400, "RCS400")
    # RFC 9112 section 6.1: a transfer coding the mock does not read is refused, never read as plain.
    coded_transfer = [*h()[:-1], ("Transfer-Encoding", "gzip, chunked"), ("Connection", "close")]
    raw = request("POST", TESTERS_PATH, coded_transfer, chunked(b'{"agent_number": "48900"}'))
    send("Transfer-Encoding: gzip, chunked", raw, 400, "RCS400")
    # A journal filter given twice is refused, as a repeated agent_number is.
    send("a journal filter twice", request("GET", "/__mock/journal?pod=in&pod=zz", control_headers()), 400, "MOCK400")
    # RFC 7240 and a hostile header: 40,000 escaped quotes (80 KB) parse in linear time.
    quotes = send("Prefer of 40,000 escaped quotes", request("GET", GET_TESTERS, h(Prefer='\\"' * 40_000)), 200)
    if quotes.status == 200 and "x-mock-warning" in quotes.headers and len(quotes.headers["x-mock-warning"]) > 2_000:
        check.problems.append("the ignored Prefer comes back in the warning")
    # A spoilt answer keeps the headers its status requires; 204, 205 and 304 may carry no body.
    target.control.post("/__mock/faults", json={"fault": "malformed_body", "times": 3}).raise_for_status()
    spoilt = [
        (
            "a spoilt 401",
            request("GET", GET_TESTERS, [("Host", "h"), ("Connection", "close")]),
            401,
            "www-authenticate",
        ),
        ("a spoilt 405", request("DELETE", delete, [*h(), ("Prefer", "code=405")]), 405, "allow"),
        ("a spoilt 429", request("GET", GET_TESTERS.replace("48900", RATE_LIMITED_AGENT), h()), 429, "retry-after"),
    ]
    for what, raw, status, header in spoilt:
        answer = check.saw(target.send(raw))
        if answer.status != status or not answer.header(header):
            check.problems.append(f"{what}: {answer.status} without {header}")
    for status in (204, 205, 304):
        refused = target.control.post("/__mock/faults", json={"fault": "malformed_body", "params": {"status": status}})
        check.statuses[refused.status_code] += 1
        check.requests += 1
        if refused.status_code != 400:
            check.problems.append(f"a malformed_body fault with status {status} was armed")
    target.reset()
    if target.snapshot() != state:
        check.problems.append("a refused request changed the state")
    return check


# -- 6. echoes -----------------------------------------------------------------------------------------

MARKER = "ZZMARKER4711"


def _echo_requests() -> Iterator[tuple[str, bytes]]:
    """Requests that are refused, each carrying MARKER in the place a refusal could echo."""
    m = MARKER
    h = api_headers
    yield "journal filter value", request("GET", f"/__mock/journal?pod={m}", control_headers())
    yield "journal filter name", request("GET", f"/__mock/journal?{m}=1", control_headers())
    yield "journal limit", request("GET", f"/__mock/journal?limit={m}", control_headers())
    yield "tester id", request("DELETE", f"/__mock/default-account/agents/48900/testers/{m}", control_headers())
    yield "agent number", request("DELETE", f"/__mock/default-account/agents/{m}", control_headers())
    yield "listed account", request("GET", f"/__mock/accounts/in/{m}", control_headers())
    yield "armed id", request("DELETE", "/__mock/scenarios/47114711", control_headers())
    yield "origin", request("POST", "/__mock/reset", control_headers(("Origin", f"https://{m}.example")))
    yield "control path", request("GET", f"/__mock/{m}", control_headers())
    for what, doc in (
        ("scenario name", {"scenario": m}),
        ("match operation", {"scenario": "gateway_error", "match": {"operation": m}}),
        ("unknown key", {"scenario": "gateway_error", m: 1}),
        ("fault kind", {"fault": m}),
        ("a value of the wrong type", {"scenario": "gateway_error", "times": m}),
    ):
        raw = json.dumps(doc).encode()
        path = "/__mock/faults" if "fault" in doc else "/__mock/scenarios"
        headers = control_headers(("Content-Type", "application/json"), ("Content-Length", str(len(raw))))
        yield what, request("POST", path, headers, raw)
    account = json.dumps({"api_keys": [m], "colour": m}).encode()
    headers = control_headers(("Content-Type", "application/json"), ("Content-Length", str(len(account))))
    yield "an api key in a refused account", request("PUT", "/__mock/accounts/in/S", headers, account)
    yield "a huge Prefer", request("GET", GET_TESTERS, h(Prefer="example=" + m * 30_000))
    yield "Prefer code", request("GET", GET_TESTERS, h(Prefer=f"code={m}"))
    yield "a wrong api key", request("GET", GET_TESTERS.replace(SID, "ECHO"), [("Host", "h"), ("api-key", m)])
    yield "Content-Type", request("GET", GET_TESTERS, [("Host", "h"), ("api-key", KEY), ("Content-Type", f"text/{m}")])
    yield "an unknown pod prefix too long to quote", request("GET", f"/{m * 2}/v1/{SID}/rcs/agent/testersbyagent", h())
    yield "a sid with an encoded slash", request("GET", f"/in/v1/{m}%2F{m}/rcs/agent/testersbyagent", h())
    yield "query", request("GET", f"{TESTERS_PATH}?agent_number={m}&agent_number={m}", h())


def echoes(target: Target) -> Check:
    """No refusal ever quotes what it refused: not in its body, not in a header."""
    check = Check("echoes")
    target.control.put("/__mock/accounts/in/ECHO", json={"api_keys": ["the-key"]}).raise_for_status()
    for what, raw in _echo_requests():
        answer = check.saw(target.send(raw))
        if (answer.status is None or answer.status < 400) and "Prefer" not in what:
            check.problems.append(f"{what}: answered {answer.status}, not refused")
        text = answer.body.decode("utf-8", "replace") + " ".join(answer.headers.values())
        if MARKER in text:
            check.problems.append(f"{what}: the refused value comes back ({answer.status})")
    target.reset()
    return check
