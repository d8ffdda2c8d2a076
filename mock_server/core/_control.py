"""The control plane's logic: every request body is checked against the control plane's
own OpenAPI document (and the Kaleyra spec's Tester schema) before anything changes."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._engine import MockConfig
from ._pods import PODS
from ._schema import Schema
from ._spec import SpecIndex, load_yaml
from ._state import AccountData, StateData, StateError, state_validator
from ._store import DEFAULT_JOURNAL_LIMIT, Armed, ArmedKind, Control, Store, StoreUnavailable

__all__ = ["CONTROL_SPEC_PATH", "ControlError", "ControlPlane"]

CONTROL_SPEC_PATH = Path(__file__).resolve().parent / "control-openapi.yaml"


class ControlError(Exception):
    """A refused control request: `status` is 400 or 404, and nothing changed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ControlPlane:
    def __init__(
        self,
        spec: SpecIndex,
        store: Store,
        config: MockConfig | None = None,
        *,
        proxy_health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.config = config or MockConfig()
        self._proxy_health = proxy_health  # proxy mode: the upstreams and the cassette, said by the web layer
        self._state = state_validator(spec)
        self._tester = Schema(spec.document["components"]["schemas"]["Tester"])

    @property
    def document_bytes(self) -> bytes:
        """The control plane's OpenAPI document, as served; read at the first control request that
        needs it or its schemas, never at start (a worker's first API answer waited 15 ms for it)."""
        return _control_schemas()[0]

    def _check(self, schema: str, doc: Any) -> None:
        problem = _control_schemas()[1][schema].first_problem(doc)
        if problem is not None:
            raise ControlError(400, problem)

    def _check_tester(self, tester: Any, where: str) -> None:
        problem = self._tester.first_problem(tester)
        if problem is not None:
            raise ControlError(400, f"{where}{problem}" if where else problem)

    def _check_testers(self, testers: Any, where: str) -> None:
        for i, tester in enumerate(testers):
            self._check_tester(tester, f"{where}/{i}")

    def _check_agents(self, agents: Mapping[str, Any]) -> None:
        for agent, testers in agents.items():
            if not agent or "/" in agent:
                raise ControlError(400, "/agents: an agent number is a non-empty text without '/'")
            self._check_testers(testers, f"/agents/{agent}")

    # -- whole state ---------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """`status` ok, or `store_unavailable` with `store_error` saying why (answered 503)."""
        problem: str | None = None
        try:
            control = self.store.control()
            detail = self.store.describe()
        except StoreUnavailable as exc:
            control, detail, problem = Control(0, {}, None), {}, str(exc)
        health: dict[str, Any] = {
            "status": "ok" if problem is None else "store_unavailable",
            "pods": list(PODS),
            "store": self.store.kind,
            "scenarios_armed": len(control.scenarios),
            "faults_armed": len(control.faults),
            "proxy": self._proxy_health() if self._proxy_health is not None else None,
        }
        if detail:  # the store's own: its file, or its server, prefix and the replicas seen
            health["store_detail"] = detail
        if problem is not None:
            health["store_error"] = problem
        if self.config.replay is not None:  # only when asked for: the usual health is unchanged
            health["replay"] = {**self.config.replay.to_document(), "strict": self.config.replay_strict}
        if self.config.calibration is not None:
            health["calibration"] = self.config.calibration.to_document()
        return health

    def reset(self) -> dict[str, Any]:
        self.store.reset()
        return {"status": "reset"}

    def get_state(self) -> dict[str, Any]:
        return self.store.dump().to_document()

    def put_state(self, doc: Any) -> dict[str, Any]:
        state = self.parse_state(doc)
        self.store.load(state)
        return {"status": "loaded", "accounts": len(state.accounts)}

    def parse_state(self, doc: Any) -> StateData:
        if not isinstance(doc, dict):
            raise ControlError(400, "/: a state document is a JSON object")
        try:
            return StateData.from_document(doc, self._state)
        except StateError as exc:
            raise ControlError(400, str(exc)) from None

    # -- accounts, agents, testers -------------------------------------------------

    def get_default_account(self) -> dict[str, Any] | None:
        default = self.store.dump().default_account
        return None if default is None else default.to_document()

    def put_default_account(self, doc: Any) -> dict[str, Any]:
        self._check("DefaultAccount", doc)
        self._check_agents(doc.get("agents", {}))

        account = AccountData.from_document(doc)

        def apply(state: StateData) -> None:
            state.default_account = account
            state.deleted_default = set()  # a new template is whole again for every SID, as put_agent does

        self.store.mutate(apply)
        return {"status": "stored"}

    def delete_default_account(self) -> dict[str, Any]:
        def apply(state: StateData) -> None:
            state.default_account = None

        self.store.mutate(apply)
        return {"status": "removed"}

    def get_account(self, pod: str, sid: str) -> dict[str, Any]:
        acc = self.store.dump().accounts.get((pod, sid))
        if acc is None:
            raise ControlError(404, "no listed account for this pod and SID")
        return {"pod": pod, "sid": sid, **acc.to_document()}

    def put_account(self, pod: str, sid: str, doc: Any) -> dict[str, Any]:
        self._check("Account", doc)
        self._check_agents(doc.get("agents", {}))
        account = AccountData.from_document(doc)

        def apply(state: StateData) -> None:
            state.accounts[(pod, sid)] = account

        self.store.mutate(apply)
        return {"status": "stored", "pod": pod, "sid": sid}

    def delete_account(self, pod: str, sid: str) -> dict[str, Any]:
        def apply(state: StateData) -> bool:
            return state.accounts.pop((pod, sid), None) is not None

        if not self.store.mutate(apply):
            raise ControlError(404, "no listed account for this pod and SID")
        return {"status": "removed"}

    def _agents_of(self, state: StateData, pod: str | None, sid: str | None) -> dict[str, list[dict[str, Any]]]:
        if pod is None or sid is None:
            if state.default_account is None:
                raise ControlError(404, "there is no default account")
            return state.default_account.agents
        acc = state.accounts.get((pod, sid))
        if acc is None:
            raise ControlError(404, "no listed account for this pod and SID; PUT it under /__mock/accounts/ first")
        return acc.agents

    def put_agent(self, pod: str | None, sid: str | None, agent: str, doc: Any) -> dict[str, Any]:
        self._check("Agent", doc)
        testers = doc.get("testers", [])
        self._check_testers(testers, "/testers")

        def apply(state: StateData) -> None:
            self._agents_of(state, pod, sid)[agent] = copy.deepcopy(testers)
            if pod is None:  # a re-created template agent is back for every SID
                state.deleted_default = {d for d in state.deleted_default if d[2] != agent}

        self.store.mutate(apply)
        return {"status": "stored", "agent_number": agent}

    def remove_agent(self, pod: str | None, sid: str | None, agent: str) -> dict[str, Any]:
        def apply(state: StateData) -> bool:
            return self._agents_of(state, pod, sid).pop(agent, None) is not None

        if not self.store.mutate(apply):
            raise ControlError(404, "no such agent")
        return {"status": "removed"}

    def add_tester(self, pod: str | None, sid: str | None, agent: str, doc: Any) -> dict[str, Any]:
        self._check_tester(doc, "")

        def apply(state: StateData) -> int:
            agents = self._agents_of(state, pod, sid)
            if agent not in agents:
                raise ControlError(404, "no such agent")
            agents[agent].append(copy.deepcopy(doc))
            return len(agents[agent])

        count = self.store.mutate(apply)
        return {"status": "added", "testers": count}

    def remove_tester(self, pod: str | None, sid: str | None, agent: str, tester_id: str) -> dict[str, Any]:
        def apply(state: StateData) -> int:
            agents = self._agents_of(state, pod, sid)
            if agent not in agents:
                raise ControlError(404, "no such agent")
            kept = [t for t in agents[agent] if t.get("id") != tester_id]
            removed = len(agents[agent]) - len(kept)
            if not removed:
                raise ControlError(404, "the agent has no tester with this id")
            agents[agent] = kept
            return removed

        return {"status": "removed", "count": self.store.mutate(apply)}

    # -- scenarios and faults --------------------------------------------------------

    def _match(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        match = dict(doc.get("match", {}))
        op = match.get("operation")
        if op is not None and op not in self.spec.operations:
            valid = ", ".join(self.spec.operations)
            raise ControlError(400, f"/match/operation: not an operationId; valid: {valid}")
        return match

    def examples(self) -> list[dict[str, Any]]:
        """The names `armScenario` takes, in the spec's order, with the operations that answer them:
        a dashboard (or a person) can offer them without a copy of the spec."""
        found: dict[str, dict[str, Any]] = {}
        for op in self.spec.operations.values():
            for name, example in op.examples.items():
                entry = found.setdefault(name, {"name": name, "status": example.status, "operations": []})
                if op.canonical not in entry["operations"]:
                    entry["operations"].append(op.canonical)
        return list(found.values())

    def arm_scenario(self, doc: Any) -> dict[str, Any]:
        self._check("ArmScenario", doc)
        match = self._match(doc)
        name = doc["scenario"]
        ops = [o for o in self.spec.operations.values() if name in o.examples]
        if match.get("operation"):
            wanted = match["operation"]
            ops = [o for o in ops if wanted in (o.operation_id, o.canonical)]
        if not ops:
            valid = ", ".join(self.spec.all_example_names())
            raise ControlError(400, f"/scenario: no operation that matches has an example of that name; valid: {valid}")
        armed = self.store.arm(Armed(0, "scenario", name, _times(doc, 1), params={}, **match))
        return armed.to_document()

    def arm_fault(self, doc: Any) -> dict[str, Any]:
        self._check("ArmFault", doc)
        match = self._match(doc)
        armed = self.store.arm(
            Armed(0, "fault", doc["fault"], _times(doc, None), params=doc.get("params", {}), **match)
        )
        return armed.to_document()

    def list_armed(self, kind: ArmedKind) -> list[dict[str, Any]]:
        control = self.store.control()
        items = control.scenarios if kind == "scenario" else control.faults
        return [a.to_document() for a in items]

    def disarm(self, kind: ArmedKind, armed_id: int | None) -> dict[str, Any]:
        if armed_id is not None and not 0 < armed_id < 2**63:  # no id past SQLite's integers was ever given
            raise ControlError(404, f"no armed {kind} with this id")
        count = self.store.disarm(kind, armed_id)
        if armed_id is not None and not count:
            raise ControlError(404, f"no armed {kind} with this id")
        return {"status": "disarmed", "count": count}

    # -- journal ---------------------------------------------------------------------

    def journal(self, args: Mapping[str, str]) -> list[dict[str, Any]]:
        unknown = set(args) - {"pod", "operation", "status", "limit"}
        if unknown:
            raise ControlError(400, "unknown journal filter; valid: pod, operation, status, limit")
        pod = args.get("pod")
        if pod is not None and pod not in PODS:
            raise ControlError(400, f"/pod: must be one of {', '.join(PODS)}")
        status = _int_arg(args, "status")
        limit = _int_arg(args, "limit")
        limit = DEFAULT_JOURNAL_LIMIT if limit is None else limit
        if limit < 1:
            raise ControlError(400, "/limit: must be at least 1")
        return self.store.journal(pod=pod, operation=args.get("operation"), status=status, limit=limit)

    def clear_journal(self) -> dict[str, Any]:
        self.store.clear_journal()
        return {"status": "cleared"}


def _times(doc: Mapping[str, Any], default: int | None) -> int | None:
    """JSON Schema counts 2.0 as an integer; the store keeps 2."""
    times = doc.get("times", default)
    return None if times is None else int(times)


def _int_arg(args: Mapping[str, str], name: str) -> int | None:
    raw = args.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ControlError(400, f"/{name}: must be a whole number")
    return int(raw)


def _rewrite_refs(node: Any) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            node["$ref"] = "#/$defs/" + ref.rsplit("/", 1)[1]
        for value in node.values():
            _rewrite_refs(value)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value)


@functools.cache
def _control_schemas() -> tuple[bytes, Mapping[str, Schema]]:
    """The control plane's document and a validator per schema, once per process: package data,
    as for the packaged spec. Parsing the YAML was a third of `create_app` (15 ms)."""
    control = load_yaml(CONTROL_SPEC_PATH)
    schemas = copy.deepcopy(control["components"]["schemas"])
    _rewrite_refs(schemas)  # #/components/schemas/X -> #/$defs/X, within each schema
    validators = {name: Schema({**schemas[name], "$defs": schemas}) for name in schemas}
    return CONTROL_SPEC_PATH.read_bytes(), validators
