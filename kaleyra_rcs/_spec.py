"""An openapi.yaml as response validators: what each operation may answer.

`load_spec()` reads the packaged spec; `load_spec(path)` another copy of it (a spec with a newly
documented answer, say), so the client checks answers against whichever document it was given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["SPEC_PATH", "Problem", "ResponseContract", "Spec", "contract_for", "load_spec", "servers"]

SPEC_PATH = Path(__file__).resolve().parent / "openapi.yaml"
_URN = "urn:kaleyra-rcs:openapi"


@dataclass(frozen=True)
class Problem:
    """The first way a body breaks its schema: where (a JSON pointer) and what."""

    pointer: str
    message: str


class ResponseContract:
    """The documented statuses of one operation and the schema of each.

    Each schema is compiled twice: by jsonschema-rs, which says only whether a body is valid, in
    about 1 µs (jsonschema takes about 110), and by jsonschema, whose first error names the pointer
    and the rule. A valid body (the usual answer) costs the first; a broken one the second, whose
    verdict stands. `tests/client/test_validation.py` holds the two to the same verdicts."""

    def __init__(
        self,
        operation_id: str,
        validators: dict[int, Draft202012Validator],
        checks: Mapping[int, jsonschema_rs.Validator],
    ) -> None:
        self.operation_id = operation_id
        self._validators = validators
        self._checks = checks

    @property
    def statuses(self) -> list[int]:
        return sorted(self._validators)

    def documents(self, status: int) -> bool:
        return status in self._validators

    def problem(self, status: int, body: Any) -> Problem | None:
        """The first error met, and only that one: a huge wrong body costs no more than its walk."""
        try:
            if self._checks[status].is_valid(body):
                return None
        except ValueError:  # a lone surrogate in a string: jsonschema-rs takes only what UTF-8 holds
            pass
        first = next(self._validators[status].iter_errors(body), None)
        if first is None:
            return None
        pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in first.absolute_path)
        return Problem(pointer or "/", _describe(first))


class Spec:
    """One openapi.yaml: the response contract of each of its operations."""

    def __init__(self, path: Path, contracts: dict[str, ResponseContract]) -> None:
        self.path = path
        self._contracts = contracts

    def contract(self, operation_id: str) -> ResponseContract:
        return self._contracts[operation_id]


def _describe(error: ValidationError) -> str:
    """The broken rule without the offending value, which may be huge (or a secret)."""
    if error.validator in {"required", "additionalProperties"}:
        return error.message  # names a property, never a value
    rule = json.dumps(error.validator_value, default=str)
    return f"must satisfy {error.validator} {rule if len(rule) <= 80 else rule[:80] + '…'}"


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def load_spec(path: str | os.PathLike[str] | None = None) -> Spec:
    """The spec at `path` (default: the packaged one), read once per path."""
    return _load(Path(path).resolve() if path is not None else SPEC_PATH)


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        doc: dict[str, Any] = yaml.load(fh, Loader=_Loader)  # noqa: S506 - a safe loader
    return doc


@cache
def _load(path: Path) -> Spec:
    doc = _read(path)
    registry: Registry[Any] = Registry().with_resource(
        _URN, Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    compiled = jsonschema_rs.Registry([(_URN, doc)])
    contracts: dict[str, ResponseContract] = {}
    for item in doc["paths"].values():
        for method, op in item.items():
            if method == "parameters":
                continue
            validators, checks = {}, {}
            for status, response in op["responses"].items():
                schema = _resolve(doc, response)["content"]["application/json"]["schema"]
                ref = schema["$ref"]  # every response schema in the spec is a component reference
                validators[int(status)] = Draft202012Validator({"$ref": _URN + ref}, registry=registry)
                checks[int(status)] = jsonschema_rs.Draft202012Validator({"$ref": _URN + ref}, registry=compiled)
            contracts[op["operationId"]] = ResponseContract(op["operationId"], validators, checks)
    return Spec(path, contracts)


def servers() -> list[tuple[str, str]]:
    """(base URL, pod) of each Kaleyra server of the packaged spec, in its order: those that name
    an `x-pod`. Read without building the validators, so importing the client stays cheap."""
    return [(str(s["url"]), str(s["x-pod"])) for s in _read(SPEC_PATH).get("servers", ()) if "x-pod" in s]


def contract_for(operation_id: str) -> ResponseContract:
    """The packaged spec's contract of one operation."""
    return load_spec().contract(operation_id)
