"""The mock's parts, and where each request goes: the one dispatcher, with no Flask in it.

`assemble` builds what a mock is (engine, control plane, API callable, proxy) on one store;
`Front` sends each request to the control plane, the proxy or the API. The control plane is
the only part served by Flask, and `Front` builds it at its first request: a server's worker
answers the API without importing Flask at all (about 60 ms of every start, with Jinja and
Click), and `create_app` hands `Front` its own Flask routes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import (
    DEFAULT_CASSETTE_LIMIT,
    Contracts,
    ControlPlane,
    Engine,
    Judge,
    MemoryStore,
    MockConfig,
    SpecIndex,
    StateData,
    Store,
    default_seed_document,
    state_validator,
)
from ._api import ApiApp
from ._http import WSGIApp, crash_response, is_control_path, route_path, status_line, wsgi_response

if TYPE_CHECKING:
    from ._proxy import Proxy

__all__ = ["DEFAULT_UPSTREAM_TIMEOUT", "Front", "MockHandle", "ProxySettings", "assemble"]

DEFAULT_UPSTREAM_TIMEOUT = 30.0

log = logging.getLogger("mock_server")


@dataclass(frozen=True)
class ProxySettings:
    """Where each pod's requests go, and what is kept of them (see `kaleyra-mock --help`)."""

    upstreams: Mapping[str, str] = field(default_factory=dict)  # pod -> base URL
    ca_file: str | None = None
    timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    record: str | None = None
    record_limit: int = DEFAULT_CASSETTE_LIMIT
    keep_personal_data: bool = False


@dataclass(frozen=True)
class MockHandle:
    """What tests and the plugin reach through `app.extensions["kaleyra_mock"]`."""

    engine: Engine
    control: ControlPlane
    store: Store
    spec: SpecIndex
    config: MockConfig
    api: ApiApp
    proxy: Proxy | None = None


def assemble(
    store: Store | None,
    config: MockConfig | None,
    *,
    spec: SpecIndex | None = None,
    proxy: ProxySettings | None = None,
    contracts: Contracts | None = None,
) -> MockHandle:
    """One mock's parts on one store (a fresh `MemoryStore` unless one is passed in).

    `proxy` with upstreams forwards those pods' API requests (`_proxy.py`); their answers are
    judged by `contracts` (default: the client's reading of the packaged spec, `load_spec()`)."""
    spec = spec or SpecIndex.load()
    if store is None:
        store = MemoryStore(StateData.from_document(default_seed_document(spec), state_validator(spec)))
    config = config or MockConfig()
    engine = Engine(spec, store, config)
    api = ApiApp(engine, spec, config.default_pod)
    forwarder = None
    if proxy is not None and proxy.upstreams:
        from ._proxy import Proxy  # httpx, ssl and certifi: only for a server that forwards

        if contracts is None:
            from kaleyra_rcs import load_spec

            contracts = load_spec()
        judge = Judge(spec, contracts, api.router.route)
        forwarder = Proxy(
            proxy, spec, judge, store, default_pod=config.default_pod, journal=config.journal, render=engine.render
        )
    control = ControlPlane(spec, store, config, proxy_health=forwarder.health if forwarder is not None else None)
    return MockHandle(engine, control, store, spec, config, api, forwarder)


class Front:
    """Every request of one mock: a control path to the control plane, a proxied pod's request
    to the proxy, anything else to the API callable (which answers every 404 and 405 of its own).

    `control` makes the control plane's WSGI callable; it is called once, at the first control
    request, and again after a failure, which is answered with the mock's 500 envelope (it runs
    outside any handler of the control plane). Requests that arrive together with the first wait
    for it: none meets a half-built control plane.
    """

    def __init__(self, handle: MockHandle, control: Callable[[], WSGIApp]) -> None:
        self.api = handle.api
        self.proxy = handle.proxy
        self._make_control = control
        self._control: WSGIApp | None = None
        self._starting = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if is_control_path(route_path(environ)):
            control = self._control
            if control is None:
                try:
                    control = self._start_control()
                except Exception as exc:  # a bug (the package's dashboard files unreadable): the envelope
                    log.exception("mock_server: the control plane could not be started")
                    status, headers, body = wsgi_response(crash_response(exc), environ)
                    start_response(status_line(status), headers)
                    return body
            return control(environ, start_response)
        if self.proxy is not None and self.proxy.takes(environ):
            return self.proxy(environ, start_response)
        return self.api(environ, start_response)

    def _start_control(self) -> WSGIApp:
        with self._starting:
            if self._control is None:  # only once it is whole: a request seeing it finds every route
                self._control = self._make_control()
            return self._control

    def runs_long(self, environ: dict[str, Any]) -> bool:
        """Whether a request may take long (a large state document, a journal read of many entries,
        an upstream's answer): the one place a server asks, to keep such requests off its event loop."""
        if is_control_path(route_path(environ)):
            return True
        return self.proxy is not None and self.proxy.takes(environ)
