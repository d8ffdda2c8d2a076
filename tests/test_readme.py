"""The README's scenario table is the spec's catalogue, rendered; every row is served."""

from __future__ import annotations

import pytest

from mock_server.core import SpecIndex, scenarios
from mock_server.web import create_app
from tools.readme import README, rendered

SPEC = SpecIndex.load()


def test_readme__scenario_table_is_generated_from_the_spec() -> None:
    text = README.read_text(encoding="utf-8")
    assert rendered(text, SPEC) == text, "run `make docs`"


def test_readme__every_example_of_the_spec_has_a_row() -> None:
    names = {row.name for row in scenarios(SPEC)}
    expected = {name for op in SPEC.operations.values() for name in (*op.examples, *op.own)}
    assert names == expected


def test_readme__rows_carry_the_examples_status_and_code() -> None:
    for row in scenarios(SPEC):
        for op in SPEC.operations.values():
            example = op.examples.get(row.name) or op.own.get(row.name)
            if example is not None:
                assert example.status == row.status, (row.name, op.operation_id)
                value = example.value
                assert row.code == (value["code"] if isinstance(value, dict) else "(a list)")


@pytest.mark.parametrize(("agent", "name"), sorted(SPEC.magic_agents().items()))
def test_readme__magic_agent_answers_its_example(agent: str, name: str) -> None:
    client = create_app(spec=SPEC).test_client()
    takes_agent = [op for op in SPEC.operations.values() if op.method == "GET" or "{agent_number}" in op.path]
    takers = [op for op in takes_agent if name in op.examples]
    assert takers, f"{name} has a magic agent but no operation that takes an agent number lists it"
    for op in takers:
        path = op.path.replace("{sid}", "S1").replace("{agent_number}", agent)
        query = {} if "{agent_number}" in op.path else {"agent_number": agent}
        response = client.open(path, method=op.method, query_string=query, headers={"api-key": "k"})
        assert (response.headers["X-Mock-Source"], response.headers.get("X-Mock-Example")) == ("magic", name), op.path
