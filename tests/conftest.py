"""Fixtures the test modules share: the walked spec, the mock's index and seed, the request headers.

The mock's plugin (`mock_server.pytest_plugin`, loaded through its entry point) already gives
`kaleyra_mock`, `kaleyra_client`, `kaleyra_async_client` and `kaleyra_mock_server`; nothing here
takes one of those names.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from mock_server.core import SpecIndex, StateData, default_seed_document, state_validator
from mock_server.web import create_app
from tests._redis import RedisServer
from tests._spec import Spec

_SPEC = Spec.load()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "time_budget(seconds): fail a test of the module that runs longer")


@pytest.fixture(scope="session")
def spec() -> Spec:
    """The top-level openapi.yaml, walked by the tests' own walker (not the mock's index)."""
    return _SPEC


@pytest.fixture(scope="session")
def spec_index() -> SpecIndex:
    """The mock's own index of the same file: what the mock serves from."""
    return SpecIndex.load()


@pytest.fixture
def seed_document(spec_index: SpecIndex) -> dict[str, Any]:
    """The mock's default seed as a document (fresh per test: a test may edit it)."""
    return default_seed_document(spec_index)


@pytest.fixture
def seed(spec_index: SpecIndex, seed_document: dict[str, Any]) -> StateData:
    """The default seed loaded the way the mock loads one, validated against the state schema."""
    return StateData.from_document(seed_document, state_validator(spec_index))


@pytest.fixture
def headers(spec: Spec) -> dict[str, str]:
    """What every test request sends unless it says otherwise: the spec's mandatory headers."""
    return spec.request_headers()


@pytest.fixture
def client() -> FlaskClient:
    """The mock in process: a fresh app, and so a fresh in-memory store, per test."""
    return create_app().test_client()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (Debian's; the test fails naming it where missing)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own: tests on the one server never see each other."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def anyio_backend() -> str:
    """The clients are written against asyncio; trio is not one of their backends."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _time_budget(request: pytest.FixtureRequest) -> Iterator[None]:
    """A watchdog for the modules marked `time_budget`: a test that hangs fails instead of blocking the run."""
    marker = request.node.get_closest_marker("time_budget")
    if marker is None:
        yield
        return
    seconds = float(marker.args[0])

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"test ran longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
