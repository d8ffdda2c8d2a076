"""How exposed the mock is: a non-loopback bind warns and turns the control plane off unless
`--control-plane` says otherwise, and no response ever grants a web page cross-origin access.

The bind is checked through `main()` with serving and the port probe replaced, so nothing
ever listens on a non-loopback address; the default loopback bind is tests/server/test_server.py's.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import mock_server._cli as cli
import mock_server.web._server as web_server
from mock_server.core import SpecIndex
from mock_server.testing import start_server
from mock_server.web import create_app

FAKE_PORT = 54321
WARNING = "kaleyra-mock: WARNING: bound to {host}, reachable from other machines; control plane "
FOREIGN = {"Origin": "https://evil.example"}
API_HEADERS = {"api-key": "k", "Content-Type": "application/json", **FOREIGN}
TESTERS = "/in/v1/S1/rcs/agent/testersbyagent?agent_number=48900"
PREFLIGHT = {**FOREIGN, "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "api-key"}
TIMEOUT = 10.0
SPEC = SpecIndex.load()


# -- the command line: a non-loopback bind -----------------------------------------------------


@dataclass
class Launch:
    """What `main()` would have done: the port it probed, what it served with, what it printed."""

    rc: int
    out: str
    err: str
    claimed: list[tuple[str, int]] = field(default_factory=list)
    served: list[dict[str, Any]] = field(default_factory=list)

    @property
    def settings(self) -> web_server.WorkerSettings:
        assert len(self.served) == 1, self.served
        settings = self.served[0]["settings"]
        assert isinstance(settings, web_server.WorkerSettings)
        return settings


@pytest.fixture
def launch(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Launch]]:
    """Runs `main(argv)` with `_claim_port` and `serve` replaced by recorders: nothing binds."""
    previous_sigterm = signal.getsignal(signal.SIGTERM)

    def run(*argv: str) -> Launch:
        claimed: list[tuple[str, int]] = []
        served: list[dict[str, Any]] = []

        def fake_claim(host: str, port: int) -> int:
            claimed.append((host, port))
            return FAKE_PORT

        def fake_serve(settings: web_server.WorkerSettings, **kwargs: Any) -> None:
            served.append({"settings": settings, **kwargs})

        monkeypatch.setattr(cli, "_claim_port", fake_claim)
        monkeypatch.setattr(web_server, "serve", fake_serve)
        rc = cli.main(["--port", "0", "--workers", "1", *argv])
        captured = capsys.readouterr()
        return Launch(rc, captured.out, captured.err, claimed, served)

    yield run
    signal.signal(signal.SIGTERM, previous_sigterm)  # main() installs its own


def test_cli__non_loopback_host_warns_and_disables_the_control_plane(launch: Callable[..., Launch]) -> None:
    result = launch("--host", "0.0.0.0")
    assert result.rc == 0, result.err
    assert result.err.strip() == WARNING.format(host="0.0.0.0") + "disabled"
    assert result.settings.control_plane is False
    assert result.served[0]["host"] == "0.0.0.0"
    assert result.served[0]["port"] == FAKE_PORT
    assert result.claimed == [("0.0.0.0", 0)]
    assert "  control plane: disabled" in result.out.splitlines()
    assert f"  IN pod:        http://0.0.0.0:{FAKE_PORT}/in" in result.out.splitlines()
    assert "/__mock/" not in result.out


def test_cli__non_loopback_host_with_control_plane_flag_warns_and_enables_it(launch: Callable[..., Launch]) -> None:
    result = launch("--host", "0.0.0.0", "--control-plane")
    assert result.rc == 0, result.err
    assert result.err.strip() == WARNING.format(host="0.0.0.0") + "ENABLED by --control-plane"
    assert result.settings.control_plane is True
    assert f"  control plane: http://0.0.0.0:{FAKE_PORT}/__mock/" in result.out.splitlines()
    assert "control plane: disabled" not in result.out


def test_cli__ipv6_wildcard_host_warns_and_disables_the_control_plane(launch: Callable[..., Launch]) -> None:
    result = launch("--host", "::")
    assert result.rc == 0, result.err
    assert result.err.strip() == WARNING.format(host="::") + "disabled"
    assert result.settings.control_plane is False
    assert result.served[0]["host"] == "::"
    assert f"  IN pod:        http://[::]:{FAKE_PORT}/in" in result.out.splitlines()
    assert "  control plane: disabled" in result.out.splitlines()


def test_cli__loopback_host_does_not_warn_and_keeps_the_control_plane(launch: Callable[..., Launch]) -> None:
    result = launch("--host", "127.0.0.1")
    assert result.rc == 0, result.err
    assert "WARNING" not in result.err
    assert result.settings.control_plane is True


# -- CORS: off, in-process and over a socket ---------------------------------------------------

Send = Callable[[str, str, dict[str, str]], tuple[int, dict[str, str]]]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = start_server(("--workers", "1"))
    try:
        yield server.url
    finally:
        server.stop()


def _inprocess() -> Send:
    client = create_app().test_client()

    def send(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        response = client.open(path, method=method, headers=headers)
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}

    return send


def _over_socket(url: str) -> Send:
    def send(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        response = httpx.request(method, url + path, headers=headers, timeout=TIMEOUT)
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}

    return send


@pytest.fixture(params=["inprocess", "socket"])
def send(request: pytest.FixtureRequest) -> Send:
    if request.param == "inprocess":
        return _inprocess()
    return _over_socket(request.getfixturevalue("server_url"))


def _cors_headers(headers: dict[str, str]) -> list[str]:
    return [name for name in headers if name.startswith("access-control-")]


def test_cors__api_answers_a_foreign_origin_without_granting_it(send: Send) -> None:
    status, headers = send("GET", TESTERS, API_HEADERS)
    assert status == 200  # Origin plays no part in the API
    assert _cors_headers(headers) == []


@pytest.mark.parametrize(
    ("path", "status", "allow"),
    [
        # OPTIONS is no method of an API path: its 405, naming the methods the path takes
        ("/in/v1/S1/rcs/agent/48400", 405, SPEC.allow(SPEC.operations["deleteAgent"].path)),
        ("/na/v1/S1/rcs/agent/testersbyagent", 405, SPEC.allow(SPEC.operations["getTestersByAgent"].path)),
        ("/__mock/reset", 403, None),  # a foreign Origin is refused before any routing
    ],
)
def test_cors__preflight_is_not_granted(send: Send, path: str, status: int, allow: str | None) -> None:
    answered, headers = send("OPTIONS", path, PREFLIGHT)
    assert (answered, headers.get("allow")) == (status, allow)
    assert _cors_headers(headers) == []


def test_cors__control_plane_refuses_a_foreign_origin_without_granting_it(send: Send) -> None:
    status, headers = send("POST", "/__mock/reset", FOREIGN)
    assert status == 403
    assert _cors_headers(headers) == []
