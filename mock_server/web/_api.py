"""The API as one plain WSGI callable, routed from the operations of openapi.yaml.

There is one way an API request is answered: match the path against a werkzeug `Map` built
from `SpecIndex`, read it into an `ApiRequest`, hand it to the `Engine`, write the
`ApiResponse`. 404, 405, 408, 413 and unreadable encodings take the same road. A path added to
openapi.yaml is served with no change here.
"""

from __future__ import annotations

import functools
import logging
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, MapAdapter, RequestRedirect, Rule

from ..core import (
    PODS,
    ApiRequest,
    ApiResponse,
    Engine,
    Operation,
    Pod,
    Replayer,
    SpecIndex,
    StoreUnavailable,
    resolve_pod,
)
from ._http import (
    Unreadable,
    api_key,
    crash_response,
    parse_query,
    read_body,
    request_problem,
    route_path,
    status_line,
    wsgi_response,
)

__all__ = ["ApiApp", "PodConverter", "SpecRouter", "api_rules"]

log = logging.getLogger("mock_server")

_TEMPLATE = re.compile(r"\{(\w+)\}")
_POD_PREFIX = "pod_prefix"
_CACHED_PATH = 512


class PodConverter(BaseConverter):
    """A pod's name as a path segment: the /in and /na prefixes, and the control plane's accounts."""

    regex = "(?:" + "|".join(re.escape(pod) for pod in PODS) + ")"


def api_rules(spec: SpecIndex) -> tuple[dict[str, dict[str, str]], dict[str, type[BaseConverter]]]:
    """{werkzeug rule: {method: operationId}}, one rule per path of the spec, and the converters
    the rules name.

    OpenAPI matches a concrete path before a templated one, whatever the method: a template
    segment never takes a literal that a sibling path has at that place, so DELETE on
    `.../agent/testersbyagent` is that path's 405, not a delete of agent "testersbyagent".
    Such a segment gets a converter that refuses those literals.
    """
    converters: dict[str, type[BaseConverter]] = {"pod": PodConverter}
    rules: dict[str, dict[str, str]] = {}
    split = [path.split("/") for path in spec.paths]
    for parts in split:
        out = []
        for index, part in enumerate(parts):
            name = _TEMPLATE.fullmatch(part)
            literals = _literals_beside(parts, index, split) if name else []
            if name is None:
                out.append(part)
            elif not literals:
                out.append(f"<{name.group(1)}>")
            else:
                converter = f"not{len(converters)}"
                exclude = "|".join(re.escape(lit) for lit in literals)
                converters[converter] = _converter(rf"(?!(?:{exclude})$)[^/]+")
                out.append(f"<{converter}:{name.group(1)}>")
        path = "/".join(parts)
        rules["/".join(out)] = {op.method: op.operation_id for op in spec.operations.values() if op.path == path}
    return rules, converters


def _literals_beside(parts: list[str], index: int, paths: list[list[str]]) -> list[str]:
    """The literal segments other paths have at `index` where their earlier segments could match."""

    def is_template(segment: str) -> bool:
        return _TEMPLATE.fullmatch(segment) is not None

    def same_so_far(other: list[str]) -> bool:
        before = zip(other[:index], parts[:index], strict=True)
        return all(a == b or is_template(a) or is_template(b) for a, b in before)

    found = {other[index] for other in paths if len(other) > index and same_so_far(other)}
    return sorted(segment for segment in found if segment and not is_template(segment))


def _converter(regex: str) -> type[BaseConverter]:
    return type("SpecSegment", (BaseConverter,), {"regex": regex})


class SpecRouter:
    """The spec's paths as one werkzeug `Map`: what routes the API, and what names the operation
    of a request answered elsewhere (the proxy's verdicts, a calibration's observations), so no
    path is ever routed two ways. `SpecRouter.of(spec)` builds one per spec and process: it
    depends on nothing else, and building it was half of `create_app` (werkzeug compiles
    each rule)."""

    @classmethod
    def of(cls, spec: SpecIndex) -> SpecRouter:
        router = _ROUTERS.get(spec)
        if router is None:
            router = _ROUTERS[spec] = cls(spec)
        return router

    def __init__(self, spec: SpecIndex) -> None:
        self.spec = spec
        rules, converters = api_rules(spec)
        url_map = Map(converters=converters, strict_slashes=True, merge_slashes=False, redirect_defaults=False)
        self.operations = rules
        for rule, ops in rules.items():
            # The local server entry of the spec (`/{pod}`) serves each path under /in and /na too.
            for template in (rule, f"/<pod:{_POD_PREFIX}>{rule}"):
                url_map.add(Rule(template, methods=list(ops), endpoint=rule))
        self.routes: MapAdapter = url_map.bind("mock")
        # werkzeug's matcher walks the rules segment by segment (about 8 µs a request here, a
        # fifth of a GET); clients repeat their paths, so the answers for recent ones are kept,
        # never mutated. Only matches are kept (lru_cache keeps no exception: a 404 is matched
        # anew), and only of paths up to _CACHED_PATH characters: 4,096 long URLs would hold
        # hundreds of MB.
        self._cached_match = functools.lru_cache(maxsize=4096)(self.routes.match)

    def match(self, path: str, method: str) -> tuple[Any, Mapping[str, Any]]:
        """(rule, args): werkzeug's own answer, kept for recent paths, so never to be mutated."""
        return (self._cached_match if len(path) <= _CACHED_PATH else self.routes.match)(path, method)

    def route(self, method: str, path: str) -> tuple[Operation | None, dict[str, str]]:
        """The operation a request names and its path parameters; (None, {}) when it names none."""
        try:
            rule, args = self.match(path, method if method == method.upper() else "")
        except (MethodNotAllowed, NotFound, RequestRedirect):
            return None, {}
        params = {name: str(value) for name, value in args.items() if name != _POD_PREFIX}
        return self.spec.operations[self.operations[rule]["GET" if method == "HEAD" else method]], params


# One router per spec for as long as the spec lives (a test may load many); the router holds no
# state of any mock, only the spec's routes and the matches of recent paths.
_ROUTERS: weakref.WeakKeyDictionary[SpecIndex, SpecRouter] = weakref.WeakKeyDictionary()


class ApiApp:
    """Every request that is not the control plane's. State lives in the engine passed in."""

    def __init__(self, engine: Engine, spec: SpecIndex, default_pod: Pod) -> None:
        self.engine = engine
        self.spec = spec
        self.default_pod = default_pod
        self.pod_hosts = spec.pod_hosts
        self.router = SpecRouter.of(spec)
        replay = engine.config.replay
        self.replayer = None if replay is None else Replayer(replay, engine.store)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        path = route_path(environ)
        try:
            response = self._answer(environ, method, path)
        except StoreUnavailable as exc:  # the store is down or too slow: 503, and the next request tries again
            log.warning("mock_server: %s %s answered 503: %s", method, path, exc)
            response = self.engine.store_unavailable()
        except Exception as exc:  # a bug in the mock, never a scenario: the traceback goes to the log
            log.exception("mock_server: unhandled error on %s %s", method, path)
            response = crash_response(exc)
        status, headers, body = wsgi_response(response, environ)
        start_response(status_line(status), headers)
        return () if method == "HEAD" else body  # RFC 9110 section 9.3.2: the GET's headers, no content

    def _answer(self, environ: dict[str, Any], method: str, path: str) -> ApiResponse:
        problem = request_problem(environ)
        if problem is not None:
            return self.engine.unreadable(problem.status, method, path, self._pod(environ, path), problem.detail)
        if self.replayer is not None:
            replayed = self._replay(environ, method, path)
            if replayed is not None:
                return replayed
        try:
            # RFC 9110 section 9.1: methods are case-sensitive (werkzeug upper-cases them); none is no method
            if not method or method != method.upper():
                raise MethodNotAllowed(valid_methods=self.router.routes.allowed_methods(path) or None)
            rule, args = self.router.match(path, method)
        except MethodNotAllowed as exc:
            if not exc.valid_methods:  # an unknown path stays a 404
                return self._not_found(environ, method, path)
            return self._reject("method_not_allowed", environ, method, path, sorted(exc.valid_methods))
        except (NotFound, RequestRedirect):
            return self._not_found(environ, method, path)
        pod = self._pod(environ, path)
        try:
            body = read_body(environ) if method == "POST" else b""
        except Unreadable as exc:
            return self.engine.unreadable(exc.status, method, path, pod, exc.detail)
        return self.engine.handle(
            ApiRequest(
                operation_id=self.router.operations[rule]["GET" if method == "HEAD" else method],
                method=method,
                path=path,
                pod=pod,
                sid=args.get("sid"),
                path_agent=args.get("agent_number"),
                query=parse_query(environ.get("QUERY_STRING", "")),
                api_key=api_key(environ),
                content_type=environ.get("CONTENT_TYPE") or None,
                prefer=environ.get("HTTP_PREFER"),
                body=body,
                content_encoding=environ.get("HTTP_CONTENT_ENCODING"),
            )
        )

    def _replay(self, environ: dict[str, Any], method: str, path: str) -> ApiResponse | None:
        """A recorded answer (`core/_replay.py` has the match rule), before routing: a cassette may
        hold a path no operation takes. Unmatched: the mock's own 404 when strict, else None."""
        assert self.replayer is not None
        query: str = environ.get("QUERY_STRING", "")
        if not query.isascii():  # WSGI's latin-1 text of the bytes; request_problem checked they are UTF-8
            query = query.encode("latin-1").decode("utf-8")
        pod = self._pod(environ, path)
        key = api_key(environ)
        found = self.replayer.answer(method, pod, path, query, environ.get("HTTP_PREFER"))
        if found is not None:
            exchange, response = found
            # The journal names the operation, SID and agent as for any answer, by the one router.
            op, params = self.router.route(method, path)
            agent = params.get("agent_number") or next(
                (v for k, v in parse_query(environ.get("QUERY_STRING", "")) if k == "agent_number"), None
            )
            return self.engine.replayed(method, path, pod, key, response, exchange.source, op, params.get("sid"), agent)
        if self.engine.config.replay_strict:
            return self.engine.not_in_cassette(method, path, query, pod, key)
        return None

    def _reject(
        self, name: str, environ: dict[str, Any], method: str, path: str, allow: list[str] | None = None
    ) -> ApiResponse:
        pod = self._pod(environ, path)
        return self.engine.reject(name, method, path, pod, api_key(environ), allow or ())

    def _not_found(self, environ: dict[str, Any], method: str, path: str) -> ApiResponse:
        return self.engine.not_found(method, path, self._pod(environ, path), api_key(environ))

    def _pod(self, environ: dict[str, Any], path: str) -> Pod:
        """By Host, else by the /in or /na prefix (a path no operation takes has one too), else the
        default. The prefix is read off the path, matched or not: the route's own copy is the same."""
        prefix = path.split("/", 2)[1]
        return resolve_pod(environ.get("HTTP_HOST"), prefix, self.default_pod, self.pod_hosts)
