"""What the mock answers to one request: pure logic, no Flask, no sockets.

Order of decisions, each explained in the README's scenario section:
faults -> auth -> Content-Type -> armed scenario -> Prefer -> magic agent -> state.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, NamedTuple

from ._json import INVALID_JSON, strict_json
from ._pods import Pod, unknown_root
from ._spec import Example, Operation, SpecIndex, encode_json
from ._state import fingerprint_of_hash, hash_key
from ._store import Armed, Control, StaleRead, Store, journal_entry

if TYPE_CHECKING:
    from ._calibrate import Calibration
    from ._replay import ReplayIndex

__all__ = [
    "FAULT_KINDS",
    "ApiRequest",
    "ApiResponse",
    "Engine",
    "MockConfig",
    "is_json_media_type",
    "mock_error_body",
]

log = logging.getLogger("mock_server")

FAULT_KINDS = ("latency", "connection_reset", "empty_response", "malformed_body", "random_5xx")
_SPOILERS = frozenset({"connection_reset", "empty_response", "malformed_body"})
TransportFault = Literal["connection_reset"]


@dataclass(frozen=True)
class MockConfig:
    default_pod: Pod = "in"
    strict_content_type: bool = False
    journal: bool = True
    # Where an error's constant and message sit: no Kaleyra page shows it for this API.
    # "data" (data.error) is the spec's examples, on the best evidence (openapi.yaml,
    # ErrorResponse); "error" moves them to a top-level `error`, the other reading, so a
    # client can be tested against both.
    error_layout: Literal["error", "data"] = "data"
    # --replay: the recorded answers, tried before the engine (web/_api.py); --replay-strict
    # answers a request none matches with the mock's own 404 `not_in_cassette`.
    replay: ReplayIndex | None = field(default=None, compare=False)
    replay_strict: bool = False
    # --calibrate: the answers observed for examples (`_from_example`), and the error layout they use.
    calibration: Calibration | None = field(default=None, compare=False)


class ApiRequest(NamedTuple):
    """One API request as the web layer read it; the engine reads nothing else. A named tuple,
    as `ApiResponse`: one of each is built per request, in 0.4 µs against 2.7 for a frozen
    dataclass, and neither can be changed after."""

    operation_id: str
    method: str
    path: str
    pod: Pod
    sid: str | None
    path_agent: str | None = None
    query: Sequence[tuple[str, str]] = ()
    api_key: str | None = None
    content_type: str | None = None
    prefer: str | None = None
    body: bytes = b""
    content_encoding: str | None = None


class ApiResponse(NamedTuple):
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    example: str | None = None
    source: str = "state"
    latency_s: float = 0.0
    transport_fault: TransportFault | None = None


def mock_error_body(code: str, message: str, error_code: str, error_message: str) -> bytes:
    """The mock's own errors use Kaleyra's (assumed) envelope, with MOCK codes."""
    return encode_json(
        {
            "code": code,
            "message": message,
            "data": {"error": {"error_code": error_code, "error_message": error_message}},
        }
    )


def _with_message(example: Example, message: str) -> Example:
    """The example with its error_message replaced: the mock's own answers that name the request."""
    data = example.value["data"]
    value = {**example.value, "data": {**data, "error": {**data["error"], "error_message": message}}}
    return replace(example, value=value, body=encode_json(value))


def _preferences(header: str) -> dict[str, str]:
    """RFC 7240 section 2: `name[=value] *(; parameter)`, comma-separated; names are
    case-insensitive and the first of each name counts. Values may be quoted strings.

    Read in one pass over tokens (a quoted string, a run of plain text, a separator), so a
    header of unterminated quotes costs what its length does, never more."""
    prefs: dict[str, str] = {}
    current: list[str] = []
    in_parameters = False
    for piece in [*_PREFER_TOKEN.findall(header), ","]:
        if piece == ",":
            name, _, value = "".join(current).partition("=")
            name, value = name.strip().lower(), value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = _ESCAPED.sub(r"\1", value[1:-1])
            if name and name not in prefs:
                prefs[name] = value
            current, in_parameters = [], False
        elif piece == ";":
            in_parameters = True  # what follows belongs to this preference, not a new one
        elif not in_parameters:
            current.append(piece)
    return prefs


# A quoted string (perhaps never closed), a run of anything else, or a separator.
_PREFER_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[^,;"]+|[,;]')
_ESCAPED = re.compile(r"\\(.)")


def is_json_media_type(value: str) -> bool:
    return value.split(";", 1)[0].strip().lower() == "application/json"


class Engine:
    def __init__(self, spec: SpecIndex, store: Store, config: MockConfig | None = None) -> None:
        self.spec = spec
        self.store = store
        self.config = config or MockConfig()
        self._rngs: dict[int, random.Random] = {}
        self._relaid: dict[bytes, bytes] = {}
        self._rng_lock = threading.Lock()
        self._hashes: dict[str, str] = {}  # api key -> its SHA-256, for the few keys a test run uses
        self._clock: tuple[int, str] = (0, "")  # (second, its journal timestamp)
        calibration = self.config.calibration
        decided = calibration.error_layout if calibration is not None else None
        self._layout = decided or self.config.error_layout
        # --strict-content-type, or the real API seen refusing a request without Content-Type.
        self._strict_content_type = self.config.strict_content_type or bool(
            calibration is not None and calibration.content_type_required
        )
        # The first request without Content-Type goes to the log too (then only X-Mock-Warning says
        # it): once per engine, so once per worker process. The lock is taken only until then.
        self._content_type_logged = False
        self._content_type_lock = threading.Lock()

    # -- entry points ------------------------------------------------------------------

    def handle(self, req: ApiRequest) -> ApiResponse:
        """A journalled request is first decided on what the store kept (`optimistic`: no round trip
        to a Redis store before the decision), and decided again on a fresh read when the store
        finds the state moved on meanwhile (`StaleRead`, with nothing written)."""
        if self.config.journal:
            try:
                return self._handle(req, optimistic=True)
            except StaleRead:
                pass
        return self._handle(req, optimistic=False)

    def _handle(self, req: ApiRequest, *, optimistic: bool) -> ApiResponse:
        op = self.spec.operations[req.operation_id]
        control = self.store.control(optimistic=optimistic)
        agent, problem = self._agent_number(op, req)
        key_hash = self._hash(req.api_key) if req.api_key else None
        sid = req.sid
        if sid is None:  # the SID-less gateway path: the account the key belongs to
            sid = (self.store.account_for_key(req.pod, key_hash) if key_hash else None) or ""
        latency, failure, spoiler = (0.0, None, None)
        if control.faults:
            latency, failure, spoiler = self._faults(op, req.pod, sid, agent, control)
        if failure is not None:
            response = failure
        else:
            response = self._decide(op, req, sid, key_hash, control, agent, problem)
            if spoiler is not None:
                response = self._spoil(spoiler, response)
        if latency:
            response = response._replace(latency_s=latency)
        self._journal(req.method, req.path, req.pod, op, sid, agent, req.api_key, response, checked=optimistic)
        return response

    def reject(
        self, name: str, method: str, path: str, pod: Pod, api_key: str | None, allow: Sequence[str] = ()
    ) -> ApiResponse:
        """A request no operation takes: 404 `not_found` or 405 `method_not_allowed`."""
        example = self.spec.shared[name]
        headers = (("Allow", ", ".join(allow)),) if allow else ()
        response = self._from_example(example, "routing", headers)
        self._journal(method, path, pod, None, None, None, api_key, response)
        return response

    def not_found(self, method: str, path: str, pod: Pod, api_key: str | None) -> ApiResponse:
        """A path no operation takes: the spec's `not_found` when it may be Kaleyra's, else the
        mock's own `unknown_pod_prefix`, naming the pods and versions there are (`unknown_root`)."""
        why = unknown_root(path, self.spec.roots)
        if why is None:
            return self.reject("not_found", method, path, pod, api_key)
        response = self._from_example(_with_message(self.spec.shared["unknown_pod_prefix"], why), "routing")
        self._journal(method, path, pod, None, None, None, api_key, response)
        return response

    def unreadable(self, status: int, method: str, path: str, pod: Pod, detail: str) -> ApiResponse:
        """A request the HTTP layer would not read: the spec's `bad_request`, or the mock's own
        408 or 413; `detail` (which never quotes the request) goes in X-Mock-Warning."""
        example = self.spec.refusal(status)
        response = self._from_example(example, "routing", (("X-Mock-Warning", detail),))
        self._journal(method, path, pod, None, None, None, None, response)
        return response

    def replayed(
        self,
        method: str,
        path: str,
        pod: Pod,
        api_key: str | None,
        response: ApiResponse,
        line: str,
        op: Operation | None,
        sid: str | None,
        agent: str | None,
    ) -> ApiResponse:
        """Journals an answer a cassette gave (`line` is the cassette's FILE:LINE); returns it."""
        self._journal(method, path, pod, op, sid, agent, api_key, response, line)
        return response

    def not_in_cassette(self, method: str, path: str, query: str, pod: Pod, api_key: str | None) -> ApiResponse:
        """--replay-strict: the mock's own 404 naming the request no cassette holds an answer for."""
        target = path + ("?" + query if query else "")
        example = _with_message(self.spec.shared["not_in_cassette"], f"no recorded exchange matches {method} {target}")
        response = self._from_example(example, "replay")
        self._journal(method, path, pod, None, None, None, api_key, response)
        return response

    def store_unavailable(self) -> ApiResponse:
        """503 `MOCK503` when the store cannot be reached (`StoreUnavailable`), in the configured
        error layout; never journalled (the journal is in the store)."""
        return self._from_example(self.spec.shared["store_unavailable"], "store")

    def _log_missing_content_type(self, req: ApiRequest) -> None:
        """One warning line for the first request that came without Content-Type: a client that
        never reads X-Mock-Warning still hears of it, and a run of them costs one line."""
        with self._content_type_lock:
            if self._content_type_logged:
                return
            self._content_type_logged = True
        log.warning(
            "mock_server: %s %r came without Content-Type; Kaleyra documents application/json as mandatory "
            "(logged once per worker; every such answer carries X-Mock-Warning, --strict-content-type refuses them)",
            req.method,
            req.path,
        )

    def _hash(self, api_key: str) -> str:
        hashed = self._hashes.get(api_key)
        if hashed is None:
            if len(self._hashes) >= 256:  # a fuzzer's keys: start over rather than grow
                self._hashes = {}
            hashed = self._hashes[api_key] = hash_key(api_key)
        return hashed

    def _now(self) -> str:
        """The journal's timestamp, formatted once a second."""
        second = int(time.time())
        clock = self._clock
        if clock[0] != second:
            clock = self._clock = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
        return clock[1]

    # -- decisions ---------------------------------------------------------------------

    def _decide(
        self,
        op: Operation,
        req: ApiRequest,
        sid: str,
        key_hash: str | None,
        control: Control,
        agent: str | None,
        problem: str | None,
    ) -> ApiResponse:
        if key_hash is None:
            return self._render(op, "missing_api_key", "auth")
        account = self.store.account(req.pod, sid)
        if account is None or (account.key_hashes and key_hash not in account.key_hashes):
            return self._render(op, "invalid_api_key", "auth")

        warnings: tuple[tuple[str, str], ...] = ()
        if req.content_type is None or not req.content_type.strip():
            if self._strict_content_type:
                return self._render(op, "unsupported_media_type", "content-type")
            warnings = (("X-Mock-Warning", "Content-Type missing; Kaleyra documents application/json as mandatory"),)
            if not self._content_type_logged:
                self._log_missing_content_type(req)
        elif not is_json_media_type(req.content_type):
            return self._render(op, "unsupported_media_type", "content-type")
        if req.body and (req.content_encoding or "").strip().lower() not in ("", "identity"):
            return self._render(op, "unsupported_media_type", "content-type")  # RFC 9110 section 8.4.1

        armed = self._take_armed(control.scenarios, op, req.pod, sid, agent)
        if armed is not None:
            return self._render(op, armed.name, "armed", warnings)

        if req.prefer:
            chosen, said = self._prefer(op, req.prefer)
            warnings = (*warnings, *said)
            if chosen is not None:
                return self._from_example(chosen, "prefer", warnings, op)

        magic = control.magic_agents.get(agent or "")
        if magic is not None and magic in op.examples:
            return self._render(op, magic, "magic", warnings)

        if problem is not None:
            return self._render(op, problem, "state", warnings)
        if not account.rcs_enabled:
            return self._render(op, "rcs_not_enabled", "state", warnings)
        if agent is None:  # _agent_number gives a problem whenever it gives no agent
            return self._render(op, "missing_agent_number", "state", warnings)
        if op.canonical == "deleteAgent":
            deleted = self.store.delete_agent(req.pod, sid, agent)
            name = "agent_deleted" if deleted else "agent_not_found"
            return self._render(op, name, "state", warnings)
        body = self.store.testers_body(req.pod, sid, agent)
        if body is None:
            return self._render(op, "agent_not_found", "state", warnings)
        headers = (("Content-Type", "application/json"), *warnings)
        return ApiResponse(200, body, headers, "testers", "state")

    @staticmethod
    def _agent_number(op: Operation, req: ApiRequest) -> tuple[str | None, str | None]:
        """(agent number, the example a malformed request earns, if any)."""
        if op.canonical == "deleteAgent":
            agent = req.path_agent or ""
            return agent, None if agent else "missing_agent_number"
        values = [v for k, v in req.query if k == "agent_number"]
        from_body: str | None = None
        if req.method == "POST" and req.body.strip():  # a body is checked even when the query has the number
            doc = strict_json(req.body)
            if doc is INVALID_JSON:
                return None, "invalid_json"
            if not isinstance(doc, dict):
                return None, "bad_request"
            value = doc.get("agent_number")
            if "agent_number" in doc and not isinstance(value, str):  # null included
                return None, "bad_request"
            if value == "":  # as an empty query: missing, unless the query gives one (then it is malformed)
                return None, "bad_request" if values else "missing_agent_number"
            from_body = value
        if len(values) > 1 or (values and values[0] and from_body is not None and from_body != values[0]):
            return None, "bad_request"  # repeated, or the query and the body disagree
        if values:  # given in the query, even empty: the body is not a fallback for a bad query
            return (values[0], None) if values[0] else (None, "missing_agent_number")
        if from_body is not None:
            return from_body, None
        return None, "missing_agent_number"

    def _take_armed(
        self, armed: Sequence[Armed], op: Operation, pod: str, sid: str | None, agent: str | None
    ) -> Armed | None:
        for item in armed:
            if (
                item.name in op.examples
                and item.matches(pod, sid, op.operation_id, op.canonical, agent)
                and self.store.consume(item)
            ):
                return item
        return None

    def _prefer(self, op: Operation, header: str) -> tuple[Example | None, tuple[tuple[str, str], ...]]:
        """Prism's convention, `Prefer: example=NAME` and/or `code=NNN`, read as RFC 7240 says:
        the first of each preference counts, parameters after `;` belong to it, and a
        preference the mock cannot honour is ignored (section 2: a MUST), never an error.
        Returns the example chosen, if any, and the headers that say what happened:
        `Preference-Applied` (section 3) or an `X-Mock-Warning` that never quotes the header."""
        prefs = _preferences(header)
        wanted_name, wanted_code = prefs.get("example"), prefs.get("code")
        if wanted_name is None and wanted_code is None:
            return None, ()
        valid = (
            f"valid examples of {op.operation_id}: {', '.join(op.examples)}; "
            f"valid codes: {', '.join(str(s) for s in op.statuses())}"
        )
        example = op.examples.get(wanted_name) if wanted_name is not None else None
        ignored: list[str] = []
        if wanted_name is not None and example is None:
            ignored.append("example names no response of this operation")
        plain = wanted_code is not None and len(wanted_code) <= 3 and wanted_code.isascii() and wanted_code.isdigit()
        code = int(wanted_code) if plain and wanted_code else None
        if wanted_code is not None:
            if code is None or not 100 <= code <= 599:
                ignored.append("code is no HTTP status")
            elif example is not None and example.status != code:
                ignored.append("code is not the status of the example asked for")
            elif example is None:
                example = op.first_example_for(code)
                if example is None:
                    ignored.append("code is no status this operation answers")
        headers: list[tuple[str, str]] = []
        if example is not None:
            applied = [f"example={example.name}"] if wanted_name == example.name else []
            applied += [f"code={code}"] if code == example.status else []
            headers.append(("Preference-Applied", ", ".join(applied)))
        if ignored:
            headers.append(("X-Mock-Warning", f"Prefer ignored in part ({'; '.join(ignored)}); {valid}"))
        return example, tuple(headers)

    # -- faults ------------------------------------------------------------------------

    def _faults(
        self, op: Operation, pod: Pod, sid: str, agent: str | None, control: Control
    ) -> tuple[float, ApiResponse | None, Armed | None]:
        """(latency, a 5xx that replaces the whole request, a fault that spoils the answer).

        `random_5xx` fails at the gateway: the request never reaches the state. The other
        faults spoil an answer that was computed, so a DELETE did happen: a client that
        retries learns what a lost response costs. A spoiler is taken only when no 5xx is.
        """
        latency = 0.0
        failure: ApiResponse | None = None
        matching = [f for f in control.faults if f.matches(pod, sid, op.operation_id, op.canonical, agent)]
        for fault in matching:
            rng = self._rng(fault)
            params = fault.params
            if fault.name == "latency" and self.store.consume(fault):
                jitter = float(params.get("jitter_ms", 0))
                latency += (float(params.get("ms", 0)) + (rng.uniform(0, jitter) if jitter else 0)) / 1000
            elif (
                fault.name == "random_5xx"
                and failure is None
                and rng.random() < float(params.get("rate", 1.0))
                and self.store.consume(fault)
            ):
                failure = self._render(op, rng.choice(("gateway_error", "internal_server_error")), "fault")
        spoiler = None
        if failure is None:
            spoiler = next((f for f in matching if f.name in _SPOILERS and self.store.consume(f)), None)
        self._forget_rngs(control)
        return latency, failure, spoiler

    @staticmethod
    def _spoil(fault: Armed, response: ApiResponse) -> ApiResponse:
        """The answer as the client gets it: the real answer's status and headers (a 401 keeps its
        WWW-Authenticate, a 405 its Allow, a 429 its Retry-After) with the body spoilt; the
        status is another only when the fault's `status` asks for one."""
        if fault.name == "connection_reset":
            return response._replace(transport_fault="connection_reset", source="fault")
        status = int(fault.params.get("status", response.status))
        body = b"" if fault.name == "empty_response" else (response.body[: max(1, len(response.body) // 2)] or b"{")
        return response._replace(status=status, body=body, example=None, source="fault")

    def _forget_rngs(self, control: Control) -> None:
        """One generator per armed fault, none kept for faults since disarmed."""
        if len(self._rngs) > len(control.faults):
            with self._rng_lock:
                alive = {f.id for f in control.faults}
                for fault_id in [i for i in self._rngs if i not in alive]:
                    del self._rngs[fault_id]

    def _rng(self, fault: Armed) -> random.Random:
        with self._rng_lock:
            rng = self._rngs.get(fault.id)
            if rng is None:
                seed = fault.params.get("seed")
                rng = self._rngs[fault.id] = random.Random(seed)  # noqa: S311 - not for secrets
            return rng

    # -- rendering ---------------------------------------------------------------------

    def _render(self, op: Operation, name: str, source: str, extra: tuple[tuple[str, str], ...] = ()) -> ApiResponse:
        return self._from_example(op.examples[name], source, extra, op)

    def render(self, example: Example, source: str, extra: tuple[tuple[str, str], ...] = ()) -> ApiResponse:
        """An example as the mock answers it (its headers, the configured error layout), for
        answers decided outside the engine: the proxy's own refusals, 502 and 504."""
        return self._from_example(example, source, extra)

    def _from_example(
        self, example: Example, source: str, extra: tuple[tuple[str, str], ...] = (), op: Operation | None = None
    ) -> ApiResponse:
        """The example's body and headers; a header in `extra` replaces the example's own of that
        name, and a 405 of an operation names the methods of its path (RFC 9110 section 15.5.6)."""
        if example.status == 405 and op is not None:
            extra = (("Allow", self.spec.allow(op.path)), *extra)
        given = {name.lower() for name, _ in extra}
        calibration = self.config.calibration
        if calibration is not None:
            observed = calibration.observed.get((op.canonical if op else "*", example.name))
            if observed is not None:  # the real API's answer, as seen, for this example
                kept = tuple(h for h in observed.headers if h[0].lower() not in given)
                return ApiResponse(observed.status, observed.body, (*kept, *extra), example.name, "observed")
        kept = tuple(h for h in example.headers if h[0].lower() not in given)
        headers = (("Content-Type", "application/json"), *kept, *extra)
        body = example.body
        if self._layout == "error" and example.status >= 400:
            body = self._error_layout(example)
        return ApiResponse(example.status, body, headers, example.name, source)

    def _error_layout(self, example: Example) -> bytes:
        """The example with its data.error moved to a top-level `error` (and `data` left empty)."""
        cached = self._relaid.get(example.body)
        if cached is None:
            value = dict(example.value)
            data = dict(value.get("data") or {})
            detail = data.pop("error", {})
            value["data"] = data
            value["error"] = detail
            cached = encode_json(value)
            if len(self._relaid) < 256:  # the spec's examples; a message made per request is not kept
                self._relaid[example.body] = cached
        return cached

    def _journal(
        self,
        method: str,
        path: str,
        pod: Pod,
        op: Operation | None,
        sid: str | None,
        agent: str | None,
        api_key: str | None,
        response: ApiResponse,
        cassette: str | None = None,
        *,
        checked: bool = False,
    ) -> None:
        if not self.config.journal:
            return
        entry = journal_entry(
            self._now(),
            pod,
            method,
            path,
            op.operation_id if op else None,
            op.canonical if op else None,
            sid,
            agent,
            None if not api_key else fingerprint_of_hash(self._hash(api_key)),
            response.status,
            response.example,
            response.source,
        )
        if cassette is not None:
            entry["cassette"] = cassette  # a replayed answer's FILE:LINE
        self.store.record(entry, checked=checked)
