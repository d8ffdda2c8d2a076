"""The one walker of openapi.yaml the tests share: operations, their named examples, servers.

It reads the raw YAML and resolves its local `$ref`s itself. Deliberately not the mock's own
`SpecIndex`: the tests compare the mock's (and the client's) answers with what this walk finds,
so a mistake in the mock's index cannot vouch for itself. Everything hangs off one `Spec`, built
from a document or a path, so a test that edits a copy of the spec walks the copy and nothing
else (no module state is shared between two `Spec`s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import product
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

__all__ = [
    "DOCS",
    "ROOT",
    "SPEC_FILE",
    "Example",
    "Operation",
    "Spec",
]

ROOT = Path(__file__).resolve().parents[1]
SPEC_FILE = ROOT / "openapi.yaml"
# The vendor documents the spec was written from: the tests' oracles, beside the spec.
DOCS = ROOT / "tests" / "fixtures" / "docs"
_NOT_METHODS = frozenset({"parameters", "summary", "description", "servers"})


@dataclass(frozen=True)
class Example:
    """One named example of a response: its status, value, and the headers it is sent with."""

    name: str
    status: int
    value: Any
    # The declared headers that carry an example (Allow, computed per path, has none).
    headers: Mapping[str, str] = field(default_factory=dict)
    magic_agent: str | None = None  # x-mock-magic-agent
    when: str | None = None  # x-mock-when
    documented: str | None = None  # x-documented
    assumed: str | None = None  # x-assumed


@dataclass(frozen=True)
class Operation:
    """One operation of `paths`: the raw mapping, and its parameters with the path item's first."""

    operation_id: str
    method: str  # upper case
    path: str
    raw: dict[str, Any]  # the document's own mapping: an edit of it is an edit of the document
    parameters: tuple[Mapping[str, Any], ...]

    @property
    def variant_of(self) -> str | None:
        value = self.raw.get("x-variant-of")
        return None if value is None else str(value)

    def parameter(self, name: str) -> Mapping[str, Any]:
        (found,) = (p for p in self.parameters if p["name"] == name)
        return found

    def parameter_example(self, name: str) -> str:
        """A parameter's `example`, or the first of its named `examples`."""
        param = self.parameter(name)
        if "example" in param:
            return str(param["example"])
        return str(next(iter(param["examples"].values()))["value"])


class Spec:
    """One OpenAPI document, walked: build it with `Spec.load(path)` for a copy."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document: Any = document

    @classmethod
    def load(cls, path: Path = SPEC_FILE) -> Spec:
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")))

    def resolve(self, node: Any) -> Any:
        """Follow local `$ref`s (JSON pointer escapes included) until a node is no reference."""
        while isinstance(node, dict) and "$ref" in node:
            ref = str(node["$ref"])
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref is supported: {ref}")
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    # -- operations ------------------------------------------------------------------------------

    @cached_property
    def operations(self) -> dict[str, Operation]:
        """operationId -> operation, in the spec's order."""
        found: dict[str, Operation] = {}
        for path, item in self.document["paths"].items():
            shared = [self.resolve(p) for p in item.get("parameters", [])]
            for method, op in item.items():
                if method in _NOT_METHODS or not isinstance(op, dict):
                    continue
                own = [self.resolve(p) for p in op.get("parameters", [])]
                found[op["operationId"]] = Operation(op["operationId"], method.upper(), path, op, (*shared, *own))
        return found

    def operation(self, operation_id: str) -> Operation:
        return self.operations[operation_id]

    @property
    def facade_operations(self) -> tuple[str, ...]:
        """The operations the client's facade calls: those that are no variant of another."""
        return tuple(op_id for op_id, op in self.operations.items() if op.variant_of is None)

    def paths_ending(self, suffix: str) -> tuple[str, ...]:
        return tuple(path for path in self.document["paths"] if path.endswith(suffix))

    # -- examples --------------------------------------------------------------------------------

    def response_examples(self, status: int, response: Any) -> list[Example]:
        """The named examples of one response (a `$ref` or inline), in the order listed."""
        response = self.resolve(response)
        headers: dict[str, str] = {}
        for name, header in (response.get("headers") or {}).items():
            header = self.resolve(header)
            value = header.get("example", self.resolve(header.get("schema", {})).get("example"))
            if value is not None:
                headers[name] = str(value)
        media = (response.get("content") or {}).get("application/json") or {}
        out = []
        for name, raw in (media.get("examples") or {}).items():
            ex = self.resolve(raw)
            out.append(
                Example(
                    name=name,
                    status=status,
                    value=ex["value"],
                    headers=headers,
                    magic_agent=ex.get("x-mock-magic-agent"),
                    when=ex.get("x-mock-when"),
                    documented=ex.get("x-documented"),
                    assumed=ex.get("x-assumed"),
                )
            )
        return out

    def listed(self, operation_id: str) -> list[Example]:
        """Every (status, name) the operation's `responses` list, a name under two statuses twice."""
        responses = self.operations[operation_id].raw["responses"]
        return [ex for status, response in responses.items() for ex in self.response_examples(int(status), response)]

    def examples(self, operation_id: str) -> dict[str, Example]:
        """The operation's examples by name; a name listed under two statuses keeps its first."""
        out: dict[str, Example] = {}
        for example in self.listed(operation_id):
            out.setdefault(example.name, example)
        return out

    def statuses(self, operation_id: str) -> list[int]:
        """The statuses the operation documents, in the order listed."""
        return [int(s) for s in self.operations[operation_id].raw["responses"]]

    def first_listed(self, operation_id: str, status: int) -> Example:
        """Prism's rule for `Prefer: code=NNN`: the first example listed under that status."""
        response = self.operations[operation_id].raw["responses"][str(status)]
        return self.response_examples(status, response)[0]

    def schemas(self, operation_id: str) -> dict[int, Any]:
        """Each documented status of the operation and its (unresolved) response schema."""
        responses = self.operations[operation_id].raw["responses"]
        return {int(s): self.resolve(r)["content"]["application/json"]["schema"] for s, r in responses.items()}

    def own(self, operation_id: str) -> dict[str, Example]:
        """What only the mock answers for the operation (`x-mock-own-responses`), by name."""
        own = self.operations[operation_id].raw.get("x-mock-own-responses", {})
        return {ex.name: ex for status, r in own.items() for ex in self.response_examples(int(status), r)}

    @cached_property
    def shared(self) -> dict[str, Example]:
        """The answers of no operation: 404 (no path matches) and 405 (no method of the path)."""
        responses = self.document["components"]["responses"]
        return {
            ex.name: ex
            for status, ref in ((404, "NotFound"), (405, "MethodNotAllowed"))
            for ex in self.response_examples(status, responses[ref])
        }

    def magic_agents(self, operation_ids: Iterable[str] | None = None) -> dict[str, str]:
        """{agent number: example name} of the examples' `x-mock-magic-agent`, in the spec's order."""
        magic: dict[str, str] = {}
        for op_id in self.operations if operation_ids is None else operation_ids:
            for example in self.examples(op_id).values():
                if example.magic_agent is not None:
                    named = magic.setdefault(example.magic_agent, example.name)
                    assert named == example.name, f"x-mock-magic-agent {example.magic_agent} names two examples"
        return magic

    def error_constants(self) -> dict[int, list[str]]:
        """status -> the `data.error.error_code` constants the operations' examples carry under it."""
        found: dict[int, dict[str, None]] = {}
        for op_id in self.operations:
            for example in self.listed(op_id):
                data = example.value.get("data") if isinstance(example.value, dict) else None
                error = data.get("error") if isinstance(data, dict) else None
                if isinstance(error, dict) and "error_code" in error:
                    found.setdefault(example.status, {})[error["error_code"]] = None
        return {status: list(codes) for status, codes in sorted(found.items())}

    # -- requests ----------------------------------------------------------------------------------

    def request_headers(self, api_key: str = "k") -> dict[str, str]:
        """The headers the documents make mandatory (`x-kaleyra-mandatory-headers`): the security
        scheme's api-key header, and Content-Type with the one value the documents allow."""
        (scheme,) = self.document["components"]["securitySchemes"].values()
        headers = {str(scheme["name"]): api_key, "Content-Type": "application/json"}
        mandatory = {h for op in self.operations.values() for h in op.raw.get("x-kaleyra-mandatory-headers", ())}
        assert set(headers) == mandatory, mandatory
        return headers

    # -- servers ---------------------------------------------------------------------------------

    @property
    def pod_hosts(self) -> dict[str, str]:
        """{host: pod} of the servers that name their pod (`x-pod`)."""
        return {urlsplit(s["url"]).netloc: s["x-pod"] for s in self.document["servers"] if "x-pod" in s}

    @property
    def pod_urls(self) -> dict[str, str]:
        """{server URL: pod} of the servers that name their pod (`x-pod`)."""
        return {s["url"]: s["x-pod"] for s in self.document["servers"] if "x-pod" in s}

    def server_urls(self) -> list[str]:
        """Every server URL, each enumerated variable (the pod) expanded, the others at their default."""
        urls: list[str] = []
        for server in self.document["servers"]:
            variables = server.get("variables", {})
            names = list(variables)
            choices = [variables[n].get("enum", [variables[n]["default"]]) for n in names]
            for combo in product(*choices):
                url = server["url"]
                for name, value in zip(names, combo, strict=True):
                    url = url.replace("{" + name + "}", str(value))
                urls.append(url)
        return urls
