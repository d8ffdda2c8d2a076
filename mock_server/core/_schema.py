"""One JSON Schema (draft 2020-12) as the mock holds a document to it: a seed, a state, a
control request's body.

Two libraries, each for what it is good at. jsonschema-rs says whether a document is valid in
microseconds, and importing it costs about 3 ms; jsonschema, imported only when a document is
refused, names where and which rule, and its verdict stands: a document jsonschema-rs refuses
and jsonschema accepts is accepted. jsonschema-rs's "valid" is taken only for documents of
dicts, lists and JSON's scalars (it reads a tuple as an array; jsonschema does not).

Importing jsonschema was 60 ms of every start (each worker, and the parent validating its seed)
and of the first `create_app` in a test session. The client does the same for answers
(`kaleyra_rcs._spec.ResponseContract`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import jsonschema_rs

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

__all__ = ["Schema"]

_SCHEMA_NAMES_ONLY = frozenset({"required", "dependentRequired"})


class Schema:
    """A compiled schema: `first_problem(doc)` is None for a valid document."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._check = jsonschema_rs.Draft202012Validator(schema)
        self._namer: Draft202012Validator | None = None

    def first_problem(self, doc: Any) -> str | None:
        """The first error met, and only that one: collecting every error of a refused 100 KB
        document took seconds and hundreds of MB."""
        try:
            if _plain_json(doc) and self._check.is_valid(doc):
                return None
        except ValueError:  # a value JSON has no word for (a YAML date, a non-string key): jsonschema says
            pass
        error = next(self._naming().iter_errors(doc), None)
        return None if error is None else describe_error(error)

    def _naming(self) -> Draft202012Validator:
        if self._namer is None:  # two threads may both build it: the same validator either way
            from jsonschema import Draft202012Validator

            self._namer = Draft202012Validator(self.schema)
        return self._namer


_SCALARS = (str, int, float, bool, type(None))


def _plain_json(doc: Any) -> bool:
    """Only dicts, lists and JSON's scalars, as JSON and YAML give. jsonschema-rs takes a tuple
    for an array, which jsonschema refuses; a document handed in from Python (`load_state`) may
    hold one, and a store then fails on it (`.append`)."""
    todo = [doc]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
        elif not isinstance(node, _SCALARS):
            return False
    return True


def describe_error(error: ValidationError) -> str:
    """Where a document breaks its schema and which rule, never the offending value: the
    value may be an api key, and a refusal must not echo one. Nor a refused property name:
    the messages kept whole name only the schema's own properties."""
    where = "/" + "/".join(str(p) for p in error.absolute_path)
    if error.validator in _SCHEMA_NAMES_ONLY:
        return f"{where}: {error.message}"
    if error.validator == "additionalProperties" and isinstance(error.schema, dict):
        allowed = ", ".join(error.schema.get("properties", {})) or "none"
        return f"{where}: a property the schema does not allow (allowed: {allowed})"
    rule = json.dumps(error.validator_value, default=str)
    rule = rule if len(rule) <= 120 else rule[:120] + "…"
    if error.validator == "propertyNames":
        return f"{where}: a property name must satisfy {rule}"
    return f"{where}: must satisfy {error.validator} {rule}"
