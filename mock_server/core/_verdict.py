"""What openapi.yaml says of one answer someone else gave: the verdicts of a proxied exchange.

Pure: a request line, a status, headers and a body in, a `Verdict` out. Which body is valid is
decided by the client's validators (`kaleyra_rcs` `load_spec`, passed in as `contracts`), so the
proxy, the client and the contract suites share one rule. Each `Violation` says whether what it
breaks is `documented` or `x-assumed` in the spec: an answer that breaks an assumption teaches
something about the spec; one that breaks a documented row teaches something about Kaleyra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ._cassette import Violation
from ._json import INVALID_JSON, strict_json
from ._spec import Example, Operation, Router, SpecIndex

__all__ = ["Contracts", "Judge", "Verdict"]

Mark = Literal["documented", "x-assumed"]
# A body is never expected with these (RFC 9110 sections 9.3.2, 15.3.5, 15.4.5).
_NO_BODY_STATUSES = frozenset({204, 304})


class _Problem(Protocol):
    @property
    def pointer(self) -> str: ...
    @property
    def message(self) -> str: ...


class _Contract(Protocol):
    def documents(self, status: int) -> bool: ...
    def problem(self, status: int, body: Any) -> _Problem | None: ...


class Contracts(Protocol):
    """What `kaleyra_rcs._spec.Spec` offers: the response contract of each operation."""

    def contract(self, operation_id: str) -> _Contract: ...


@dataclass(frozen=True)
class Verdict:
    operation: str | None  # the operationId the request matched, None when it matched none
    canonical: str | None
    params: Mapping[str, str]  # the path parameters of that operation (sid, agent_number)
    example: str | None  # the named example of the spec the answer is
    layout: str | None  # where an error answer carries its constant: "error" or "data"
    violations: tuple[Violation, ...]


class Judge:
    """The spec read once for judging: routes, and where each operation's answers are assumed."""

    def __init__(self, spec: SpecIndex, contracts: Contracts, route: Router) -> None:
        self.spec = spec
        self.contracts = contracts
        self.route = route

    def verdict(self, method: str, path: str, status: int, content_type: str | None, body: bytes | None) -> Verdict:
        """`body` is the answer's content with its Content-Encoding undone; None when it could not be."""
        op, params = self.route(method, path)
        violations: list[Violation] = []
        if op is None:
            violations.append(Violation("operation", f"{method} {path}", "documented", "no operation of the spec"))
        contract = self.contracts.contract(op.operation_id) if op is not None else None
        documented = contract is not None and contract.documents(status)
        if op is not None and not documented:
            violations.append(Violation("status", str(status), self._operation_mark(op), "not listed"))
        response_mark = self._response_mark(op, status)
        expects_body = method != "HEAD" and status not in _NO_BODY_STATUSES and status >= 200
        doc: Any = INVALID_JSON
        if expects_body and (documented or body != b""):
            media = (content_type or "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                violations.append(Violation("content-type", media, response_mark, "not application/json"))
            if body is None:
                violations.append(Violation("json", "/", response_mark, "the Content-Encoding cannot be undone"))
            else:
                doc = strict_json(body)
                if doc is INVALID_JSON:
                    violations.append(Violation("json", "/", response_mark, "not strict JSON"))
        if contract is not None and documented and doc is not INVALID_JSON:
            problem = contract.problem(status, doc)
            if problem is not None:
                mark = self._schema_mark(op, status, problem.pointer)
                violations.append(Violation("schema", problem.pointer, mark, problem.message))
        example, layout = (None, None) if doc is INVALID_JSON else self._example(op, status, doc)
        return Verdict(
            operation=op.operation_id if op is not None else None,
            canonical=op.canonical if op is not None else None,
            params=params,
            example=example,
            layout=layout,
            violations=tuple(violations),
        )

    # -- which example ---------------------------------------------------------------

    def _example(self, op: Operation | None, status: int, doc: Any) -> tuple[str | None, str | None]:
        """Exact JSON equality first; else the same status, `code` and error constant, the
        constant found under `error` or `data.error` (both layouts are readings of the spec)."""
        candidates: Sequence[Example] = [
            e for e in (op.examples.values() if op is not None else self.spec.shared.values()) if e.status == status
        ]
        for example in candidates:
            if example.value == doc:
                return example.name, _layout_of(doc)
        if not isinstance(doc, dict):
            return None, None
        for layout in ("data", "error"):  # the spec's examples are written in the first
            constant = _constant(doc, layout)
            if constant is None:
                continue
            code = doc.get("code")
            same = [
                e
                for e in candidates
                if isinstance(e.value, dict) and (e.value.get("code"), _constant(e.value)) == (code, constant)
            ]
            # Two examples may share code and constant (missing_api_key, invalid_api_key): the message tells them apart.
            message = _detail(doc, layout).get("error_message")
            chosen = next((e for e in same if _detail(e.value).get("error_message") == message), None)
            if chosen is not None or same:
                return (chosen or same[0]).name, layout
        return None, None

    # -- documented or assumed ---------------------------------------------------------

    def _raw_operation(self, op: Operation) -> Mapping[str, Any]:
        node: Mapping[str, Any] = self.spec.document["paths"][op.path][op.method.lower()]
        return node

    def _operation_mark(self, op: Operation) -> Mark:
        return "x-assumed" if self._raw_operation(op).get("x-assumed") else "documented"

    def _response(self, op: Operation | None, status: int) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
        """The response object of that status (and the nodes its $ref passed through)."""
        if op is None:
            return [], {}
        node: Any = (self._raw_operation(op).get("responses") or {}).get(str(status))
        passed: list[Mapping[str, Any]] = []
        while isinstance(node, dict) and "$ref" in node:
            passed.append(node)
            node = self.spec.resolve({"$ref": node["$ref"]})
        return passed, node if isinstance(node, dict) else {}

    def _response_mark(self, op: Operation | None, status: int) -> Mark:
        if op is None:
            return "documented"
        passed, response = self._response(op, status)
        if not response:
            return self._operation_mark(op)
        if response.get("x-assumed") or any(node.get("x-assumed") for node in passed):
            return "x-assumed"
        return self._operation_mark(op)

    def _schema_mark(self, op: Operation | None, status: int, pointer: str) -> Mark:
        """x-assumed when the response, or a component schema on the way to the broken value,
        carries `x-assumed`; documented otherwise."""
        if op is None:
            return "documented"
        mark = self._response_mark(op, status)
        _, response = self._response(op, status)
        schema: Any = ((response.get("content") or {}).get("application/json") or {}).get("schema")
        for step in [""] + [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]:
            schema = self.spec.resolve(schema) if isinstance(schema, dict) else None
            if not isinstance(schema, dict):
                break
            if schema.get("x-assumed"):
                mark = "x-assumed"
            if step == "":
                continue
            if "items" in schema and step.isdigit():
                schema = schema["items"]
            else:
                schema = (schema.get("properties") or {}).get(step)
        if isinstance(schema, dict) and self.spec.resolve(schema).get("x-assumed"):
            mark = "x-assumed"
        return mark


def _detail(doc: Mapping[str, Any], layout: str = "data") -> Mapping[str, Any]:
    """The object that carries `error_code` in that layout (empty when there is none)."""
    data = doc.get("data")
    holder = doc.get("error") if layout == "error" else (data.get("error") if isinstance(data, dict) else None)
    return holder if isinstance(holder, dict) else {}


def _constant(doc: Mapping[str, Any], layout: str = "data") -> str | None:
    constant = _detail(doc, layout).get("error_code")
    return constant if isinstance(constant, str) else None


def _layout_of(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    if _constant(doc, "data") is not None:
        return "data"
    if _constant(doc, "error") is not None:
        return "error"
    return None
