"""Every answer the mock gives to an operation is one the spec lists for it: under `responses`
(documented or `x-assumed`), or, for what only the mock answers, under `x-mock-own-responses`.

The client checks every answer against `responses`, so a status the mock gives and the spec
does not list would make it raise ContractViolation against the mock; a status listed there
that only the mock gives would make it accept the mock's answer from the real Kaleyra.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from kaleyra_rcs._spec import contract_for
from mock_server.core import MAX_DEPTH, Operation, SpecIndex
from mock_server.web import MAX_BODY, create_app

SPEC = SpecIndex.load()
OPERATIONS = list(SPEC.operations.values())
KEY = {"api-key": "k"}
JSON = {"Content-Type": "application/json"}
MAGIC = list(SPEC.magic_agents)

# Path parameters as a client might send them: plain, magic, the words the routes treat
# apart, and the hostile ones (an encoded slash, bytes that are not UTF-8, an empty one).
path_value = st.one_of(
    st.sampled_from(["48900", "48400", "12345", "S", "testersbyagent", "agent", "a%2Fb", "%2F", "%FF", "%C3%A9"]),
    st.sampled_from(MAGIC),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"), max_size=8),
)
query = st.lists(
    st.tuples(st.sampled_from(["agent_number", "agent_number", "x"]), st.one_of(path_value, st.just(""))),
    max_size=3,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "api-key": st.sampled_from(["k", "", " ", "k,k"]),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "", "application/json; charset=utf-8"]),
        "Prefer": st.one_of(
            st.sampled_from(
                ["code=400", "code=404", "code=405", "code=500", "code=418", "example=nope", "code=" + "9" * 5000]
            ),
            st.sampled_from(SPEC.all_example_names()).map(lambda name: f"example={name}"),
        ),
        "Content-Encoding": st.sampled_from(["gzip", "identity"]),
        "Host": st.sampled_from([*SPEC.pod_hosts, "a, b", "localhost"]),  # every pod's hosts, two that are none
    },
)
body = st.one_of(
    st.just(b""),
    st.sampled_from([b'{"agent_number": "48900"}', b"{", b"[]", b'{"agent_number": 5}', b'{"a": 1, "a": 2}']),
    st.just(b'{"x": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"),
    st.binary(max_size=40),
)


def _listed(op: Operation) -> set[int]:
    return {e.status for e in op.examples.values()} | {e.status for e in op.own.values()}


def _url(op: Operation, values: dict[str, str], pairs: list[tuple[str, str]], prefix: str) -> str:
    path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], op.path)
    qs = "&".join(f"{quote(k)}={v}" for k, v in pairs)
    return prefix + path + (f"?{qs}" if qs else "")


APP: Flask = create_app()
CLIENT = APP.test_client()


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.operation_id for op in OPERATIONS])
@settings(max_examples=150, deadline=None)
@given(
    sid=path_value,
    agent=path_value,
    pairs=query,
    sent=headers,
    payload=body,
    prefix=st.sampled_from(["", "/in", "/na"]),
    lie=st.booleans(),
)
def test_every_answer_of_an_operation__is_listed_for_it(
    op: Operation,
    sid: str,
    agent: str,
    pairs: list[tuple[str, str]],
    sent: dict[str, str],
    payload: bytes,
    prefix: str,
    lie: bool,
) -> None:
    url = _url(op, {"sid": sid or "S", "agent_number": agent or "48400"}, pairs, prefix)
    request_headers = {**KEY, **JSON, **sent}
    environ: dict[str, Any] = {}
    if op.method == "POST" and lie:  # a Content-Length past the limit: refused before any byte is read
        environ["CONTENT_LENGTH"] = str(MAX_BODY + 1)
    data = payload if op.method == "POST" else None
    APP.extensions["kaleyra_mock"].store.reset()  # from the seed, whatever an earlier example deleted
    for method in (op.method, "HEAD") if op.method == "GET" else (op.method,):
        response = CLIENT.open(url, method=method, headers=request_headers, data=data, environ_overrides=environ)
        # The property itself is membership: any status the spec lists for the operation is allowed, no other.
        assert response.status_code in _listed(op), (op.operation_id, method, url, response.status_code)
        if method == "HEAD":
            continue
        answer = json.loads(response.get_data())
        assert not (isinstance(answer, dict) and answer.get("code") == "MOCK500"), answer
        if response.status_code in contract_for(op.operation_id).statuses:
            assert contract_for(op.operation_id).problem(response.status_code, answer) is None, answer


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.operation_id)
def test_every_operation__lists_the_mocks_own_answers_and_the_client_never_expects_them(op: Operation) -> None:
    """408 and 413, which only the server's body reading gives (soak/_hostile.py sends them over a
    socket), on the operations that read a body; 502 and 504, the proxy's own (tests/proxy), 503,
    the Redis store's when it cannot be reached (tests/replicas/test_store_outage.py), and
    the 404s `not_in_cassette` of --replay-strict (tests/replay) and `unknown_pod_prefix` (a base URL
    under no pod, tests/mock/test_api.py), on every one: listed as the mock's own. The client's
    contract leaves the 408, 413, 502, 503 and 504 out (404 is Kaleyra's too: the mock's own 404s are in
    its envelope, so the client raises them as the API error they are, MOCK404 and its message)."""
    expected = {404, 408, 413, 502, 503, 504} if op.method == "POST" else {404, 502, 503, 504}
    assert {e.status for e in op.own.values()} == expected
    assert {"not_in_cassette", "unknown_pod_prefix"} <= set(op.own)
    assert not (expected - {404}) & set(contract_for(op.operation_id).statuses)


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.operation_id for op in OPERATIONS])
def test_every_operation__lists_the_answers_a_request_gets_before_routing(op: Operation) -> None:
    """A request the mock cannot read (400 bad_request) and an encoded slash (404 not_found) can
    reach any operation's URL; a client calling it must find both in the spec."""
    assert {"bad_request", "not_found"} <= set(op.examples), op.operation_id
    assert {400, 404} <= set(contract_for(op.operation_id).statuses)
