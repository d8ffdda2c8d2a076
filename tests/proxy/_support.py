"""Helpers of the proxy's tests: real servers on loopback, what a proxy must pass on, raw bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from mock_server.core import HOP_BY_HOP
from mock_server.testing import ServerProcess, start_server
from tests._spec import Spec

SAMPLE_TESTERS = Spec.load().examples("getTestersByAgent")["testers"].value  # the documented sample

SID = "XXXXX6913850XXXX"
KEY = "XXXXX3b8497f58a94e84b671aca43XXXX"
HEADERS = {"api-key": KEY, "Content-Type": "application/json"}
PROXY_OWN = frozenset({"x-mock-source", "x-mock-violations", "x-mock-example"})


@dataclass
class Running:
    """A server and the file its stderr goes to (read by the tests that look for secrets)."""

    server: ServerProcess
    stderr: Path

    @property
    def url(self) -> str:
        return self.server.url

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


@contextmanager
def running(args: list[str], folder: Path, name: str) -> Iterator[Running]:
    stderr = folder / f"{name}.stderr"
    with stderr.open("w") as err:
        server = start_server(args, stderr=err)
        try:
            yield Running(server, stderr)
        finally:
            server.stop()


def seed_file(folder: Path) -> Path:
    """Listed keys only: a request without KEY is refused by the upstream, so the key must pass through."""
    agents = {"48900": SAMPLE_TESTERS, "48400": [], "48401": []}
    path = folder / "seed.json"
    account = {"rcs_enabled": True, "api_keys": [KEY], "agents": agents}
    path.write_text(json.dumps({"default_account": account, "accounts": [{"pod": "*", "sid": SID, **account}]}))
    return path


def end_to_end(headers: httpx.Headers) -> list[tuple[str, str]]:
    """An answer's headers minus hop-by-hop ones and the mocks' own: what a proxy must pass on."""
    return [(k.lower(), v) for k, v in headers.multi_items() if k.lower() not in HOP_BY_HOP | PROXY_OWN]


def violations(response: httpx.Response) -> list[str]:
    value = response.headers["x-mock-violations"]
    return [item.strip() for item in value.split(", ")] if value else []


def raw_get(url: str, headers: dict[str, str] | None = None) -> tuple[httpx.Response, bytes]:
    """The answer and its body exactly as it came off the wire (no Content-Encoding undone)."""
    with httpx.Client(timeout=20) as client, client.stream("GET", url, headers=headers or HEADERS) as response:
        return response, b"".join(response.iter_raw())


def journal(url: str, **params: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{url}/__mock/journal", params=params, timeout=10)
    assert answer.status_code == 200
    entries: list[dict[str, object]] = answer.json()
    return entries
