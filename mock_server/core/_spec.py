"""An index of openapi.yaml: which operation answers which named example.

The mock never writes a response body of its own for a documented case: it renders the
spec's examples, so the spec and the mock cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "SPEC_PATH",
    "Example",
    "Operation",
    "SpecIndex",
    "encode_json",
    "load_yaml",
]

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> Any:
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=_Loader)  # noqa: S506 - a safe loader


def encode_json(value: Any) -> bytes:
    """Compact, key order kept: the bytes a client sees for a documented body."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Example:
    """One named response of one operation, pre-encoded."""

    name: str
    status: int
    value: Any
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    documented: str | None = None
    assumed: str | None = None


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    canonical: str
    examples: Mapping[str, Example] = field(default_factory=dict)
    assumed: str | None = None

    def statuses(self) -> list[int]:
        return sorted({e.status for e in self.examples.values()})

    def first_example_for(self, status: int) -> Example | None:
        """Prism's rule: the first example listed under that status."""
        for example in self.examples.values():
            if example.status == status:
                return example
        return None


class SpecIndex:
    """Operations and examples of one OpenAPI document, resolved once at start-up."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.operations: dict[str, Operation] = {}
        self.shared: dict[str, Example] = {}
        for path, item in document.get("paths", {}).items():
            for method, op in item.items():
                if method in {"parameters", "summary", "description"} or not isinstance(op, dict):
                    continue
                self._add_operation(path, method.upper(), op)
        for ref_name in ("NotFound", "MethodNotAllowed"):
            response = document["components"]["responses"][ref_name]
            for name, example in self._examples_of(404 if ref_name == "NotFound" else 405, response):
                self.shared[name] = example

    @classmethod
    def load(cls, path: Path | None = None) -> SpecIndex:
        return cls(load_yaml(path or SPEC_PATH))

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref is supported: {ref}")
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _examples_of(self, status: int, response: Any) -> list[tuple[str, Example]]:
        response = self.resolve(response)
        headers: list[tuple[str, str]] = []
        for header_name, header in (response.get("headers") or {}).items():
            header = self.resolve(header)
            value = header.get("example", header.get("schema", {}).get("example"))
            if value is not None:
                headers.append((header_name, str(value)))
        media = (response.get("content") or {}).get("application/json") or {}
        out = []
        for name, raw in (media.get("examples") or {}).items():
            ex = self.resolve(raw)
            value = ex["value"]
            out.append(
                (
                    name,
                    Example(
                        name=name,
                        status=status,
                        value=value,
                        body=encode_json(value),
                        headers=tuple(headers),
                        documented=ex.get("x-documented"),
                        assumed=ex.get("x-assumed"),
                    ),
                )
            )
        return out

    def _add_operation(self, path: str, method: str, op: Mapping[str, Any]) -> None:
        examples: dict[str, Example] = {}
        for status, response in op.get("responses", {}).items():
            for name, example in self._examples_of(int(status), response):
                examples.setdefault(name, example)
        op_id = op["operationId"]
        self.operations[op_id] = Operation(
            operation_id=op_id,
            method=method,
            path=path,
            canonical=op.get("x-variant-of", op_id),
            examples=examples,
            assumed=op.get("x-assumed"),
        )

    def example(self, operation_id: str, name: str) -> Example:
        return self.operations[operation_id].examples[name]

    def all_example_names(self) -> list[str]:
        names: dict[str, None] = {}
        for op in self.operations.values():
            names.update(dict.fromkeys(op.examples))
        return list(names)
