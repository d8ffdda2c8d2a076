"""The facade against respx routes built from the spec: every example of every status, every base URL.

Nothing here is hand-copied from the spec. The operations' paths, parameters and sample values,
each documented status, each named example (its `$ref` resolved from the raw YAML), the response
headers (Retry-After on 429) and the servers are all walked out of openapi.yaml (tests/_spec.py), so a new
example, status or server adds cases on its own. The typed error each example must raise is
decided by the rules written below, not by asking the client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import respx

import kaleyra_rcs
from kaleyra_rcs import (
    AgentNotFound,
    AsyncKaleyraRCS,
    AuthenticationError,
    ContractViolation,
    DeleteAgentResult,
    GatewayError,
    InternalServerError,
    KaleyraApiError,
    KaleyraError,
    KaleyraRCS,
    MissingRequiredParams,
    RateLimited,
    RcsChannelDisabled,
    ServerError,
)
from tests._spec import Operation, Spec

SPEC = Spec.load()
API_KEY = "respx-test-key-5b1f0c"


def _snake(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


# The operations the facade exposes, those of the spec that are no variant of another:
# operationId -> facade method (named after it).
FACADE = {operation_id: _snake(operation_id) for operation_id in SPEC.facade_operations}

# The real hosts reached with `pod=` (what issue 4 and the documents say); any other server is a `base_url=`.
POD_OF_HOST = {"https://rcs-api.in.kaleyra.io": "in", "https://rcs-api.na.kaleyra.io": "na"}


# -- the spec, walked by tests/_spec.py ---------------------------------------------------------


def facade(operation: Operation) -> str:
    return FACADE[operation.operation_id]


def argument(operation: Operation) -> str:
    """The agent number the facade takes: the spec's example of the `agent_number` parameter."""
    return operation.parameter_example("agent_number")


def expected_path(operation: Operation, sid: str) -> str:
    values = {p["name"]: operation.parameter_example(p["name"]) for p in operation.parameters if p["in"] == "path"}
    return operation.path.format(**{**values, "sid": sid})


def expected_query(operation: Operation) -> dict[str, str]:
    return {p["name"]: operation.parameter_example(p["name"]) for p in operation.parameters if p["in"] == "query"}


OPERATIONS = {operation_id: SPEC.operation(operation_id) for operation_id in FACADE}
SID = OPERATIONS["deleteAgent"].parameter_example("sid")


@dataclass(frozen=True)
class Example:
    operation: Operation
    status: int
    name: str
    value: Any
    headers: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        return f"{self.operation.operation_id}-{self.status}-{self.name}"


def _examples() -> list[Example]:
    """Every (status, name) each facade operation lists, its declared header examples with it."""
    return [
        Example(operation, ex.status, ex.name, ex.value, tuple(ex.headers.items()))
        for operation_id, operation in OPERATIONS.items()
        for ex in SPEC.listed(operation_id)
    ]


@dataclass(frozen=True)
class Base:
    url: str

    @property
    def kwargs(self) -> dict[str, str]:
        pod = POD_OF_HOST.get(self.url)
        return {"pod": pod} if pod else {"base_url": self.url}

    @property
    def id(self) -> str:
        return "-".join(f"{k}={v}" for k, v in self.kwargs.items())

    @property
    def parts(self) -> tuple[str, str, int, str]:
        split = urlsplit(self.url)
        assert split.hostname is not None
        port = split.port or {"https": 443, "http": 80}[split.scheme]
        return split.scheme, split.hostname, port, split.path.rstrip("/")


EXAMPLES = _examples()
BASES = [Base(url) for url in SPEC.server_urls()]
CASES = [pytest.param(example, base, id=f"{example.id}@{base.id}") for example in EXAMPLES for base in BASES]


# -- what each example must give --------------------------------------------------------------


def _constant(value: dict[str, Any]) -> tuple[str | None, str | None]:
    for holder in (value.get("error"), (value.get("data") or {}).get("error")):
        if isinstance(holder, dict) and holder:
            return holder.get("error_code"), holder.get("error_message")
    return None, None


def expected_error(status: int, value: dict[str, Any]) -> type[KaleyraError]:
    """Issue 4 §2: one typed error per documented failure; the rest generic (ServerError for a 5xx)."""
    code = value.get("code")
    error_code, _ = _constant(value)
    if status == 401:
        return AuthenticationError
    if status == 429:
        return RateLimited
    if code == "RCS502":
        return GatewayError
    if code == "RCS500":
        return InternalServerError
    if error_code == "PROV_ERROR":
        return AgentNotFound
    if error_code == "MISSING_REQUIRED_PARAMS":
        return MissingRequiredParams
    if error_code == "RCS_CHANNEL_DISABLED" or code == "RCS601":
        return RcsChannelDisabled
    return ServerError if status >= 500 else KaleyraApiError


def _representative() -> Iterator[Example]:
    """For the async client: the first example of each outcome (a success or an error class) of each operation."""
    seen: set[tuple[str, str]] = set()
    for example in EXAMPLES:
        ok = 200 <= example.status < 300
        outcome = "ok" if ok else expected_error(example.status, example.value).__name__
        if (example.operation.operation_id, outcome) not in seen:
            seen.add((example.operation.operation_id, outcome))
            yield example


ASYNC_BASES = [b for b in BASES if b.kwargs.get("pod") == "na" or b.url.endswith("/in")]
ASYNC_CASES = [
    pytest.param(example, base, id=f"{example.id}@{base.id}") for example in _representative() for base in ASYNC_BASES
]


def _route(router: respx.MockRouter, example: Example, base: Base) -> respx.Route:
    scheme, host, port, prefix = base.parts
    operation = example.operation
    route = router.route(
        method=operation.method,
        scheme=scheme,
        host=host,
        port=port,
        path=prefix + expected_path(operation, SID),
        params=expected_query(operation) or None,
    )
    route.mock(return_value=httpx.Response(example.status, json=example.value, headers=dict(example.headers)))
    return route


def _check_request(route: respx.Route, example: Example, base: Base) -> None:
    assert route.call_count == 1
    request = route.calls.last.request
    scheme, host, port, prefix = base.parts
    operation = example.operation
    assert request.method == operation.method
    assert (request.url.scheme, request.url.host, request.url.port or port) == (scheme, host, port)
    assert request.url.path == prefix + expected_path(operation, SID)
    assert SID in request.url.path
    assert dict(request.url.params) == expected_query(operation)
    assert request.headers["api-key"] == API_KEY
    assert "bearer" not in request.headers["api-key"].lower()
    assert "authorization" not in request.headers
    assert request.headers["content-type"] == "application/json"
    assert request.content == b""


def _check_outcome(example: Example, outcome: Any) -> None:
    """`outcome` is what the call returned, or the exception it raised."""
    value = example.value
    if 200 <= example.status < 300:
        assert not isinstance(outcome, BaseException), f"{example.id} raised {outcome!r}"
        if example.operation.operation_id == "getTestersByAgent":
            assert isinstance(outcome, list)
            assert all(isinstance(item, kaleyra_rcs.Tester) for item in outcome)
            assert [item.to_dict() for item in outcome] == value
        else:
            assert isinstance(outcome, DeleteAgentResult)
            assert outcome.to_dict() == value
        return
    assert isinstance(outcome, KaleyraError), f"{example.id} returned {outcome!r}"
    assert not isinstance(outcome, ContractViolation), str(outcome)
    assert type(outcome) is expected_error(example.status, value)
    error_code, error_message = _constant(value)
    assert outcome.status == example.status
    assert outcome.code == value["code"]
    assert outcome.message == value["message"]
    assert outcome.error_code == error_code
    assert outcome.error_message == error_message
    assert outcome.body == value
    if isinstance(outcome, AgentNotFound):
        assert outcome.detail == {"status": "FAILED", "message": "Agent not found"}
    if isinstance(outcome, RateLimited):
        headers = dict(example.headers)
        assert "Retry-After" in headers, "the spec documents Retry-After on 429"
        assert outcome.retry_after == float(headers["Retry-After"])
    assert API_KEY not in str(outcome)
    assert API_KEY not in repr(outcome)


# -- the walk itself ----------------------------------------------------------------------------


def test_walk__finds_both_operations_every_status_and_every_server() -> None:
    assert FACADE == {"getTestersByAgent": "get_testers_by_agent", "deleteAgent": "delete_agent"}
    assert set(OPERATIONS) == set(FACADE)
    for operation_id, operation in OPERATIONS.items():
        walked = {e.status for e in EXAMPLES if e.operation.operation_id == operation_id}
        assert walked == {int(s) for s in operation.raw["responses"]}, "every documented status has a named example"
    assert any(e.status == 429 and dict(e.headers).get("Retry-After") for e in EXAMPLES)
    assert [b.url for b in BASES] == [
        "https://rcs-api.in.kaleyra.io",
        "https://rcs-api.na.kaleyra.io",
        "https://rcs-api.na.kaleyra.ai",
        "http://127.0.0.1:8080/in",
        "http://127.0.0.1:8080/na",
    ]
    assert [b.kwargs for b in BASES[:3]] == [
        {"pod": "in"},
        {"pod": "na"},
        {"base_url": "https://rcs-api.na.kaleyra.ai"},
    ]
    assert len(CASES) == len(EXAMPLES) * len(BASES)
    raised = {expected_error(e.status, e.value) for e in EXAMPLES if e.status >= 300}
    assert raised == {
        AgentNotFound,
        MissingRequiredParams,
        RcsChannelDisabled,
        GatewayError,
        InternalServerError,
        AuthenticationError,
        RateLimited,
        KaleyraApiError,
    }


def test_walk__every_example_is_json_with_a_code_or_a_list() -> None:
    for example in EXAMPLES:
        json.dumps(example.value)
        assert isinstance(example.value, list) or "code" in example.value, example.id


# -- the sync client, every case --------------------------------------------------------------


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, KaleyraRCS]]:
    """One client per base URL for the module (each new httpx client loads the CA bundle)."""
    made = {base.url: KaleyraRCS(api_key=API_KEY, sid=SID, **base.kwargs) for base in BASES}
    yield made
    for client in made.values():
        client.close()


@pytest.mark.parametrize(("example", "base"), CASES)
def test_sync__every_example_at_every_base_url(clients: dict[str, KaleyraRCS], example: Example, base: Base) -> None:
    client = clients[base.url]
    assert client.base_url == base.url
    with respx.mock(assert_all_called=True) as router:
        route = _route(router, example, base)
        try:
            outcome: Any = getattr(client, facade(example.operation))(argument(example.operation))
        except KaleyraError as exc:
            outcome = exc
    _check_request(route, example, base)
    _check_outcome(example, outcome)


# -- the async client, a representative subset ------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("example", "base"), ASYNC_CASES)
async def test_async__first_example_of_each_status(example: Example, base: Base) -> None:
    async with AsyncKaleyraRCS(api_key=API_KEY, sid=SID, **base.kwargs) as client:
        assert client.base_url == base.url
        with respx.mock(assert_all_called=True) as router:
            route = _route(router, example, base)
            try:
                outcome: Any = await getattr(client, facade(example.operation))(argument(example.operation))
            except KaleyraError as exc:
                outcome = exc
    _check_request(route, example, base)
    _check_outcome(example, outcome)
