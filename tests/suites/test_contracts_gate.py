"""The coverage gate's bookkeeping: what counts as observed, and what it still misses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts._support import GATED_OPERATIONS, PODS, SPEC, Observations, operation_of
from tests._spec import ROOT


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/in/v1/S/rcs/agent/testersbyagent", "getTestersByAgent"),
        ("POST", "/na/v1/S/rcs/agenttester/testersbyagent", "getTestersByAgent"),
        ("GET", "/wsgw/v1/agent/testersbyagent", "getTestersByAgent"),
        ("DELETE", "/na/v1/S/rcs/agent/48400", "deleteAgent"),
        ("DELETE", "/in/v1/S/rcs/agent/", "deleteAgent"),
        ("DELETE", "/in/v1/S/rcs/agent", "deleteAgent"),
        ("GET", "/in/v1/S/rcs/agent/48400", None),
        ("GET", "/in/nowhere", None),
    ],
)
def test_operation_of__maps_paths_and_variants_to_the_canonical_operation(
    method: str, path: str, operation: str | None
) -> None:
    assert operation_of(method, path) == operation


def test_observations__nothing_seen_means_everything_missing() -> None:
    seen = Observations()
    required = seen.required()
    per_pod = sum(len(SPEC.operations[op].examples) for op in GATED_OPERATIONS)
    assert len(required) == len(PODS) * per_pod
    assert seen.missing() == sorted(required)
    assert seen.missing_2xx() == sorted((pod, op) for pod in PODS for op in GATED_OPERATIONS)


def test_observations__a_recorded_answer_is_no_longer_missing(tmp_path: Path) -> None:
    seen = Observations()
    seen.record("na", "DELETE", "/na/v1/S/rcs/agent/48400", 200, "agent_deleted")
    seen.record("na", "GET", "/in/nowhere", 404, "not_found")  # no operation: not gated
    assert ("na", "deleteAgent", 200, "agent_deleted") not in seen.missing()
    assert ("in", "deleteAgent", 200, "agent_deleted") in seen.missing()  # per pod
    assert ("na", "deleteAgent") not in seen.missing_2xx()
    seen.write(tmp_path)
    rows = json.loads((tmp_path / "coverage.json").read_text())["rows"]
    assert {
        "pod": "na",
        "operation": "deleteAgent",
        "status": 200,
        "example": "agent_deleted",
        "observed": True,
    } in rows
    assert "| na | deleteAgent | 200 | agent_deleted | yes |" in (tmp_path / "coverage.md").read_text()


def test_coverage_gate__fails_a_run_that_never_asks_for_some_documented_answers(tmp_path: Path) -> None:
    """Without the suite that asks for every named answer, the 5xx ones are never seen: the run must fail."""
    import subprocess
    import sys

    root = ROOT
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "contracts", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--deselect", "contracts/test_documented.py::test_every_named_answer__is_served_and_valid",
         "--deselect", "contracts/test_documented.py::test_every_named_answer__reaches_the_client_as_documented"],
        cwd=root, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:]
    assert "coverage gate FAILED" in done.stdout
    assert "getTestersByAgent 500 gateway_error" in done.stdout
