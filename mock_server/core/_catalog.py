"""The scenario catalogue: every named answer the mock gives, read from openapi.yaml alone.

The README's scenario table is this catalogue rendered (`make docs`), so an example added to
the spec is listed with its status, code, evidence, trigger and magic agent without a second
edit anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._spec import Example, SpecIndex

__all__ = ["Scenario", "scenario_table", "scenarios"]


@dataclass(frozen=True)
class Scenario:
    name: str
    status: int
    code: str
    evidence: str
    when: str
    magic_agent: str


def _evidence(example: Example) -> str:
    if example.documented and example.assumed:
        return "D+A"
    return "D" if example.documented else "A"


def scenarios(spec: SpecIndex) -> list[Scenario]:
    """Kaleyra's answers by status (the spec's order within one), then the mock's own."""
    found: dict[str, list[tuple[str, Example]]] = {}
    for op in spec.operations.values():
        for name, example in op.examples.items():
            found.setdefault(name, []).append((op.tag or op.canonical, example))
    own = {name: example for op in spec.operations.values() for name, example in op.own.items()}
    rows = []
    for name, uses in found.items():
        by_tag: dict[str, set[str]] = {}
        for tag, example in uses:
            by_tag.setdefault(_evidence(example), set()).add(tag)
        if len(by_tag) == 1:
            evidence = next(iter(by_tag))
        else:
            evidence = ", ".join(f"{kind} ({', '.join(sorted(tags))})" for kind, tags in sorted(by_tag.items()))
        rows.append(_row(name, [example for _tag, example in uses], evidence))
    rows.sort(key=lambda row: row.status)  # stable: the spec's order within a status
    rows.extend(_row(name, [example], "the mock's own") for name, example in own.items())
    return rows


def _row(name: str, uses: list[Example], evidence: str) -> Scenario:
    first = uses[0]
    value = first.value
    code = str(value.get("code", "")) if isinstance(value, dict) else "(a list)"
    whens = dict.fromkeys(example.when for example in uses if example.when)
    return Scenario(name, first.status, code, evidence, "; ".join(whens), first.magic_agent or "")


def scenario_table(spec: SpecIndex) -> str:
    """Markdown, one row per scenario."""
    lines = ["| name | status | code | doc | when the mock answers it | magic agent |", "|---|---|---|---|---|---|"]
    for row in scenarios(spec):
        magic = f"`{row.magic_agent}`" if row.magic_agent else ""
        lines.append(f"| `{row.name}` | {row.status} | {row.code} | {row.evidence} | {row.when} | {magic} |")
    return "\n".join(lines) + "\n"
