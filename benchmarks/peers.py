"""The mocks a user of this API would pick instead, started the way their docs start them, so
`make bench` measures them side by side with ours: Prism 5.14 on this API's openapi.yaml,
WireMock 3.13 (standalone) with one stub answering the documented testers body, once with its
default settings and once tuned for speed (no request journal, no request logging, asynchronous
responses, 64 container threads), and Mockoon CLI 9.9 on an environment it imports from
openapi.yaml. Mockoon answers GET testers with a body it builds from the schema (empty strings,
a random `carrierid` and `override_dcs_check` from its faker templates), not the documented
example, and without checking `api-key`.

Both come from the npm registry, pinned in benchmarks/peers/package-lock.json
(`make bench-peers` runs `npm ci` there); WireMock needs a Java runtime (Debian:
`apt-get install openjdk-17-jre-headless`). A peer that is missing is skipped with a note.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from mock_server.core import SpecIndex

__all__ = ["PEERS", "Peer", "missing"]

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "benchmarks" / "peers" / "node_modules"
PRISM = MODULES / ".bin" / "prism"
WIREMOCK_JAR = MODULES / "wiremock" / "build" / "wiremock-standalone-3.13.2.jar"
MOCKOON = MODULES / ".bin" / "mockoon-cli"
WIREMOCK_TUNED = ["--no-request-journal", "--disable-request-logging", "--async-response-enabled", "true"]
WIREMOCK_TUNED += ["--container-threads", "64"]
INSTALL = "run `make bench-peers` (npm ci in benchmarks/peers)"

# (name, path to GET testers on it, start(port, scratch folder))
Peer = tuple[str, str, Callable[[int, Path], "subprocess.Popen[bytes]"]]


def _popen(cmd: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def start_prism(port: int, _scratch: Path) -> subprocess.Popen[bytes]:
    """`prism mock openapi.yaml`, its defaults (request validation and logging on)."""
    return _popen([str(PRISM), "mock", str(ROOT / "openapi.yaml"), "--host", "127.0.0.1", "--port", str(port)])


def _wiremock(port: int, root: Path, extra: list[str]) -> subprocess.Popen[bytes]:
    body = SpecIndex.load().example("getTestersByAgent", "testers").body.decode()
    stub = {
        "request": {"method": "GET", "urlPath": "/in/v1/BENCH/rcs/agent/testersbyagent"},
        "response": {"status": 200, "body": body, "headers": {"Content-Type": "application/json"}},
    }
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    (root / "mappings" / "testers.json").write_text(json.dumps(stub))
    java = shutil.which("java") or "java"
    cmd = [java, "-jar", str(WIREMOCK_JAR), "--port", str(port), "--bind-address", "127.0.0.1"]
    return _popen([*cmd, "--root-dir", str(root), "--disable-banner", *extra])


def start_wiremock(port: int, scratch: Path) -> subprocess.Popen[bytes]:
    """WireMock standalone, its defaults (request journal on), one stub with the same body."""
    return _wiremock(port, scratch / "wiremock", [])


def start_wiremock_tuned(port: int, scratch: Path) -> subprocess.Popen[bytes]:
    """The same WireMock and stub, tuned for speed (`WIREMOCK_TUNED`)."""
    return _wiremock(port, scratch / "wiremock-tuned", WIREMOCK_TUNED)


def start_mockoon(port: int, scratch: Path) -> subprocess.Popen[bytes]:
    """`mockoon-cli import` of openapi.yaml, then `mockoon-cli start` on it, logging off (`-X`).

    The import (about half a second) runs here, so it counts in the peer's time to its first 200."""
    env = scratch / "mockoon-env.json"
    if not env.exists():
        cmd = [str(MOCKOON), "import", "-i", str(ROOT / "openapi.yaml"), "-o", str(env)]
        subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=60, check=True)
    return _popen([str(MOCKOON), "start", "-d", str(env), "-p", str(port), "-l", "127.0.0.1", "-X"])


PEERS: tuple[Peer, ...] = (
    ("prism", "/v1/BENCH/rcs/agent/testersbyagent?agent_number=48900", start_prism),
    ("wiremock", "/in/v1/BENCH/rcs/agent/testersbyagent?agent_number=48900", start_wiremock),
    ("wiremock_tuned", "/in/v1/BENCH/rcs/agent/testersbyagent?agent_number=48900", start_wiremock_tuned),
    ("mockoon", "/v1/BENCH/rcs/agent/testersbyagent?agent_number=48900", start_mockoon),
)


def missing(name: str) -> str | None:
    """Why a peer cannot run here, or None."""
    if name == "prism" and not PRISM.exists():
        return f"Prism is not installed: {INSTALL}"
    if name == "mockoon" and not MOCKOON.exists():
        return f"Mockoon CLI is not installed: {INSTALL}"
    if name in ("wiremock", "wiremock_tuned"):
        if not WIREMOCK_JAR.exists():
            return f"WireMock is not installed: {INSTALL}"
        if shutil.which("java") is None:
            return "WireMock needs Java: apt-get install openjdk-17-jre-headless"
    return None
