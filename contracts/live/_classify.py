"""Recorded exchanges as drift evidence: each exchange classified as the probe it stands for.

A cassette (`mock_server.core`'s format: `make live` writes one, `kaleyra-mock --record` another
from an application's own traffic) is judged by the same items and judges as a live run, so the
only new thing is this mapping from an exchange to a probe name (`_probes.PROBES`):

- an exchange that names its `probe` (`make live` sets it) is that probe;
- else its shape decides: method, the spec's path template (a literal segment before a template
  one), the `agent_number`s of its query (none, one, two), the api key's fingerprint and the
  Content-Type (missing, `application/json`, `application/JSON`, `text/plain`), a body, an NA
  host; each probe is taken by the first exchange of its shape, in recorded order;
- the configured agent is `--agent`, else the agent of the first documented testers GET answered
  200; its SID and key fingerprint are the configured account, and only its exchanges count;
- DELETEs in order: the first of an agent is `delete_first`, the next of the same agent
  `delete_again`, a testers GET of that agent after it was deleted `testers_after_delete`.

What a probe means beyond its shape is never guessed: `wrong_key` is only the probes' own
made-up key (its fingerprint), `unknown_sid` their made-up SID, `not_found_path` their made-up
path, and `unknown_agent` an agent this cassette shows to be absent (deleted, or answered
agent-not-found by a DELETE, earlier). Any other probe is "not in this cassette", and the
parts that need it CANNOT TELL, with that reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from contracts._support import PODS, SPEC
from mock_server.core import (
    INVALID_JSON,
    Exchange,
    RecordedRequest,
    RecordedResponse,
    decoded_body,
    key_fingerprint,
    mask,
    read_cassette,
    strict_json,
)

from ._drift import NA_HOSTS, Answer, Evidence, error_layout
from ._probes import BODY_LIMIT, PROBES, REPORTED_HEADERS, UNKNOWN_SID, WRONG_KEY, redact

__all__ = ["NOT_HERE", "Classified", "classify", "read"]

NOT_HERE = "not in this cassette"
TESTERS = "/v1/{sid}/rcs/agent/testersbyagent"
AGENTTESTER = "/v1/{sid}/rcs/agenttester/testersbyagent"
WSGW = "/wsgw/v1/agent/testersbyagent"
DELETE = "/v1/{sid}/rcs/agent/{agent_number}"
NO_NUMBER_SLASH = "/v1/{sid}/rcs/agent/"
NO_NUMBER = "/v1/{sid}/rcs/agent"
NO_OPERATION = "drift-probe-no-such-operation"  # the probes' made-up path: known to be no operation
WRONG_KEYS = frozenset({key_fingerprint(WRONG_KEY), key_fingerprint(WRONG_KEY + "x")})
NAMES = tuple(p.name for p in PROBES)
# Several probes' templates, by (method, template, the query's agent count); the agent is the configured one.
_AS_CONFIGURED = {
    ("GET", AGENTTESTER): "get_agenttester",
    ("GET", WSGW): "get_wsgw",
    ("POST", TESTERS): "post_sample",
    ("POST", AGENTTESTER): "post_agenttester",
    ("POST", WSGW): "post_wsgw",
}
_CONTENT_TYPE_PROBES = {"none": "no_content_type", "text/plain": "text_plain", "application/JSON": "json_upper"}
_WHY_MISSING = {
    "wrong_key": "a cassette holds keys as fingerprints, and only the probes' own made-up key is known to be wrong",
    "unknown_agent": "no testers GET of an agent this cassette shows to be absent (deleted, or answered "
    "agent-not-found by a DELETE, earlier)",
    "unknown_sid": "only the probes' own made-up SID is known to be no account",
    "not_found_path": "only the probes' own made-up path is known to be no operation",
    "testers_after_delete": "no testers GET of the deleted agent after its deletion",
}


def _literal_segments(template: str) -> int:
    return sum(not part.startswith("{") for part in template.split("/"))


# The spec's paths, the most literal segments first: OpenAPI matches concrete paths first.
_TEMPLATES = tuple(sorted({op.path for op in SPEC.operations.values()}, key=_literal_segments, reverse=True))


@dataclass(frozen=True)
class _Shape:
    """What a request is, as far as the probes differ: everything else about it is ignored."""

    method: str
    template: str | None
    segments: tuple[str, ...]  # the path's segments, percent-decoded, the pod prefix removed
    agents: tuple[str, ...] | None  # the query's agent_number values; None: it has other parameters
    key: str | None
    content_type: str  # none | json | application/JSON | text/plain | other
    body: bytes
    na_host: str | None
    prefer: bool

    @property
    def sid(self) -> str | None:
        return self.segments[2] if self.template and "{sid}" in self.template else None

    @property
    def path_agent(self) -> str:
        return self.segments[-1]


def _segments(path: str) -> list[str]:
    return [unquote(s) for s in path.split("/")]


def _match(segments: list[str]) -> str | None:
    """The spec's path template for these segments; a literal segment wins over a template one."""
    for template in _TEMPLATES:
        parts = template.split("/")
        if len(parts) == len(segments) and all(
            (p.startswith("{") and s) or p == s for p, s in zip(parts, segments, strict=True)
        ):
            return template
    return None


def _content_type(value: str | None) -> str:
    if value is None:
        return "none"
    media = value.split(";", 1)[0].strip()
    if media == "application/json":
        return "json"
    if media in ("application/JSON", "text/plain"):
        return media
    return "text/plain" if media.lower() == "text/plain" else "other"


def _na_host(exchange: Exchange) -> str | None:
    for url in ("//" + exchange.request.headers.get("host", ""), exchange.upstream):
        host = (urlsplit(url).hostname or "").lower()
        if host in NA_HOSTS:
            return host
    return None


def _shape(exchange: Exchange) -> _Shape:
    req = exchange.request
    segments = _segments(req.path)
    template = _match(segments)
    if template is None and len(segments) > 2 and segments[1] in PODS:
        segments = [segments[0], *segments[2:]]
        template = _match(segments)
    pairs = parse_qsl(req.query, keep_blank_values=True)
    agents = tuple(v for _, v in pairs) if all(k == "agent_number" for k, _ in pairs) else None
    return _Shape(
        method=req.method.upper(),
        template=template,
        segments=tuple(segments),
        agents=agents,
        key=req.api_key,
        content_type=_content_type(req.headers.get("content-type")),
        body=req.body,
        na_host=_na_host(exchange),
        prefer="prefer" in req.headers,
    )


def _as_recorded(agent: str) -> str:
    """The agent as a masked cassette writes it (a long number is masked like a phone number)."""
    probe = Exchange(RecordedRequest("GET", "", "", query="agent_number=" + agent), RecordedResponse(200))
    return dict(parse_qsl(mask(probe).request.query)).get("agent_number", agent)


def _agent_not_found(exchange: Exchange) -> bool:
    """A DELETE's answer that says the agent is not there (the spec's `agent_not_found`, wherever the constant sits)."""
    example = SPEC.example("deleteAgent", "agent_not_found")
    raw = decoded_body(exchange.response)
    body = strict_json(raw) if raw else INVALID_JSON
    detail = error_layout(body)[1] if body is not INVALID_JSON else {}
    message = str(detail.get("error_message", ""))
    return (
        exchange.response.status == example.status
        and detail.get("error_code") == error_layout(example.value)[1].get("error_code")
        and "not found" in message.lower()
    )


@dataclass
class Classified:
    """The evidence a cassette holds, and how each of its exchanges was (or was not) used."""

    files: tuple[Path, ...]
    total: int
    evidence: Evidence
    used: list[tuple[Exchange, str]] = field(default_factory=list)
    unclassified: list[tuple[Exchange, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    upstreams: list[str] = field(default_factory=list)
    sid: str | None = None
    agent_from: str = ""
    secret: str = field(default="", repr=False)

    def documents(self) -> list[Any]:
        """The exchanges judged, as their cassette lines' objects, the secret (if known) redacted."""
        return [json.loads(redact(e.to_line().decode("utf-8"), self.secret)) for e, _ in self.used]

    def masked_sid(self) -> str:
        sid = self.sid or ""
        return sid[:2] + "…" + sid[-2:] if len(sid) > 6 else "***" if sid else "(none)"


def _documented_get(shape: _Shape) -> bool:
    return (
        shape.method == "GET"
        and shape.template == TESTERS
        and shape.agents is not None
        and len(shape.agents) == 1
        and shape.key is not None
        and shape.key not in WRONG_KEYS
        and shape.content_type == "json"
        and not shape.body
        and not shape.prefer
        and shape.sid != UNKNOWN_SID
    )


class _Classifier:
    def __init__(self, exchanges: Sequence[Exchange], agent: str | None) -> None:
        self.exchanges = exchanges
        self.shapes = [_shape(e) for e in exchanges]
        self.named = {e.probe: e for e in reversed(exchanges) if e.probe in NAMES}
        self.taken: dict[str, Exchange] = {}
        self.deleted: set[str] = set()
        self.absent: set[str] = set()
        self.delete_agent: str | None = None
        self.agents, self.sid, self.key, self.agent_from = self._configured(agent)

    def _configured(self, agent: str | None) -> tuple[frozenset[str], str | None, str | None, str]:
        """The configured agent (its plain and masked forms), SID and key fingerprint, and whence."""
        pairs = list(zip(self.exchanges, self.shapes, strict=True))
        gets = [(e, s) for e, s in pairs if _documented_get(s) and e.probe in (None, "baseline")]
        named = [(e, s) for e, s in gets if e.probe == "baseline"]
        if agent is not None:
            forms = frozenset({agent, _as_recorded(agent)})
            found = next(((e, s) for e, s in named + gets if s.agents and s.agents[0] in forms), None)
            if found is None:
                return forms, None, None, "--agent; no documented testers GET of it, so no account is known"
            return forms, found[1].sid, found[1].key, f"--agent; account of {found[0].source}"
        found = next(iter(named), None) or next(((e, s) for e, s in gets if e.response.status == 200), None)
        if found is None:
            return frozenset(), None, None, "no documented testers GET was answered 200"
        e, s = found
        how = "the probe baseline" if e.probe else "the first documented testers GET answered 200"
        assert s.agents is not None
        return frozenset(s.agents), s.sid, s.key, f"{how}, {e.source}"

    # -- one exchange ----------------------------------------------------------------------

    def probe_of(self, exchange: Exchange, shape: _Shape) -> tuple[str | None, str]:
        """The probe this exchange is taken as, or None and why not."""
        if exchange.probe is not None:
            if exchange.probe not in NAMES:
                return None, f"names a probe the suite does not send ({exchange.probe!r})"
            return self._take(exchange.probe, exchange)
        name, why = self._by_shape(shape)
        if name is None:
            return None, why
        if name in self.named:
            return None, f"has the shape of {name}, which {self.named[name].source} names"
        return self._take(name, exchange)

    def _take(self, name: str, exchange: Exchange) -> tuple[str | None, str]:
        if name in self.taken:
            return None, f"another {name} (the first, {self.taken[name].source}, is the one judged)"
        self.taken[name] = exchange
        return name, ""

    def _by_shape(self, s: _Shape) -> tuple[str | None, str]:
        if s.prefer:
            return None, "asks for a named answer (Prefer): not what the target would answer by itself"
        if s.template is None:
            made_up = len(s.segments) == 5 and s.segments[1:4:2] == ("v1", "rcs") and s.segments[4] == NO_OPERATION
            if s.method == "GET" and made_up and self._documented_headers(s):
                return "not_found_path", ""
            return None, "no operation of openapi.yaml has this path"
        if self.key is None:
            return None, f"the configured account is unknown ({self.agent_from})"
        if s.template == TESTERS and s.method == "GET" and not s.body and s.agents is not None:
            return self._testers_get(s)
        if s.template != WSGW and s.sid != self.sid:
            return None, "another SID than the configured account's"
        if not self._documented_headers(s):
            return None, "not the documented headers (the configured key, Content-Type application/json)"
        one = s.agents is not None and len(s.agents) == 1 and s.agents[0] in self.agents
        if (s.method, s.template) in _AS_CONFIGURED and one and not s.body:
            return _AS_CONFIGURED[s.method, s.template], ""
        if s.method == "POST" and s.template == TESTERS and s.agents == () and s.body:
            return self._post_body(s.body)
        if s.template == DELETE:
            return self._delete(s)
        if (s.method, s.template) == ("DELETE", NO_NUMBER_SLASH):
            return "delete_no_number_slash", ""
        if (s.method, s.template) == ("DELETE", NO_NUMBER):
            return "delete_no_number", ""
        return None, "no probe has this shape"

    def _documented_headers(self, s: _Shape) -> bool:
        return s.key is not None and s.key == self.key and s.content_type == "json"

    def _testers_get(self, s: _Shape) -> tuple[str | None, str]:
        assert s.agents is not None
        if s.sid == UNKNOWN_SID:
            ok = self._documented_headers(s) and len(s.agents) == 1 and s.agents[0] in self.agents
            return ("unknown_sid", "") if ok else (None, "the probes' made-up SID, but not the unknown_sid probe")
        if s.sid != self.sid:
            return None, "another SID than the configured account's"
        if len(s.agents) != 1:
            if s.key != self.key or s.content_type != "json":
                return None, "not the documented headers (the configured key, Content-Type application/json)"
            return ("missing_agent", "") if not s.agents else ("repeated_agent", "")
        if s.key is None:
            return ("no_key", "") if s.content_type == "json" else (None, "no key and not Content-Type JSON")
        if s.key in WRONG_KEYS:
            return ("wrong_key", "") if s.content_type == "json" else (None, "the wrong key, but not JSON")
        if s.key != self.key:
            return None, "another api key than the configured account's (another account, or not known to be wrong)"
        agent = s.agents[0]
        if agent in self.agents:
            if s.content_type in _CONTENT_TYPE_PROBES:
                return _CONTENT_TYPE_PROBES[s.content_type], ""
            if s.content_type != "json":
                return None, "a Content-Type no probe sends"
            if "baseline" not in self.taken:
                return "baseline", ""
            if s.na_host is not None and f"na_host_{s.na_host.rsplit('.', 1)[1]}" not in self.taken:
                return f"na_host_{s.na_host.rsplit('.', 1)[1]}", ""
            return None, f"another documented GET of the configured agent ({self.taken['baseline'].source} is judged)"
        if s.content_type != "json":
            return None, "a testers GET of another agent, not with Content-Type JSON"
        if agent == self.delete_agent and agent in self.deleted and "testers_after_delete" not in self.taken:
            return "testers_after_delete", ""
        if agent in self.absent | self.deleted:
            return "unknown_agent", ""
        return None, "a testers GET of another agent, which this cassette does not show to be absent"

    def _post_body(self, body: bytes) -> tuple[str | None, str]:
        doc = strict_json(body)
        if doc is INVALID_JSON:
            return "invalid_json", ""
        if isinstance(doc, dict) and set(doc) == {"agent_number"} and doc["agent_number"] in self.agents:
            return "post_body", ""
        return None, "a POST body other than the configured agent's number"

    def _delete(self, s: _Shape) -> tuple[str | None, str]:
        if s.method == "GET":
            return "get_delete_path", ""
        if s.method != "DELETE":
            return None, "no probe has this shape"
        if "delete_first" not in self.taken and "delete_first" not in self.named:
            return "delete_first", ""
        if s.path_agent == self.delete_agent:
            return "delete_again", ""
        return None, f"a DELETE of another agent than {self.delete_agent} (the first deleted)"

    def learn(self, name: str | None, exchange: Exchange, shape: _Shape) -> None:
        """What a DELETE tells of the account's agents, for the exchanges after it."""
        if shape.method != "DELETE" or shape.template != DELETE or shape.key != self.key:
            return
        if name == "delete_first":
            self.delete_agent = shape.path_agent
        if exchange.response.status == 200:
            self.deleted.add(shape.path_agent)
        elif _agent_not_found(exchange):
            self.absent.add(shape.path_agent)


def _line(exchange: Exchange, shape: _Shape) -> str:
    """The request as the answers table shows it: the SID as `{sid}`, the key never."""
    req = exchange.request
    path = req.path
    if shape.sid:
        path = path.replace(f"/{shape.sid}/", "/{sid}/", 1)
    line = f"{req.method} {path}" + (f"?{req.query}" if req.query else "")
    if shape.na_host is not None:
        line += f" (Host: {shape.na_host})"
    if shape.key is None:
        line += " [no key]"
    elif shape.key in WRONG_KEYS:
        line += " [wrong key]"
    if shape.content_type != "json":
        line += f" [Content-Type {req.headers.get('content-type', 'missing')}]"
    if req.body:
        line += " body " + req.body.decode("utf-8", "replace")[:200]
    return line


def _answer(name: str, exchange: Exchange, shape: _Shape, secret: str) -> Answer:
    """The exchange's answer as a live run would have read it (the same parsing, the same redaction)."""
    response = exchange.response
    raw = decoded_body(response)
    if raw is None:
        text, body, is_json = "(a Content-Encoding that could not be undone)", None, False
    else:
        text = redact(raw.decode("utf-8", "replace"), secret)
        try:
            body, is_json = json.loads(text if secret else raw), True
        except (ValueError, RecursionError):
            body, is_json = None, False
    headers: dict[str, str] = {}
    for key, value in response.headers:  # a repeated header joined with a comma, as httpx reads it
        header = key.lower()
        if header in REPORTED_HEADERS:
            value = redact(value, secret)
            headers[header] = headers[header] + ", " + value if header in headers else value
    return Answer(
        name,
        _line(exchange, shape),
        sent=True,
        status=response.status,
        headers=headers,
        text=text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + "…",
        body=body,
        is_json=is_json,
        elapsed_ms=round(exchange.elapsed_ms, 1),
        source=exchange.source,
    )


def classify(
    exchanges: Sequence[Exchange],
    *,
    agent: str | None = None,
    files: Sequence[Path] = (),
    skipped: Sequence[str] = (),
    secret: str = "",
) -> Classified:
    """The evidence of these exchanges (in recorded order); `secret`, if known, is redacted from answers."""
    c = _Classifier(exchanges, agent)
    answers: dict[str, Answer] = {}
    recorded_agent: str | None = None
    used: list[tuple[Exchange, str]] = []
    unclassified: list[tuple[Exchange, str]] = []
    for exchange, shape in zip(exchanges, c.shapes, strict=True):
        name, why = c.probe_of(exchange, shape)
        c.learn(name, exchange, shape)
        if name is None:
            unclassified.append((exchange, why))
            continue
        used.append((exchange, name))
        answers[name] = _answer(name, exchange, shape, secret)
        if name == "baseline" and shape.agents:
            recorded_agent = shape.agents[0]  # as the cassette has it, masked or not
    missing = [n for n in NAMES if n not in answers]
    for probe in PROBES:
        if probe.name in answers:
            continue
        why = _WHY_MISSING.get(probe.name, f"no exchange of its shape ({probe.method} {probe.path})")
        answers[probe.name] = Answer(probe.name, f"{probe.method} {probe.path}", reason=f"{NOT_HERE}: {why}")
    return Classified(
        files=tuple(files),
        total=len(exchanges),
        evidence=Evidence(answers, recorded_agent or agent or next(iter(c.agents), None), c.delete_agent),
        used=used,
        unclassified=unclassified,
        skipped=list(skipped),
        missing=missing,
        upstreams=sorted({e.upstream for e in exchanges if e.upstream}),
        sid=c.sid,
        agent_from=c.agent_from,
        secret=secret,
    )


def read(paths: Sequence[Path], *, agent: str | None = None) -> Classified:
    """Every exchange of these cassettes, file by file, classified; CassetteError when one holds none.

    KALEYRA_API_KEY, when set, is redacted from the answers as a live run redacts it."""
    exchanges: list[Exchange] = []
    skipped: list[str] = []
    for path in paths:
        found, lines = read_cassette(path)
        exchanges += found
        skipped += lines
    return classify(exchanges, agent=agent, files=paths, skipped=skipped, secret=os.environ.get("KALEYRA_API_KEY", ""))
