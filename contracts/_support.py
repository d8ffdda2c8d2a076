"""What the contract suites share: the target they run against and what they observed.

`contracts` imports only the public faces of the client and the mock.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from kaleyra_rcs import POD_BASE_URLS
from mock_server.core import PODS, SpecIndex, default_seed_document

__all__ = [
    "CONTRACT_API_KEY",
    "CONTRACT_SID",
    "PODS",
    "REPORTS",
    "ROOT",
    "SPEC",
    "Observations",
    "Target",
    "contract_seed",
]

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
SPEC = SpecIndex.load(ROOT / "openapi.yaml")
CONTRACT_API_KEY = "contract-api-key"
CONTRACT_SID = "CONTRACT-SID"
# Every canonical operation of the spec (a variant counts as the operation it is a variant of).
GATED_OPERATIONS = tuple(dict.fromkeys(op.canonical for op in SPEC.operations.values()))


def contract_seed() -> dict[str, Any]:
    """The default seed, with one accepted key for every SID: `ignored_auth` needs a key to refuse."""
    doc = default_seed_document(SPEC)
    doc["default_account"]["api_keys"] = [CONTRACT_API_KEY]
    return doc


def operation_of(method: str, path: str) -> str | None:
    """The canonical operationId a request path and method belong to (pod prefix removed)."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] in PODS:
        parts = parts[1:]
    for op in SPEC.operations.values():
        pattern = [p for p in op.path.split("/") if p]
        if (
            op.method == method.upper()
            and len(pattern) == len(parts)
            and all(a.startswith("{") or a == b for a, b in zip(pattern, parts, strict=True))
        ):
            return op.canonical
    if method.upper() == "DELETE" and parts[-2:] in (["rcs", "agent"],):
        return "deleteAgent"
    return None


@dataclass
class Observations:
    """Every (pod, operation, status, example) the suites saw: the coverage gate's input."""

    seen: set[tuple[str, str, int, str]] = field(default_factory=set)
    two_xx: set[tuple[str, str]] = field(default_factory=set)
    responses: int = 0

    def record(self, pod: str, method: str, path: str, status: int, example: str | None) -> None:
        operation = operation_of(method, path)
        self.responses += 1
        if operation is None:
            return
        if example:
            self.seen.add((pod, operation, status, example))
        if 200 <= status < 300:
            self.two_xx.add((pod, operation))

    def required(self) -> set[tuple[str, str, int, str]]:
        return {
            (pod, op, ex.status, ex.name)
            for pod in PODS
            for op in GATED_OPERATIONS
            for ex in SPEC.operations[op].examples.values()
        }

    def missing(self) -> list[tuple[str, str, int, str]]:
        return sorted(self.required() - self.seen)

    def missing_2xx(self) -> list[tuple[str, str]]:
        return sorted({(pod, op) for pod in PODS for op in GATED_OPERATIONS} - self.two_xx)

    def table(self) -> list[dict[str, Any]]:
        return [
            {
                "pod": pod,
                "operation": op,
                "status": status,
                "example": name,
                "observed": (pod, op, status, name) in self.seen,
            }
            for pod, op, status, name in sorted(self.required())
        ]

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        rows = self.table()
        (folder / "coverage.json").write_text(
            json.dumps({"responses": self.responses, "rows": rows, "missing_2xx": self.missing_2xx()}, indent=2)
        )
        lines = ["| pod | operation | status | example | observed |", "|---|---|---|---|---|"]
        lines += [
            f"| {r['pod']} | {r['operation']} | {r['status']} | {r['example']} | {'yes' if r['observed'] else 'NO'} |"
            for r in rows
        ]
        (folder / "coverage.md").write_text("\n".join(lines) + "\n")


class Target:
    """Where the suites send requests: `inprocess` (the mock, no socket), a URL, or `live`."""

    def __init__(self, spec: str, observations: Observations) -> None:
        self.observations = observations
        self._last_request = 0.0
        self.app: Any = None
        self.live_pod: str | None = None
        if spec == "inprocess":
            from mock_server.core import MemoryStore, StateData, state_validator
            from mock_server.web import create_app

            self.kind = "inprocess"
            seed = StateData.from_document(contract_seed(), state_validator(SPEC))
            self.app = create_app(MemoryStore(seed))
            self.root = "http://kaleyra-mock"
            self.api_key, self.sid = CONTRACT_API_KEY, CONTRACT_SID
        elif spec == "live":
            self.kind = "live"
            self.api_key = os.environ.get("KALEYRA_API_KEY", "")
            self.sid = os.environ.get("KALEYRA_SID", "")
            self.live_pod = (os.environ.get("KALEYRA_POD") or "in").lower()
            if self.live_pod not in PODS:
                raise ValueError(f"KALEYRA_POD must be in or na, not {self.live_pod!r}")
            default = POD_BASE_URLS[self.live_pod]
            self.root = (os.environ.get("KALEYRA_BASE_URL") or default).rstrip("/")
        elif spec.startswith(("http://", "https://")):
            self.kind = "http"
            url = spec.rstrip("/")
            self.root = url[:-3] if url.endswith(("/in", "/na")) else url
            self.api_key, self.sid = CONTRACT_API_KEY, CONTRACT_SID
        else:
            raise ValueError(f"--target is inprocess, live, or an http(s) URL; not {spec!r}")

    def __repr__(self) -> str:
        return f"Target({self.kind}, {self.root})"  # never the key

    @property
    def is_mock(self) -> bool:
        return self.kind != "live"

    @property
    def pods(self) -> tuple[str, ...]:
        return PODS if self.is_mock else (self.live_pod or "in",)

    def base_url(self, pod: str) -> str:
        return self.root if self.kind == "live" else f"{self.root}/{pod}"

    def transport(self) -> httpx.BaseTransport | None:
        return httpx.WSGITransport(app=self.app) if self.app is not None else None

    @property
    def headers(self) -> dict[str, str]:
        return {"api-key": self.api_key, "Content-Type": "application/json"}

    @contextmanager
    def http(self, pod: str, **kwargs: Any) -> Iterator[httpx.Client]:
        """An httpx client on one pod whose every response is recorded for the coverage gate."""

        def record(response: httpx.Response) -> None:
            response.read()
            self.observations.record(
                pod,
                response.request.method,
                urlsplit(str(response.request.url)).path,
                response.status_code,
                self.example_of(response),
            )

        with httpx.Client(
            base_url=self.base_url(pod),
            transport=self.transport(),
            timeout=kwargs.pop("timeout", 10.0),
            event_hooks={"request": [self._pace], "response": [record]},
            **kwargs,
        ) as client:
            yield client

    def _pace(self, request: httpx.Request) -> None:
        """A real pod gets at most KALEYRA_RATE_LIMIT requests a second (default 1), as in make live."""
        if self.kind != "live":
            return
        rate = float(os.environ.get("KALEYRA_RATE_LIMIT") or 1.0)
        if rate > 0:
            wait = self._last_request + 1.0 / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_request = time.monotonic()

    def example_of(self, response: httpx.Response) -> str | None:
        """The mock names its answer in X-Mock-Example; a live answer is named by matching bodies."""
        name: str | None = response.headers.get("X-Mock-Example")
        if name or self.is_mock:
            return name
        try:
            body = response.json()
        except ValueError:
            return None
        for op in SPEC.operations.values():
            for example in op.examples.values():
                if example.status == response.status_code and example.value == body:
                    return example.name
        return None

    # -- mock-only control -------------------------------------------------------------------

    def control(self, method: str, path: str, body: Any = None) -> httpx.Response:
        if not self.is_mock:
            raise RuntimeError("the live API has no control plane")
        with httpx.Client(base_url=self.root, transport=self.transport(), timeout=10.0) as client:
            response = client.request(method, path, json=body)
        response.raise_for_status()
        return response

    def reset(self) -> None:
        """Back to the contract seed, nothing armed, an empty journal (also on a server with its own seed)."""
        self.control("PUT", "/__mock/state", contract_seed())
        self.control("DELETE", "/__mock/scenarios")
        self.control("DELETE", "/__mock/faults")
        self.control("DELETE", "/__mock/journal")
