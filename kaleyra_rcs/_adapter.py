"""The one module that knows the generated package (`_generated/`, `make generate`) and its layout.

Requests come from each endpoint module's `_get_kwargs`, the one private name used: the public
`sync_detailed` / `asyncio_detailed` send and parse in one call (`from_dict` on whatever came
back, before anything could be checked; an undocumented status comes back as None), and the
client must validate every answer before it parses it. `_get_kwargs` holds exactly what the spec
decides about a request (method, path template, escaping, query) and does no I/O. Models are
built with their public `from_dict`, and only from bodies that passed their schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._generated.api.agents import delete_agent as _delete_agent
from ._generated.api.testers import get_testers_by_agent as _get_testers_by_agent
from ._generated.models import DeleteAgentResponse, Tester

__all__ = ["DeleteAgentResponse", "Operation", "Request", "Tester", "deleted_agent", "request", "testers"]

Operation = Literal["getTestersByAgent", "deleteAgent"]

_BUILDERS: dict[Operation, Callable[..., dict[str, Any]]] = {
    "getTestersByAgent": _get_testers_by_agent._get_kwargs,
    "deleteAgent": _delete_agent._get_kwargs,
}


@dataclass(frozen=True)
class Request:
    """What to send, relative to the base URL: the generated request shape of one operation."""

    operation_id: Operation
    method: str
    url: str
    params: Mapping[str, str] = field(default_factory=dict)


def request(operation_id: Operation, *, sid: str, agent_number: str) -> Request:
    kwargs = _BUILDERS[operation_id](sid=sid, agent_number=agent_number)
    return Request(operation_id, kwargs["method"].upper(), kwargs["url"], kwargs.get("params") or {})


def testers(body: Any) -> list[Tester]:
    """A validated 200 of getTestersByAgent as models."""
    return [Tester.from_dict(item) for item in body]


def deleted_agent(body: Any) -> DeleteAgentResponse:
    """A validated 200 of deleteAgent as its model."""
    return DeleteAgentResponse.from_dict(body)
