"""The README's scenario table is the spec's catalogue, rendered; every row is served.

The table is rendered from the mock's index (`spec_index`); what it must list is read from the
raw spec by the tests' own walker, so the index cannot vouch for itself.
"""

from __future__ import annotations

import pytest

from mock_server.core import SpecIndex, scenarios
from mock_server.web import create_app
from tests._spec import Spec
from tools.readme import README, rendered

SPEC = Spec.load()


def test_readme__scenario_table_is_generated_from_the_spec(spec_index: SpecIndex) -> None:
    text = README.read_text(encoding="utf-8")
    assert rendered(text, spec_index) == text, "run `make docs`"


def test_readme__every_example_of_the_spec_has_a_row(spec_index: SpecIndex) -> None:
    names = {row.name for row in scenarios(spec_index)}
    expected = {name for op in SPEC.operations for name in (*SPEC.examples(op), *SPEC.own(op))}
    assert names == expected


def test_readme__rows_carry_the_examples_status_and_code(spec_index: SpecIndex) -> None:
    rows = scenarios(spec_index)
    assert rows
    for row in rows:
        for op in SPEC.operations:
            example = SPEC.examples(op).get(row.name) or SPEC.own(op).get(row.name)
            if example is not None:
                assert example.status == row.status, (row.name, op)
                value = example.value
                assert row.code == (value["code"] if isinstance(value, dict) else "(a list)")


@pytest.mark.parametrize(("agent", "name"), sorted(SPEC.magic_agents().items()))
def test_readme__magic_agent_answers_its_example(
    spec_index: SpecIndex, headers: dict[str, str], agent: str, name: str
) -> None:
    client = create_app(spec=spec_index).test_client()
    takes_agent = [op for op in SPEC.operations.values() if op.method == "GET" or "{agent_number}" in op.path]
    takers = [op for op in takes_agent if name in SPEC.examples(op.operation_id)]
    assert takers, f"{name} has a magic agent but no operation that takes an agent number lists it"
    for op in takers:
        path = op.path.replace("{sid}", "S1").replace("{agent_number}", agent)
        query = {} if "{agent_number}" in op.path else {"agent_number": agent}
        response = client.open(path, method=op.method, query_string=query, headers=headers)
        assert (response.headers["X-Mock-Source"], response.headers.get("X-Mock-Example")) == ("magic", name), op.path
