"""Properties of the facade's answer handling, with bodies drawn from the spec's own schemas.

The strategies are written here by hand (hypothesis-jsonschema breaks on the pinned hypothesis):
a small interpreter for the few keywords the response schemas use (type, properties, required,
items, maxProperties, $ref), which refuses any other keyword so a richer spec cannot silently
make "valid" bodies invalid. Every call goes through one sync KaleyraRCS for the whole module,
answered by an httpx.MockTransport that replays whatever the current example scripted.

1. schema-valid bodies round-trip unchanged, extra properties included;
2. schema-invalid or odd bodies and undocumented statuses raise ContractViolation (status, JSON
   pointer, a body excerpt of at most ~300 characters in str());
3. error bodies of documented statuses, constant under `error` or under `data.error`, raise the
   typed error error_from_body's rules choose, with the constant and message read correctly;
4. nothing raised shows the api key in str() or repr();
5. the client's verdict on a body (jsonschema-rs first, jsonschema for the broken rule) is
   jsonschema's alone, on valid, broken and arbitrary bodies and on values only Python holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kaleyra_rcs import (
    AgentNotFound,
    AuthenticationError,
    ContractViolation,
    GatewayError,
    InternalServerError,
    KaleyraApiError,
    KaleyraError,
    KaleyraRCS,
    MissingRequiredParams,
    NotKaleyra,
    RateLimited,
    RcsChannelDisabled,
    ServerError,
    TransportError,
    load_spec,
)
from tests._spec import Spec

SPEC = Spec.load()
API_KEY = "prop-test-key-3d9a61f0"
# The operations the facade calls: those of the spec that are no variant of another.
OPERATIONS = SPEC.facade_operations
BODY_EXCERPT = 300  # issue 4: "a truncated body"; _errors.py cuts at 300 characters
PROSE = 200  # room in str(exc) for what is not the body: status, pointer, a short message
URL_PROSE = 150  # and for NotKaleyra the URL tried, the client's own (base URL, path, agent number)

SETTINGS = {"derandomize": True, "database": None, "deadline": None}

# -- the spec, walked by tests/_spec.py ---------------------------------------------------------

SCHEMAS = {op: SPEC.schemas(op) for op in OPERATIONS}
SUCCESS = {op: {s: schema for s, schema in SCHEMAS[op].items() if 200 <= s < 300} for op in OPERATIONS}
FAILURE = {op: {s: schema for s, schema in SCHEMAS[op].items() if s >= 300} for op in OPERATIONS}
# (status, value) of every named example under the operation's error statuses.
FAILURE_EXAMPLES = {op: [(ex.status, ex.value) for ex in SPEC.listed(op) if ex.status >= 300] for op in OPERATIONS}
EXAMPLE_VALUES = [SPEC.resolve(example)["value"] for example in SPEC.document["components"]["examples"].values()]
CODES = sorted({v["code"] for v in EXAMPLE_VALUES if isinstance(v, dict) and "code" in v})
ERROR_VALUES = [v for v in EXAMPLE_VALUES if isinstance(v, dict) and "error" in (v.get("data") or {})]
CONSTANTS = sorted({v["data"]["error"]["error_code"] for v in ERROR_VALUES})

_REGISTRY: Registry[Any] = Registry().with_resource("urn:spec", Resource.from_contents(SPEC.document, DRAFT202012))
TYPES = Draft202012Validator.TYPE_CHECKER


_VALIDATORS: dict[str, Draft202012Validator] = {}


def _is_valid(schema: Any, body: Any) -> bool:
    """jsonschema's verdict, independent of the client's own validation (every response schema is a $ref)."""
    ref = schema["$ref"]
    if ref not in _VALIDATORS:
        _VALIDATORS[ref] = Draft202012Validator({"$ref": "urn:spec" + ref}, registry=_REGISTRY)
    return bool(_VALIDATORS[ref].is_valid(body))


# -- strategies, from the schemas ---------------------------------------------------------------

KNOWN_KEYWORDS = {"type", "properties", "required", "items", "maxProperties", "description", "x-assumed"}

long_text = st.sampled_from([400, 1500, 5000]).map(lambda n: "L" * n)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars | long_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=4,
)
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=20) | long_text,
    "boolean": st.booleans(),
    "integer": st.integers(min_value=-(2**63), max_value=2**63),
}


def _node(schema: Any) -> dict[str, Any]:
    schema = SPEC.resolve(schema)
    unknown = set(schema) - KNOWN_KEYWORDS
    assert not unknown, f"the strategies do not know {unknown}: teach them before trusting them"
    return dict(schema)


_VALID: dict[int, tuple[Any, st.SearchStrategy[Any]]] = {}


def valid(schema: Any) -> st.SearchStrategy[Any]:
    """Bodies that satisfy `schema`, with extra properties wherever the schema allows them."""
    # Built once per schema node (kept alive in the memo, so its id() stays its own).
    if id(schema) not in _VALID:
        _VALID[id(schema)] = (schema, _valid(schema))
    return _VALID[id(schema)][1]


def _valid(schema: Any) -> st.SearchStrategy[Any]:
    node = _node(schema)
    kind = node.get("type")
    if kind == "array":
        return st.lists(valid(node["items"]), max_size=4)
    if kind == "object":
        if node.get("maxProperties") == 0:
            return st.just({})
        props, required = node.get("properties", {}), set(node.get("required", []))
        fixed = st.fixed_dictionaries(
            {k: valid(v) for k, v in props.items() if k in required},
            optional={k: valid(v) for k, v in props.items() if k not in required},
        )
        extras = st.dictionaries(st.text(max_size=10).filter(lambda k: k not in props), json_values, max_size=2)
        return st.builds(lambda extra, known: {**extra, **known}, extras, fixed)
    if kind is None:
        return json_values
    return SCALARS[kind]


WRONG_TYPE = {
    kind: json_values.filter(lambda value, kind=kind: not TYPES.is_type(value, kind))
    for kind in ("object", "array", "string", "boolean", "integer")
}


@st.composite
def invalid(draw: st.DrawFn, schema: Any, pointer: str = "") -> tuple[Any, str]:
    """A body breaking `schema` in exactly one place, and the JSON pointer of that place."""
    node = _node(schema)
    kind = node.get("type")
    props, required = node.get("properties", {}), node.get("required", [])
    ways = ["type"]
    if kind == "array":
        ways.append("item")
    if kind == "object" and required:
        ways.append("missing")
    if kind == "object" and any(_node(p).get("type") for p in props.values()):
        ways.append("child")
    if kind == "object" and node.get("maxProperties") == 0:
        ways.append("too_many")
    way = draw(st.sampled_from(ways))
    here = pointer or "/"
    if way == "type":
        return draw(WRONG_TYPE[kind]), here
    if way == "item":
        items = draw(st.lists(valid(node["items"]), max_size=3))
        index = draw(st.integers(min_value=0, max_value=len(items)))
        bad, where = draw(invalid(node["items"], f"{pointer}/{index}"))
        return [*items[:index], bad, *items[index:]], where
    if way == "too_many":
        return draw(st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=3)), here
    body = draw(valid(schema))
    if way == "missing":
        del body[draw(st.sampled_from(required))]
        return body, here
    name = draw(st.sampled_from([k for k, p in props.items() if _node(p).get("type")]))
    body[name], where = draw(invalid(props[name], f"{pointer}/{name}"))
    return body, where


# -- one client, scripted answers -------------------------------------------------------------


@dataclass
class Reply:
    """What the transport answers next: a response, or an httpx error to raise."""

    status: int = 200
    content: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    raises: type[httpx.HTTPError] | None = None

    @classmethod
    def of_json(cls, status: int, body: Any, **kwargs: Any) -> Reply:
        return cls(status, json.dumps(body, ensure_ascii=False).encode(), **kwargs)


class Script:
    def __init__(self) -> None:
        self.reply = Reply()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        reply = self.reply
        if reply.raises is not None:
            raise reply.raises(f"scripted {reply.raises.__name__} for {request.url}", request=request)
        headers = dict(reply.headers)
        if reply.content_type is not None:
            headers["Content-Type"] = reply.content_type
        return httpx.Response(reply.status, content=reply.content, headers=headers)


SCRIPT = Script()


@pytest.fixture(scope="module")
def client() -> Iterator[KaleyraRCS]:
    with KaleyraRCS(
        api_key=API_KEY, sid="SID-0001", base_url="http://mock.test/in", transport=httpx.MockTransport(SCRIPT)
    ) as rcs:
        yield rcs


def test_operations__are_the_two_the_facade_calls() -> None:
    assert OPERATIONS == ("getTestersByAgent", "deleteAgent")


def call(client: KaleyraRCS, operation_id: str, reply: Reply) -> Any:
    SCRIPT.reply = reply
    if operation_id == "getTestersByAgent":
        return client.get_testers_by_agent("48900")
    return client.delete_agent("48400")


def outcome(client: KaleyraRCS, operation_id: str, reply: Reply) -> Any:
    """What the call returned, or the KaleyraError it raised (anything else propagates)."""
    try:
        return call(client, operation_id, reply)
    except KaleyraError as exc:
        return exc


# -- cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """An answer that breaks the contract, and the pointer expected for it (None: not a schema problem)."""

    operation_id: str
    reply: Reply
    pointer: str | None
    kind: str


operations = st.sampled_from(OPERATIONS)
JSON_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8", "Application/JSON"])
WRONG_TYPES = st.sampled_from(
    [None, "text/plain", "text/html; charset=utf-8", "application/xml", "application/problem+json", "application/jsonx"]
)
UNDOCUMENTED = st.sampled_from([299, 302, 404, 418, 503, 999]) | st.integers(min_value=100, max_value=999)


def _not_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return True
    return False


non_json = (
    st.sampled_from([b"", b"<html>502 Bad Gateway</html>", b"OK", b"{", b"[1,]", b"{'a': 1}", b"\xff\xfe\xfd"])
    | st.binary(max_size=60).filter(_not_json)
    | st.text(max_size=40).map(lambda s: ("<p>" + s).encode())
    | long_text.map(lambda s: ("<p>" + s).encode())
)


@st.composite
def valid_answers(draw: st.DrawFn) -> tuple[str, int, Any, str]:
    operation_id = draw(operations)
    status = draw(st.sampled_from(sorted(SUCCESS[operation_id])))
    body = draw(valid(SUCCESS[operation_id][status]))
    return operation_id, status, body, draw(JSON_TYPES)


@st.composite
def schema_invalid(draw: st.DrawFn) -> Bad:
    """A documented status (2xx or not) with a JSON body that breaks its schema in one place."""
    operation_id = draw(operations)
    documented = SCHEMAS[operation_id]
    status = draw(st.sampled_from(sorted(SUCCESS[operation_id])) | st.sampled_from(sorted(documented)))
    body, pointer = draw(invalid(documented[status]))
    return Bad(operation_id, Reply.of_json(status, body, content_type=draw(JSON_TYPES)), pointer, "schema")


@st.composite
def odd_answers(draw: st.DrawFn) -> Bad:
    operation_id = draw(operations)
    documented = SCHEMAS[operation_id]
    way = draw(st.sampled_from(["undocumented", "not_json", "content_type"]))
    if way == "undocumented":
        status = draw(UNDOCUMENTED.filter(lambda s: s not in documented))
        if draw(st.booleans()):
            reply = Reply.of_json(status, draw(json_values), content_type=draw(JSON_TYPES | WRONG_TYPES))
        else:
            reply = Reply(status, draw(non_json), content_type=draw(JSON_TYPES | WRONG_TYPES))
        return Bad(operation_id, reply, None, way)
    status = draw(st.sampled_from(sorted(SUCCESS[operation_id])) | st.sampled_from(sorted(documented)))
    if way == "not_json":
        return Bad(operation_id, Reply(status, draw(non_json), content_type=draw(JSON_TYPES)), None, way)
    body = draw(valid(documented[status]))
    return Bad(operation_id, Reply.of_json(status, body, content_type=draw(WRONG_TYPES)), None, way)


contract_breaks = schema_invalid() | odd_answers()


@dataclass(frozen=True)
class Failure:
    """A documented error answer, and what the client must read out of it."""

    operation_id: str
    status: int
    body: dict[str, Any]
    error_code: str
    error_message: str
    retry_after: int | None
    layout: str

    @property
    def reply(self) -> Reply:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return Reply.of_json(self.status, self.body, headers=headers)


@st.composite
def documented_failures(draw: st.DrawFn, echo: str | None = None) -> Failure:
    """An error body in either layout; with `echo`, the server repeats that text in a message."""
    operation_id = draw(operations)
    if draw(st.booleans()):
        # One of the spec's own examples for this operation, moved into the drawn layout.
        status, example = draw(st.sampled_from(FAILURE_EXAMPLES[operation_id]))
        code, message = example["code"], example["message"]
        error_code, error_message = example["data"]["error"]["error_code"], example["data"]["error"]["error_message"]
    else:
        # Status, code and constant drawn independently: combinations no example shows.
        status = draw(st.sampled_from(sorted(FAILURE[operation_id])))
        code = draw(st.sampled_from(CODES) | st.text(max_size=8))
        message = draw(st.text(max_size=30))
        error_code = draw(st.sampled_from(CONSTANTS) | st.text(min_size=1, max_size=20))
        error_message = draw(
            st.text(max_size=30)
            | st.just('{"status":"FAILED","message":"Agent not found"}')
            | st.dictionaries(st.text(max_size=6), json_scalars, max_size=3).map(json.dumps)
        )
    if echo is not None:
        where = draw(st.sampled_from(["message", "error_message", "both"]))
        message = f"{message} {echo}" if where in ("message", "both") else message
        error_message = f"Invalid api-key {echo}" if where in ("error_message", "both") else error_message
    detail = {"error_code": error_code, "error_message": error_message}
    data = draw(st.dictionaries(st.text(max_size=8).filter(lambda k: k != "error"), json_values, max_size=2))
    layout = draw(st.sampled_from(["error", "data.error"]))
    body: dict[str, Any] = {"code": code, "message": message}
    if layout == "error":
        body |= {"data": data, "error": detail}
    else:
        body |= {"data": {**data, "error": detail}}
        if draw(st.booleans()):
            body["error"] = {}
    retry_after = draw(st.none() | st.integers(min_value=0, max_value=3600))
    failure = Failure(operation_id, status, body, error_code, error_message, retry_after, layout)
    assert _is_valid(SCHEMAS[operation_id][status], body)
    return failure


def expected_class(status: int, code: str, error_code: str) -> type[KaleyraError]:
    """The rules of kaleyra_rcs/_errors.py:error_from_body, restated: status, then code, then constant."""
    if status == 401:
        return AuthenticationError
    if status == 429:
        return RateLimited
    if code == "RCS502":
        return GatewayError
    if code == "RCS500" or (status >= 500 and error_code == "RCS_CHANNEL_INTERNAL_ERROR"):
        return InternalServerError
    if error_code == "PROV_ERROR":
        return AgentNotFound
    if error_code == "MISSING_REQUIRED_PARAMS":
        return MissingRequiredParams
    if error_code == "RCS_CHANNEL_DISABLED" or code == "RCS601":
        return RcsChannelDisabled
    return ServerError if status >= 500 else KaleyraApiError


def _decoded(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- 1. valid bodies round-trip ------------------------------------------------------------------


@settings(max_examples=250, **SETTINGS)
@given(answer=valid_answers())
def test_property_1__valid_bodies_round_trip_unchanged(client: KaleyraRCS, answer: tuple[str, int, Any, str]) -> None:
    note(repr(answer))
    operation_id, status, body, content_type = answer
    assert _is_valid(SUCCESS[operation_id][status], body), "the strategy drew an invalid body"
    result = call(client, operation_id, Reply.of_json(status, body, content_type=content_type))
    if operation_id == "getTestersByAgent":
        assert [tester.to_dict() for tester in result] == body
    else:
        assert result.to_dict() == body


# -- 2. contract breaks are ContractViolation ------------------------------------------------------


@settings(max_examples=300, **SETTINGS)
@given(bad=contract_breaks)
def test_property_2__contract_breaks_raise_contract_violation(client: KaleyraRCS, bad: Bad) -> None:
    note(repr(bad))
    event(f"{bad.kind} {bad.operation_id}")
    if bad.kind == "schema":
        assert not _is_valid(SCHEMAS[bad.operation_id][bad.reply.status], json.loads(bad.reply.content))
    with pytest.raises(ContractViolation) as caught:
        call(client, bad.operation_id, bad.reply)
    exc = caught.value
    assert exc.status == bad.reply.status
    assert exc.pointer == bad.pointer
    if exc.pointer is not None:
        assert exc.pointer.startswith("/")
    assert f"status {bad.reply.status}" in str(exc)


@settings(max_examples=150, **SETTINGS)
@given(bad=contract_breaks)
def test_property_2__contract_violation_shows_at_most_an_excerpt_of_the_body(client: KaleyraRCS, bad: Bad) -> None:
    note(repr(bad))
    with pytest.raises(ContractViolation) as caught:
        call(client, bad.operation_id, bad.reply)
    text = str(caught.value)
    assert "body: " in text
    limit = BODY_EXCERPT + 1 + PROSE + (URL_PROSE if isinstance(caught.value, NotKaleyra) else 0)
    assert len(text) <= limit, f"str(exc) has {len(text)} characters: {text[:160]}…"
    assert len(repr(caught.value)) <= limit, f"repr(exc) has {len(repr(caught.value))} characters"


@pytest.mark.parametrize("operation_id", OPERATIONS)
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_odd_body__deeply_nested_json_is_a_contract_violation(
    client: KaleyraRCS, operation_id: str, depth: int
) -> None:
    reply = Reply(200, b"[" * depth + b"]" * depth)
    with pytest.raises(ContractViolation) as caught:
        call(client, operation_id, reply)
    assert caught.value.status == 200


@pytest.mark.parametrize("operation_id", OPERATIONS)
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_odd_body__nan_and_infinity_are_not_json(client: KaleyraRCS, operation_id: str, token: str) -> None:
    """RFC 8259 has no NaN or Infinity; Python's json.loads accepts them unless told not to."""
    tester = '{"phoneno":"","test_status":"","status":"","agent_no":"","id":"","override_dcs_check":true,"carrierid":0'
    deleted = '{"code":"RCS902","message":"m","data":{"status":"","message":"","message_key":"","n":%s},"error":{}}'
    success = f'[{tester},"extra":{token}}}]' if operation_id == "getTestersByAgent" else deleted % token
    bodies = {200: success, 400: f'{{"code":"RCS904","message":"m","data":{{"n":{token}}}}}'}
    for status, text in bodies.items():
        with pytest.raises(ContractViolation) as caught:
            call(client, operation_id, Reply(status, text.encode()))
        assert caught.value.status == status


# -- 3. documented errors, either layout ----------------------------------------------------------


@settings(max_examples=300, **SETTINGS)
@given(failure=documented_failures())
def test_property_3__error_bodies_in_either_layout_raise_the_typed_error(client: KaleyraRCS, failure: Failure) -> None:
    note(repr(failure))
    expected = expected_class(failure.status, failure.body["code"], failure.error_code)
    event(f"{failure.layout} -> {expected.__name__}")
    with pytest.raises(KaleyraError) as caught:
        call(client, failure.operation_id, failure.reply)
    exc = caught.value
    assert type(exc) is expected, failure.layout
    assert exc.status == failure.status
    assert exc.code == failure.body["code"]
    assert exc.message == failure.body["message"]
    assert exc.error_code == failure.error_code
    assert exc.error_message == failure.error_message
    assert exc.body == failure.body
    if isinstance(exc, RateLimited):
        assert exc.retry_after == (None if failure.retry_after is None else float(failure.retry_after))
    if isinstance(exc, AgentNotFound):
        assert exc.detail == _decoded(failure.error_message)


# -- 4. the api key never shows -----------------------------------------------------------------


@st.composite
def any_failure(draw: st.DrawFn) -> tuple[str, Reply]:
    """Every way a call can fail: a contract break, a documented error, no HTTP answer at all."""
    way = draw(st.sampled_from(["break", "documented", "transport"]))
    if way == "break":
        bad = draw(contract_breaks)
        return bad.operation_id, bad.reply
    if way == "documented":
        failure = draw(documented_failures())
        return failure.operation_id, failure.reply
    error = draw(st.sampled_from([httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError]))
    return draw(operations), Reply(raises=error)


def _assert_no_key(exc: BaseException) -> None:
    assert API_KEY not in str(exc), str(exc)
    assert API_KEY not in repr(exc), repr(exc)


@settings(max_examples=150, **SETTINGS)
@given(case=any_failure())
def test_property_4__the_api_key_never_shows_in_what_is_raised(client: KaleyraRCS, case: tuple[str, Reply]) -> None:
    note(repr(case))
    operation_id, reply = case
    raised = outcome(client, operation_id, reply)
    assert isinstance(raised, KaleyraError)
    if reply.raises is not None:
        assert isinstance(raised, TransportError)
    _assert_no_key(raised)


def _echo_invalid(operation_id: str) -> st.SearchStrategy[Reply]:
    """A 2xx whose body is wrong in a way that quotes the key back (an echoed header, say)."""
    status = sorted(SUCCESS[operation_id])[0]
    wrapped: Callable[[str], Any] = (
        (lambda text: [text]) if operation_id == "getTestersByAgent" else (lambda text: {"code": text})
    )
    return st.sampled_from([f"api-key: {API_KEY}", API_KEY]).map(lambda text: Reply.of_json(status, wrapped(text)))


@st.composite
def echoed_key(draw: st.DrawFn) -> tuple[str, Reply]:
    """Answers in which a (misbehaving or chatty) server repeats the api key it was sent."""
    way = draw(st.sampled_from(["documented", "not_json", "schema"]))
    if way == "documented":
        failure = draw(documented_failures(echo=API_KEY))
        return failure.operation_id, failure.reply
    operation_id = draw(operations)
    if way == "not_json":
        return operation_id, Reply(401, f"<h1>Unauthorized</h1> api-key {API_KEY} refused".encode())
    return operation_id, draw(_echo_invalid(operation_id))


@settings(max_examples=60, **SETTINGS)
@given(case=echoed_key())
def test_property_4__an_echoed_api_key_is_not_repeated_in_what_is_raised(
    client: KaleyraRCS, case: tuple[str, Reply]
) -> None:
    note(repr(case))
    operation_id, reply = case
    raised = outcome(client, operation_id, reply)
    assert isinstance(raised, KaleyraError)
    _assert_no_key(raised)


# -- 5. the fast verdict is jsonschema's -----------------------------------------------------------

STATUSES = [(op, status) for op in OPERATIONS for status in sorted(SCHEMAS[op])]
TESTER = {"phoneno": "", "test_status": "", "status": "", "agent_no": "", "id": "", "override_dcs_check": True}
# What JSON text can carry and Rust's JSON values cannot, or only barely: a lone surrogate, integers
# past 64 bits, the largest floats, and their like inside a body that is otherwise valid.
PYTHON_ONLY = [
    "\ud800",
    [{**TESTER, "carrierid": 1, "phoneno": "\udfff"}],
    [{**TESTER, "carrierid": 2**64}],
    [{**TESTER, "carrierid": -(2**200)}],
    [{**TESTER, "carrierid": 1.0}],
    [{**TESTER, "carrierid": 1.5}],
    [{**TESTER, "carrierid": 1e308}],
    [{**TESTER, "carrierid": True}],
    {"\ud800": [], "code": "RCS902"},
]


@st.composite
def any_body(draw: st.DrawFn) -> tuple[str, int, Any]:
    operation_id, status = draw(st.sampled_from(STATUSES))
    schema = SCHEMAS[operation_id][status]
    body = draw(valid(schema) | invalid(schema).map(lambda broken: broken[0]) | json_values)
    return operation_id, status, body


def _verdicts_agree(operation_id: str, status: int, body: Any) -> None:
    problem = load_spec().contract(operation_id).problem(status, body)
    assert (problem is None) == _is_valid(SCHEMAS[operation_id][status], body), f"{operation_id} {status}: {problem}"


@settings(max_examples=600, **SETTINGS)
@given(case=any_body())
def test_property_5__the_clients_verdict_is_jsonschemas(case: tuple[str, int, Any]) -> None:
    note(repr(case))
    _verdicts_agree(*case)


@pytest.mark.parametrize(("operation_id", "status"), STATUSES)
@pytest.mark.parametrize("body", PYTHON_ONLY, ids=range(len(PYTHON_ONLY)))
def test_property_5__values_only_python_holds_get_jsonschemas_verdict(
    operation_id: str, status: int, body: Any
) -> None:
    _verdicts_agree(operation_id, status, body)
