"""The Flask application: the control plane, and the `Front` that sends it everything else."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from ..core import (
    INVALID_JSON,
    Contracts,
    ControlError,
    MockConfig,
    SpecIndex,
    Store,
    StoreUnavailable,
    is_json_media_type,
    mock_error_body,
    strict_json,
)
from ._api import PodConverter
from ._front import Front, MockHandle, ProxySettings, assemble
from ._http import (
    ConnectionDropped,
    Unreadable,
    WSGIApp,
    crash_response,
    has_body,
    is_loopback_host,
    read_body,
    request_problem,
    wsgi_response,
)

if TYPE_CHECKING:
    from ._api import ApiApp
    from ._proxy import Proxy

__all__ = ["ConnectionDropped", "MockApp", "control_app", "create_app"]

log = logging.getLogger("mock_server")


class MockApp(Flask):
    """The mock in-process: Flask serves the control plane, and `Front` every request.

    Flask's own request machinery (context, routing, response objects) is kept for the control
    plane, where its views and error handlers pay for themselves; the API is a plain WSGI
    callable (`ApiApp`) so that each API request costs only what the engine does.
    """

    front: Front

    @property
    def api(self) -> ApiApp:
        return self.front.api

    @property
    def proxy(self) -> Proxy | None:
        return self.front.proxy

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.front(environ, start_response)

    def runs_long(self, environ: dict[str, Any]) -> bool:
        return self.front.runs_long(environ)

    def _routed_control(self) -> WSGIApp:
        """The control plane's callable, Flask's own, with its routes: added only now, at the first
        control request (`Front` asks once), since werkzeug compiles each of the 32 rules, which was
        15 of the 20 ms of `create_app` (paid per test by `kaleyra_mock`), for apps most of which
        only ever answer the API."""
        if "control" not in self.blueprints:
            self.register_blueprint(_control_blueprint(self.extensions["kaleyra_mock"]))
        return super().wsgi_app


def create_app(
    store: Store | None = None,
    config: MockConfig | None = None,
    *,
    spec: SpecIndex | None = None,
    control_plane: bool = True,
    loopback_hosts_only: bool = False,
    proxy: ProxySettings | None = None,
    contracts: Contracts | None = None,
) -> MockApp:
    """Build the mock. Each call gets its own store unless one is passed in.

    `proxy` with upstreams forwards those pods' API requests (`_proxy.py`); their answers are
    judged by `contracts` (default: the client's reading of the packaged spec, `load_spec()`).

    `loopback_hosts_only` (the server sets it when bound to loopback) refuses control requests
    whose Host names another machine: a page that rebinds its own name to 127.0.0.1 sends no
    Origin with a GET, and would otherwise read the state.
    """
    handle = assemble(store, config, spec=spec, proxy=proxy, contracts=contracts)
    return _flask_app(handle, control_plane=control_plane, loopback_hosts_only=loopback_hosts_only)


def control_app(handle: MockHandle, *, control_plane: bool, loopback_hosts_only: bool) -> WSGIApp:
    """The control plane of parts assembled elsewhere (a server's worker, at its first control
    request): the Flask app `create_app` would make of them, routed."""
    return _flask_app(handle, control_plane=control_plane, loopback_hosts_only=loopback_hosts_only)._routed_control()


def _flask_app(handle: MockHandle, *, control_plane: bool, loopback_hosts_only: bool) -> MockApp:
    app = MockApp("mock_server")
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # OPTIONS is a method the control plane does not take
    app.url_map.converters["pod"] = PodConverter
    app.url_map.merge_slashes = False
    app.url_map.redirect_defaults = False
    app.extensions["kaleyra_mock"] = handle
    app.front = Front(handle, app._routed_control)
    _register_error_handlers(app, enabled=control_plane, loopback_hosts_only=loopback_hosts_only)
    return app


def _register_error_handlers(app: Flask, *, enabled: bool, loopback_hosts_only: bool) -> None:
    """Flask sees only control paths: its refusals use MOCK codes and stay out of the API journal.
    They come before routing, so a path or method the control plane lacks is refused alike."""

    def refuse_method(allow: list[str]) -> Response:
        response = _control_error(ControlError(405, "this method is not allowed on this control path (see Allow)"))
        response.headers["Allow"] = ", ".join(allow)
        return response

    @app.before_request
    def refuse_unreadable() -> Response | None:
        environ = request.environ
        problem = request_problem(environ)
        if problem is not None:
            return _control_error(ControlError(problem.status, problem.detail))
        method = environ.get("REQUEST_METHOD", "")
        if method != method.upper():  # RFC 9110 section 9.1: methods are case-sensitive; werkzeug upper-cases them
            allow = sorted(app.url_map.bind_to_environ(environ).allowed_methods())
            if allow:  # an unknown path stays a 404
                return refuse_method(allow)
        refused = _browser_guard(loopback_hosts_only)
        if refused is not None:
            return _control_error(refused)
        if not enabled:
            body = mock_error_body(
                "MOCK403",
                "Control plane disabled",
                "CONTROL_PLANE_DISABLED",
                "the server is bound to a non-loopback address; start it with --control-plane to enable",
            )
            return Response(body, status=403, content_type="application/json")
        return None

    @app.errorhandler(NotFound)
    def not_found(_exc: NotFound) -> Response:
        return _control_error(ControlError(404, "no control operation at this path (see /__mock/openapi.yaml)"))

    @app.errorhandler(MethodNotAllowed)
    def method_not_allowed(exc: MethodNotAllowed) -> Response:
        return refuse_method(sorted(exc.valid_methods or ()))

    @app.errorhandler(HTTPException)
    def unreadable(exc: HTTPException) -> Response:
        return _control_error(ControlError(exc.code or 400, str(exc.description or exc.name)))

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable) -> Response:
        # Redis down or too slow: nothing was changed; the next control request tries again.
        log.warning("mock_server: %s %s answered 503: %s", request.method, request.path, exc)
        body = mock_error_body("MOCK503", "Store unavailable", "STORE_UNAVAILABLE", str(exc))
        return Response(body, status=503, content_type="application/json", headers={"Retry-After": "1"})

    @app.errorhandler(Exception)
    def crashed(exc: Exception) -> Response:
        # A bug in the mock, never a scenario: say so in the envelope, keep the traceback in the log.
        log.exception("mock_server: unhandled error on %s %s", request.method, request.path)
        status, headers, body = wsgi_response(crash_response(exc), request.environ)
        return Response(body, status=status, headers=headers)


# -- the control plane ---------------------------------------------------------------------


def _json(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc), status=status, content_type="application/json")


def _control_error(exc: ControlError) -> Response:
    constant = {
        403: "FORBIDDEN",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        408: "REQUEST_TIMEOUT",
        413: "TOO_LARGE",
        415: "UNSUPPORTED_MEDIA_TYPE",
    }.get(exc.status, "INVALID_CONTROL_REQUEST")
    body = mock_error_body(f"MOCK{exc.status}", "Control request refused", constant, exc.message)
    return Response(body, status=exc.status, content_type="application/json")


def _body() -> Any:
    try:
        raw = read_body(request.environ)
    except Unreadable as exc:
        raise ControlError(exc.status, exc.detail) from None
    doc = strict_json(raw)
    if doc is INVALID_JSON:
        raise ControlError(400, "the body must be a JSON document (UTF-8, no NaN, not nested absurdly deep)")
    return doc


# RFC 6454 section 6.2: an origin is scheme "://" host [":" port], and nothing else.
_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::[0-9]{1,5})?", re.ASCII)


def _is_loopback_origin(origin: str) -> bool:
    """Only a page served from this machine has a loopback host; `null` (a sandboxed or file
    page) is not one, nor is a name that merely starts like one."""
    match = _ORIGIN.fullmatch(origin)
    return match is not None and is_loopback_host(match.group(1))


def _browser_guard(loopback_hosts_only: bool) -> ControlError | None:
    """A web page must not steer the mock. Browsers send Origin with every write, and only a
    loopback origin is welcome; and a body must be `application/json`, which a page can send
    only after a CORS preflight that the mock never grants. Either barrier stops a page alone.
    A page that rebinds its own host name to 127.0.0.1 is same-origin, sends no Origin on a
    GET, and names its own host in Host: on a loopback server only loopback hosts are read."""
    environ = request.environ
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and not _is_loopback_origin(origin.strip()):
        return ControlError(403, "requests from a web page are refused; only loopback origins may steer the mock")
    if loopback_hosts_only and not _is_loopback_origin("http://" + (environ.get("HTTP_HOST") or "").strip()):
        return ControlError(403, "the control plane of a loopback server answers only to a loopback Host")
    writes = environ.get("REQUEST_METHOD") in ("POST", "PUT", "PATCH", "DELETE")
    if writes and has_body(environ) and not is_json_media_type(environ.get("CONTENT_TYPE") or ""):
        return ControlError(415, "a control request with a body sends Content-Type: application/json")
    return None


# The dashboard's page and its three files: nothing inline, nothing from elsewhere, never framed.
_UI_FILES = {
    "ui": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "app.css": ("app.css", "text/css; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
}
_UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _ui_files() -> dict[str, tuple[bytes, str]]:
    """Read from the package data once per app, at its first control request (when its routes are
    added); a dashboard's page loads never read the disk."""
    folder = resources.files("mock_server.web").joinpath("ui")
    return {key: (folder.joinpath(name).read_bytes(), kind) for key, (name, kind) in _UI_FILES.items()}


def _control_blueprint(handle: MockHandle) -> Blueprint:
    bp = Blueprint("control", __name__, url_prefix="/__mock")
    cp = handle.control
    ui = _ui_files()

    def ui_response(key: str) -> Response:
        body, kind = ui[key]
        return Response(body, content_type=kind, headers=_UI_HEADERS)

    @bp.errorhandler(ControlError)
    def refused(exc: ControlError) -> Response:
        return _control_error(exc)

    route = bp.route

    @route("/health", methods=["GET"])
    def health() -> Response:
        doc = cp.health()
        return _json(doc, 200 if doc["status"] == "ok" else 503)

    @route("/openapi.yaml", methods=["GET"])
    def control_spec() -> Response:
        return Response(cp.document_bytes, content_type="application/yaml")

    @route("/ui", methods=["GET"])
    def dashboard() -> Response:
        return ui_response("ui")

    @route("/ui/<asset>", methods=["GET"])
    def dashboard_asset(asset: str) -> Response:
        if asset == "ui" or asset not in ui:
            raise ControlError(404, "the dashboard has app.js, app.css and favicon.svg only")
        return ui_response(asset)

    @route("/examples", methods=["GET"])
    def list_examples() -> Response:
        return _json(cp.examples())

    @route("/reset", methods=["POST"])
    def reset() -> Response:
        return _json(cp.reset())

    @route("/state", methods=["GET"])
    def get_state() -> Response:
        return _json(cp.get_state())

    @route("/state", methods=["PUT"])
    def put_state() -> Response:
        return _json(cp.put_state(_body()))

    @route("/default-account", methods=["GET"])
    def get_default_account() -> Response:
        return _json(cp.get_default_account())

    @route("/default-account", methods=["PUT"])
    def put_default_account() -> Response:
        return _json(cp.put_default_account(_body()))

    @route("/default-account", methods=["DELETE"])
    def delete_default_account() -> Response:
        return _json(cp.delete_default_account())

    @route("/default-account/agents/<agent_number>", methods=["PUT"])
    def put_default_agent(agent_number: str) -> Response:
        return _json(cp.put_agent(None, None, agent_number, _body()))

    @route("/default-account/agents/<agent_number>", methods=["DELETE"])
    def remove_default_agent(agent_number: str) -> Response:
        return _json(cp.remove_agent(None, None, agent_number))

    @route("/default-account/agents/<agent_number>/testers", methods=["POST"])
    def add_default_tester(agent_number: str) -> Response:
        return _json(cp.add_tester(None, None, agent_number, _body()), 201)

    @route("/default-account/agents/<agent_number>/testers/<tester_id>", methods=["DELETE"])
    def remove_default_tester(agent_number: str, tester_id: str) -> Response:
        return _json(cp.remove_tester(None, None, agent_number, tester_id))

    @route("/accounts/<pod:pod>/<sid>/agents/<agent_number>/testers/<tester_id>", methods=["DELETE"])
    def remove_tester(pod: str, sid: str, agent_number: str, tester_id: str) -> Response:
        return _json(cp.remove_tester(pod, sid, agent_number, tester_id))

    @route("/accounts/<pod:pod>/<sid>", methods=["GET"])
    def get_account(pod: str, sid: str) -> Response:
        return _json(cp.get_account(pod, sid))

    @route("/accounts/<pod:pod>/<sid>", methods=["PUT"])
    def put_account(pod: str, sid: str) -> Response:
        return _json(cp.put_account(pod, sid, _body()))

    @route("/accounts/<pod:pod>/<sid>", methods=["DELETE"])
    def delete_account(pod: str, sid: str) -> Response:
        return _json(cp.delete_account(pod, sid))

    @route("/accounts/<pod:pod>/<sid>/agents/<agent_number>", methods=["PUT"])
    def put_agent(pod: str, sid: str, agent_number: str) -> Response:
        return _json(cp.put_agent(pod, sid, agent_number, _body()))

    @route("/accounts/<pod:pod>/<sid>/agents/<agent_number>", methods=["DELETE"])
    def remove_agent(pod: str, sid: str, agent_number: str) -> Response:
        return _json(cp.remove_agent(pod, sid, agent_number))

    @route("/accounts/<pod:pod>/<sid>/agents/<agent_number>/testers", methods=["POST"])
    def add_tester(pod: str, sid: str, agent_number: str) -> Response:
        return _json(cp.add_tester(pod, sid, agent_number, _body()), 201)

    @route("/scenarios", methods=["GET"])
    def list_scenarios() -> Response:
        return _json(cp.list_armed("scenario"))

    @route("/scenarios", methods=["POST"])
    def arm_scenario() -> Response:
        return _json(cp.arm_scenario(_body()), 201)

    @route("/scenarios", methods=["DELETE"])
    def disarm_scenarios() -> Response:
        return _json(cp.disarm("scenario", None))

    @route("/scenarios/<int:armed_id>", methods=["DELETE"])
    def disarm_scenario(armed_id: int) -> Response:
        return _json(cp.disarm("scenario", armed_id))

    @route("/faults", methods=["GET"])
    def list_faults() -> Response:
        return _json(cp.list_armed("fault"))

    @route("/faults", methods=["POST"])
    def arm_fault() -> Response:
        return _json(cp.arm_fault(_body()), 201)

    @route("/faults", methods=["DELETE"])
    def disarm_faults() -> Response:
        return _json(cp.disarm("fault", None))

    @route("/faults/<int:armed_id>", methods=["DELETE"])
    def disarm_fault(armed_id: int) -> Response:
        return _json(cp.disarm("fault", armed_id))

    @route("/journal", methods=["GET"])
    def journal() -> Response:
        if any(len(request.args.getlist(name)) > 1 for name in request.args):
            raise ControlError(400, "a journal filter may appear once")
        return _json(cp.journal(request.args.to_dict()))

    @route("/journal", methods=["DELETE"])
    def clear_journal() -> Response:
        return _json(cp.clear_journal())

    return bp
