"""Calibration: the mock answers as the real API was seen to, wherever it was seen.

Each observed exchange (a cassette's line, or an item of a live report's `exchanges`) is taken
for one example of one operation family (`Operation.canonical`), by the first rule that finds
one:

1. content: the family's only example with the observed status and, for an error, the same
   constant (`error.error_code` or `data.error.error_code`, either layout), or for a 2xx the
   same JSON (the body decoded from its Content-Encoding first);
2. probe: the example the exchange's `probe` (set by `make live`) asks for (`PROBE_EXAMPLES`);
3. shape: for a refusal the request's shape alone decides (no api key, a Content-Type that is
   not JSON, no agent_number, a body that is not JSON), the example the mock's own engine
   answers to that recorded request on a fresh default state.

The first observation of an example counts; later ones, and those no rule places, are kept
as not applied, with why. `testers` is never calibrated: its body is the state's.

When every observed error body carries its constant in one layout, the mock's other error
answers take that layout too (`error_layout`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from ._cassette import HOP_BY_HOP, CassetteError, Exchange, decoded_body, read_cassette
from ._engine import ApiRequest, Engine, MockConfig
from ._json import INVALID_JSON, strict_json
from ._spec import Example, Operation, Router, SpecIndex
from ._state import StateData, default_seed_document, state_validator
from ._store import MemoryStore

__all__ = [
    "OBSERVED_SOURCE",
    "PROBE_EXAMPLES",
    "SHAPE_REFUSALS",
    "Calibration",
    "Observed",
    "calibrate",
    "load_observations",
]

OBSERVED_SOURCE = "observed"
ANY_PATH = "*"  # the family of answers given before any operation: routing's not_found, method_not_allowed
Layout = Literal["error", "data"]

# The example each probe of `contracts/live/_probes.py` asks for, by the operation's own example names.
PROBE_EXAMPLES: Mapping[str, str] = {
    "no_key": "missing_api_key",
    "wrong_key": "invalid_api_key",
    "no_content_type": "unsupported_media_type",  # when refused; a 2xx is the mock's warning path
    "text_plain": "unsupported_media_type",
    "unknown_agent": "agent_not_found",
    "missing_agent": "missing_agent_number",
    "repeated_agent": "bad_request",
    "invalid_json": "invalid_json",
    "not_found_path": "not_found",
    "get_delete_path": "method_not_allowed",
    "delete_first": "agent_deleted",
    "delete_again": "agent_not_found",
    "testers_after_delete": "agent_not_found",
    "delete_no_number_slash": "missing_agent_number",
    "delete_no_number": "missing_agent_number",
}
# Answers decided by the request alone, whatever the state: what the shape rule may conclude.
SHAPE_REFUSALS = frozenset(
    {"missing_api_key", "unsupported_media_type", "missing_agent_number", "invalid_json", "bad_request"}
)
_STATE_BODIES = frozenset({"testers"})
_OWN_HEADERS = frozenset({"x-mock-source", "x-mock-example"})


@dataclass(frozen=True)
class Observed:
    """What the real API answered where the mock would answer `example` of `family`."""

    family: str
    example: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    source: str  # FILE:LINE of the exchange
    rule: str  # "content", "probe" or "shape"

    def to_document(self) -> dict[str, Any]:
        return {
            "example": self.example,
            "operation": self.family,
            "status": self.status,
            "source": self.source,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class Calibration:
    observed: Mapping[tuple[str, str], Observed] = field(default_factory=dict)  # (family, example)
    error_layout: Layout | None = None
    layout_why: str = "no observed error body"
    not_applied: tuple[tuple[str, str], ...] = ()  # (source, why)
    # Whether a request without Content-Type (and with a key) was refused: True makes the mock
    # refuse it too, as --strict-content-type; None when no such request was observed.
    content_type_required: bool | None = None
    content_type_why: str = "no request without Content-Type was observed"

    def to_document(self) -> dict[str, Any]:
        return {
            "applied": [o.to_document() for o in self.observed.values()],
            "not_applied": [{"source": source, "why": why} for source, why in self.not_applied],
            "error_layout": self.error_layout,
            "error_layout_why": self.layout_why,
            "content_type_required": self.content_type_required,
            "content_type_why": self.content_type_why,
        }


# -- reading observations -----------------------------------------------------------------


def load_observations(paths: Sequence[Path]) -> list[Exchange]:
    """Exchanges of cassettes, or of JSON documents with a top-level `exchanges` list (a live
    report); CassetteError (the file and why) for a file that is neither."""
    found: list[Exchange] = []
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CassetteError(f"{path}: cannot read: {exc.strerror or exc}") from None
        doc = strict_json(raw)
        if isinstance(doc, dict) and "exchanges" in doc:
            items = doc["exchanges"]
            if not isinstance(items, list):
                raise CassetteError(f"{path}: `exchanges` is not a list")
            for index, item in enumerate(items):
                try:
                    found.append(Exchange.from_document(item, f"{path.name}#/exchanges/{index}"))
                except (KeyError, TypeError, ValueError) as exc:
                    raise CassetteError(f"{path}: exchanges/{index}: {exc}") from None
            continue
        found.extend(read_cassette(path)[0])
    return found


# -- what an exchange stands for ----------------------------------------------------------


def _constant(doc: Any) -> tuple[str | None, Layout | None]:
    """An error body's constant and the layout it sits in."""
    if not isinstance(doc, dict):
        return None, None
    error = doc.get("error")
    if isinstance(error, dict) and isinstance(error.get("error_code"), str):
        return error["error_code"], "error"
    data = doc.get("data")
    inner = data.get("error") if isinstance(data, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("error_code"), str):
        return inner["error_code"], "data"
    return None, None


def _family_examples(spec: SpecIndex, family: str) -> dict[str, Example]:
    if family == ANY_PATH:
        return {name: spec.shared[name] for name in ("not_found", "method_not_allowed")}
    examples: dict[str, Example] = {}
    for op in spec.operations.values():
        if op.canonical == family:
            for name, example in op.examples.items():
                examples.setdefault(name, example)
    return examples


def _operation(spec: SpecIndex, route: Router, exchange: Exchange) -> tuple[Operation | None, Mapping[str, str]]:
    """The operation the recorded request names, by the API's own router, and its path
    parameters; the exchange's own `operation` when it names one (the router agreeing or not)."""
    req = exchange.request
    op, params = route(req.method, req.path)
    named = spec.operations.get(exchange.operation or "")
    return (named or op), params


class _Shape:
    """The mock's own engine on a fresh default state, asked what a recorded request earns."""

    def __init__(self, spec: SpecIndex) -> None:
        self.spec = spec
        self.seed = StateData.from_document(default_seed_document(spec), state_validator(spec))

    def example(self, op: Operation, args: Mapping[str, str], exchange: Exchange) -> str | None:
        req = exchange.request
        # Strict: a request without Content-Type that was refused stands for unsupported_media_type.
        engine = Engine(self.spec, MemoryStore(self.seed), MockConfig(journal=False, strict_content_type=True))
        answer = engine.handle(
            ApiRequest(
                operation_id=op.operation_id,
                method=req.method,
                path=req.path,
                pod="na" if req.pod == "na" else "in",
                sid=args.get("sid"),
                path_agent=args.get("agent_number"),
                query=tuple(parse_qsl(req.query, keep_blank_values=True)),
                api_key=req.api_key or None,  # a fingerprint: any key passes the default account
                content_type=req.headers.get("content-type"),
                body=req.body,
                content_encoding=req.headers.get("content-encoding"),
            )
        )
        return answer.example if answer.example in SHAPE_REFUSALS else None


def _place(
    spec: SpecIndex, route: Router, shape: _Shape, exchange: Exchange
) -> tuple[str, str, str] | tuple[None, None, str]:
    """(family, example, rule), or (None, None, why not)."""
    op, args = _operation(spec, route, exchange)
    probe_wants = PROBE_EXAMPLES.get(exchange.probe or "")
    family = (
        op.canonical if op is not None else (ANY_PATH if probe_wants in ("not_found", "method_not_allowed") else None)
    )
    if family is None:
        return None, None, f"{exchange.request.method} {exchange.request.path} is no operation of openapi.yaml"
    examples = _family_examples(spec, family)
    status = exchange.response.status
    plain = decoded_body(exchange.response)
    doc = strict_json(plain) if plain is not None else INVALID_JSON
    constant = _constant(doc)[0]
    same = [
        name
        for name, example in examples.items()
        if example.status == status
        and (
            (status < 300 and doc is not INVALID_JSON and doc == example.value)
            or (status >= 400 and constant is not None and constant == _constant(example.value)[0])
        )
    ]
    if len(same) == 1:
        return family, same[0], "content"
    if probe_wants is not None and probe_wants in examples:
        if exchange.probe == "no_content_type" and status < 400:
            return None, None, "the API accepted a request without Content-Type; the mock answers it (with a warning)"
        return family, probe_wants, "probe"
    if op is not None and status >= 400:
        refusal = shape.example(op, args, exchange)
        if refusal is not None and refusal in examples:
            return family, refusal, "shape"
    if not same and any(n in _STATE_BODIES and e.status == status for n, e in examples.items()):
        return None, None, f"a {status} of {family}: its body is the state's, never calibrated"
    why = f"ambiguous: {', '.join(same)}" if same else f"no example of {family} answers {status} like this"
    return None, None, why


def _layout(observed: Iterable[Exchange]) -> tuple[Layout | None, str]:
    seen: dict[Layout, list[str]] = {}
    for exchange in observed:
        if exchange.response.status < 400:
            continue
        plain = decoded_body(exchange.response)
        layout = _constant(strict_json(plain) if plain is not None else None)[1]
        if layout is not None:
            seen.setdefault(layout, []).append(exchange.source)
    if not seen:
        return None, "no observed error body carries a constant"
    if len(seen) > 1:
        return None, "observed error bodies use both layouts: " + "; ".join(
            f"{name} ({', '.join(sources[:3])})" for name, sources in sorted(seen.items())
        )
    decided, sources = next(iter(seen.items()))
    where = "data.error" if decided == "data" else "error"
    return decided, f"every observed error body ({len(sources)}) carries its constant in {where}"


def calibrate(spec: SpecIndex, exchanges: Sequence[Exchange], route: Router) -> Calibration:
    """`route` is the API's router (mock_server.web.SpecRouter.route): an observation is named
    by the rule that routes the request it stands for."""
    shape = _Shape(spec)
    observed: dict[tuple[str, str], Observed] = {}
    not_applied: list[tuple[str, str]] = []
    for exchange in exchanges:
        family, name, rule = _place(spec, route, shape, exchange)
        if family is None or name is None:
            not_applied.append((exchange.source, rule))
            continue
        if name in _STATE_BODIES:
            not_applied.append((exchange.source, f"{name}: the body is the state's, never calibrated"))
            continue
        kept = observed.get((family, name))
        if kept is not None:
            not_applied.append((exchange.source, f"{name} of {family} was calibrated from {kept.source} already"))
            continue
        recorded = exchange.response
        headers = tuple((k, v) for k, v in recorded.headers if k.lower() not in HOP_BY_HOP | _OWN_HEADERS)
        observed[(family, name)] = Observed(
            family, name, recorded.status, headers, recorded.body, exchange.source, rule
        )
    layout, why = _layout(exchanges)
    required, required_why = _content_type_rule(spec, route, exchanges)
    return Calibration(observed, layout, why, tuple(not_applied), required, required_why)


def _content_type_rule(spec: SpecIndex, route: Router, exchanges: Iterable[Exchange]) -> tuple[bool | None, str]:
    """The first request of an operation sent with a key and without Content-Type decides."""
    for exchange in exchanges:
        req = exchange.request
        if "content-type" in req.headers or not req.api_key or _operation(spec, route, exchange)[0] is None:
            continue
        status = exchange.response.status
        if 200 <= status < 300:
            return False, f"{exchange.source}: a request without Content-Type was answered {status}"
        if status in (400, 415):
            return True, f"{exchange.source}: a request without Content-Type was refused with {status}"
    return None, "no request without Content-Type (and with a key) was observed"
