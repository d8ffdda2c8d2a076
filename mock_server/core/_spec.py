"""An index of openapi.yaml: which operation answers which named example.

The mock never writes a response body of its own for a documented case: it renders the
spec's examples, so the spec and the mock cannot drift apart.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._pods import PODS, Pod

__all__ = [
    "SPEC_PATH",
    "Example",
    "Operation",
    "Router",
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


# (method, path) -> (the operation a request names, its path parameters): the API's own router
# (mock_server.web.SpecRouter, werkzeug's Map), handed to the core where an answer given
# elsewhere must be named (the proxy's verdicts, a calibration), so no path is routed two ways.
Router = Callable[[str, str], "tuple[Operation | None, Mapping[str, str]]"]


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
    # `x-mock-magic-agent`: the agent number that asks the mock for this example, any SID, both pods.
    magic_agent: str | None = None
    # `x-mock-when`: what asks the mock for it, in a sentence (the README's scenario table).
    when: str | None = None


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    canonical: str
    examples: Mapping[str, Example] = field(default_factory=dict)
    assumed: str | None = None
    # What only the mock answers (`x-mock-own-responses`): never forced, never Kaleyra's.
    own: Mapping[str, Example] = field(default_factory=dict)
    tag: str = ""

    def statuses(self) -> list[int]:
        return sorted({e.status for e in self.examples.values()})

    def first_example_for(self, status: int) -> Example | None:
        """Prism's rule: the first example listed under that status."""
        for example in self.examples.values():
            if example.status == status:
                return example
        return None


def _pod_hosts(document: Mapping[str, Any]) -> dict[str, Pod]:
    """{host: pod} from the `servers` that name their pod (`x-pod`): the hosts a request's Host picks."""
    hosts: dict[str, Pod] = {}
    for server in document.get("servers", ()):
        pod = server.get("x-pod")
        if pod is None:
            continue
        if pod not in PODS:
            raise ValueError(f"servers: x-pod must be one of {PODS}, not {pod!r}")
        host = str(server["url"]).split("://", 1)[-1].split("/", 1)[0].lower()
        hosts[host] = pod
    return hosts


def _magic_agents(operations: Iterable[Operation]) -> dict[str, str]:
    """In number order; a number given to two examples makes the spec fail to load."""
    magic: dict[str, str] = {}
    for op in operations:
        for example in op.examples.values():
            if example.magic_agent is None:
                continue
            if magic.setdefault(example.magic_agent, example.name) != example.name:
                raise ValueError(f"x-mock-magic-agent {example.magic_agent} names two examples")
    return dict(sorted(magic.items()))


class SpecIndex:
    """Operations and examples of one OpenAPI document, resolved once at start-up."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.operations: dict[str, Operation] = {}
        self.shared: dict[str, Example] = {}
        self.pod_hosts = _pod_hosts(document)
        for path, item in document.get("paths", {}).items():
            for method, op in item.items():
                if method in {"parameters", "summary", "description"} or not isinstance(op, dict):
                    continue
                self._add_operation(path, method.upper(), op)
        # The spec's paths in its order, each once: what the web layer routes.
        self.paths: tuple[str, ...] = tuple(dict.fromkeys(op.path for op in self.operations.values()))
        # Their first segments (`v1`, `wsgw`): what a path of this API starts with, after a pod prefix.
        self.roots: tuple[str, ...] = tuple(dict.fromkeys(path.split("/")[1] for path in self.paths))
        # {agent number: example name}, from the examples' `x-mock-magic-agent`: the default seed's.
        self.magic_agents = _magic_agents(self.operations.values())
        # The answers a request gets before (or without) an operation: routing, and refusals.
        for ref_name, status in (("NotFound", 404), ("MethodNotAllowed", 405)):
            for name, example in self._examples_of(status, document["components"]["responses"][ref_name]):
                self.shared[name] = example
        for op in self.operations.values():
            for name in ("bad_request", *op.own):
                refusal = op.own.get(name) or op.examples.get(name)
                if refusal is not None:
                    self.shared.setdefault(name, refusal)

    @classmethod
    def load(cls, path: Path | None = None) -> SpecIndex:
        """Another copy of the spec is read each time; the packaged one once per process (package
        data, never to be mutated): the server's workers, forked from the parent that read it for
        the seed, start with it read."""
        return cls(load_yaml(path)) if path is not None else _packaged()

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
                        magic_agent=ex.get("x-mock-magic-agent"),
                        when=ex.get("x-mock-when"),
                    ),
                )
            )
        return out

    def _add_operation(self, path: str, method: str, op: Mapping[str, Any]) -> None:
        examples: dict[str, Example] = {}
        for status, response in op.get("responses", {}).items():
            for name, example in self._examples_of(int(status), response):
                examples.setdefault(name, example)
        own: dict[str, Example] = {}
        for status, response in op.get("x-mock-own-responses", {}).items():
            own.update(self._examples_of(int(status), response))
        op_id = op["operationId"]
        self.operations[op_id] = Operation(
            operation_id=op_id,
            method=method,
            path=path,
            canonical=op.get("x-variant-of", op_id),
            examples=examples,
            assumed=op.get("x-assumed"),
            own=own,
            tag=(op.get("tags") or [""])[0],
        )

    def example(self, operation_id: str, name: str) -> Example:
        return self.operations[operation_id].examples[name]

    def allow(self, path: str) -> str:
        """The Allow header of a path of the spec: its methods, HEAD wherever GET is."""
        methods = {op.method for op in self.operations.values() if op.path == path}
        if "GET" in methods:
            methods.add("HEAD")
        return ", ".join(sorted(methods))

    def refusal(self, status: int) -> Example:
        """The answer to a request the mock will not read, by status; 400 `bad_request` by default."""
        for example in self.shared.values():
            if example.status == status and status not in (404, 405):
                return example
        return self.shared["bad_request"]

    def all_example_names(self) -> list[str]:
        names: dict[str, None] = {}
        for op in self.operations.values():
            names.update(dict.fromkeys(op.examples))
        return list(names)


@functools.cache
def _packaged() -> SpecIndex:
    return SpecIndex(load_yaml(SPEC_PATH))
