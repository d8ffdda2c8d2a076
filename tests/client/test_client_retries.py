"""Retries of the GET on answers that are no Kaleyra answer but are transient."""

from __future__ import annotations

import json

import httpx
import pytest

from kaleyra_rcs import ContractViolation, KaleyraRCS
from tests._spec import Spec

# The answer once the proxy recovers: the spec's testers sample.
TESTERS = Spec.load().examples("getTestersByAgent")["testers"].value


def _flaky(status: int, failures: int) -> tuple[httpx.MockTransport, list[int]]:
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) <= failures:
            return httpx.Response(status, content=b"<html>bad gateway</html>", headers={"Content-Type": "text/html"})
        return httpx.Response(200, content=json.dumps(TESTERS).encode(), headers={"Content-Type": "application/json"})

    return httpx.MockTransport(answer), calls


@pytest.mark.parametrize("status", [502, 503, 504])
def test_get_testers_by_agent__a_proxys_gateway_error_is_retried(status: int) -> None:
    transport, calls = _flaky(status, failures=2)
    waits: list[float] = []
    client = KaleyraRCS(
        api_key="k", sid="S", base_url="http://x/in", transport=transport, retries=2, sleep=waits.append
    )
    assert [t.to_dict() for t in client.get_testers_by_agent("1")] == TESTERS
    assert len(calls) == 3
    assert waits == [0.5, 1.0]


@pytest.mark.parametrize("status", [503, 404])
def test_get_testers_by_agent__without_retries_it_is_a_contract_violation_once(status: int) -> None:
    transport, calls = _flaky(status, failures=5)
    client = KaleyraRCS(
        api_key="k", sid="S", base_url="http://x/in", transport=transport, retries=3 if status == 404 else 0
    )
    with pytest.raises(ContractViolation):
        client.get_testers_by_agent("1")
    assert len(calls) == 1  # 404 is not transient: never retried


def test_delete_agent__a_gateway_error_is_never_retried() -> None:
    transport, calls = _flaky(503, failures=5)
    client = KaleyraRCS(api_key="k", sid="S", base_url="http://x/in", transport=transport, retries=3)
    with pytest.raises(ContractViolation):
        client.delete_agent("1")
    assert len(calls) == 1
