"""The doc-drift items: one per item of the README's "Where the Kaleyra docs disagree" and
"What is assumed" lists, each split into parts, and how each part is judged.

`ITEMS` below is the one place that says what is checked and how. A part (`Claim`) names what
the documents or the assumption say, whether the spec marks it documented or `x-assumed` (and
where: a JSON pointer into openapi.yaml), and a judge that reads the recorded answers
(`Evidence`, keyed by probe name, see `_probes.PROBES`) and returns CONFIRMS, CONTRADICTS or
CANNOT TELL with what the target answered. A documented part that is contradicted fails the
run; an `x-assumed` one is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from contracts._support import SPEC
from mock_server.core import Example

__all__ = [
    "CANNOT_TELL",
    "CONFIRMS",
    "CONTRADICTS",
    "ITEMS",
    "NA_HOSTS",
    "Answer",
    "Claim",
    "ClaimResult",
    "Evidence",
    "Finding",
    "Item",
    "ItemResult",
    "error_layout",
    "judge",
    "mark_problems",
]

Verdict = Literal["CONFIRMS", "CONTRADICTS", "CANNOT TELL"]
Mark = Literal["documented", "x-assumed"]
CONFIRMS: Verdict = "CONFIRMS"
CONTRADICTS: Verdict = "CONTRADICTS"
CANNOT_TELL: Verdict = "CANNOT TELL"
SECTIONS = {"D": "Where the Kaleyra docs disagree", "A": "What is assumed"}


# -- what the judges read ------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One probe's outcome, already redacted: never sent (and why), no HTTP answer, or an answer."""

    probe: str
    request: str
    sent: bool = False
    reason: str = ""
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    body: Any = None
    is_json: bool = False
    error: str | None = None
    elapsed_ms: float | None = None
    # The recorded exchange it came from ("FILE:LINE" of a cassette), so a report names its evidence.
    source: str = ""

    @property
    def http(self) -> bool:
        return self.sent and self.status is not None

    def short(self, limit: int = 160) -> str:
        if not self.sent:
            return f"not asked ({self.reason})"
        if self.status is None:
            return f"no HTTP answer ({self.error})"
        text = " ".join(self.text.split())
        text = text if len(text) <= limit else text[: limit - 1] + "…"
        return f"{self.status} {text or '(empty body)'}"


@dataclass(frozen=True)
class Evidence:
    answers: Mapping[str, Answer]
    agent: str | None = None
    delete_agent: str | None = None
    # Set by `judge` for one part: the probes its judge read, so the report can name its exchanges.
    _read: list[str] | None = field(default=None, compare=False, repr=False)

    def __getitem__(self, probe: str) -> Answer:
        if self._read is not None:
            self._read.append(probe)
        return self.answers.get(probe) or Answer(probe, "", reason="not part of this run")

    def errors(self) -> list[Answer]:
        found = [a for a in self.answers.values() if a.http and (a.status or 0) >= 400]
        if self._read is not None:
            self._read.extend(a.probe for a in found)
        return found

    def reading(self) -> tuple[Evidence, list[str]]:
        """The same answers, and the list every probe a judge reads through them is added to."""
        read: list[str] = []
        return replace(self, _read=read), read


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    observed: str


Judge = Callable[[Evidence], Finding]


@dataclass(frozen=True)
class Claim:
    id: str
    says: str
    mark: Mark
    spec: str | None  # a JSON pointer into openapi.yaml whose node carries the mark; None: README only
    judge: Judge
    askable: bool = True  # False: no request can decide it (always CANNOT TELL)


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    readme_anchor: str  # words of the README row or bullet this item is (a test ties them)
    claims: tuple[Claim, ...]

    @property
    def section(self) -> str:
        return SECTIONS[self.id[0]]

    @property
    def number(self) -> int:
        return int(self.id[1:].split("-", 1)[0])


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    finding: Finding
    read: tuple[Answer, ...] = ()  # the answers its judge read, in the order it read them

    @property
    def sources(self) -> tuple[str, ...]:
        """The recorded exchanges the verdict rests on ("FILE:LINE"), each once."""
        return tuple(dict.fromkeys(a.source for a in self.read if a.source))

    @property
    def fails_run(self) -> bool:
        return self.claim.mark == "documented" and self.finding.verdict == CONTRADICTS


@dataclass(frozen=True)
class ItemResult:
    item: Item
    parts: tuple[ClaimResult, ...]

    @property
    def verdict(self) -> Verdict:
        verdicts = {p.finding.verdict for p in self.parts}
        if CONTRADICTS in verdicts:
            return CONTRADICTS
        return CONFIRMS if CONFIRMS in verdicts else CANNOT_TELL

    @property
    def fails_run(self) -> bool:
        return any(p.fails_run for p in self.parts)

    @property
    def mark(self) -> str:
        marks = {p.claim.mark for p in self.parts}
        return " + ".join(m for m in ("documented", "x-assumed") if m in marks)

    @property
    def decided(self) -> str:
        done = sum(p.finding.verdict != CANNOT_TELL for p in self.parts)
        return f"{done} of {len(self.parts)}"


def judge(evidence: Evidence, items: Iterable[Item] | None = None) -> list[ItemResult]:
    return [
        ItemResult(item, tuple(_judged(c, evidence) for c in item.claims))
        for item in (ITEMS if items is None else items)
    ]


def _judged(claim: Claim, evidence: Evidence) -> ClaimResult:
    """A judge that trips over an answer shape it did not foresee says so instead of crashing the report."""
    tracked, read = evidence.reading()
    try:
        finding = claim.judge(tracked)
    except Exception as exc:
        finding = Finding(CANNOT_TELL, f"the judge could not read the answers ({type(exc).__name__}: {exc})")
    answers = tuple(evidence.answers[p] for p in dict.fromkeys(read) if p in evidence.answers)
    return ClaimResult(claim, finding, answers)


# -- reading answers -----------------------------------------------------------------------


def error_layout(body: Any) -> tuple[str, dict[str, Any]]:
    """Where an error body keeps its constant: `data.error` (the spec's default), `error` (the
    other reading), or elsewhere."""
    if not isinstance(body, dict):
        return "not a JSON object", {}
    error, data = body.get("error"), body.get("data")
    if isinstance(data, dict) and isinstance(data.get("error"), dict) and "error_code" in data["error"]:
        return "data.error", data["error"]
    if isinstance(error, dict) and "error_code" in error:
        return "error", error
    if "error_code" in body:
        return "top level", body
    if isinstance(data, dict) and "error_code" in data:
        return "data", data
    return "nowhere", {}


def _fields(body: Any) -> dict[str, Any]:
    """code, message, error_code, error_message, wherever the constant sits."""
    top = body if isinstance(body, dict) else {}
    detail = error_layout(body)[1]
    return {
        "code": top.get("code"),
        "message": top.get("message"),
        "error_code": detail.get("error_code"),
        "error_message": detail.get("error_message"),
    }


def _code(answer: Answer) -> str | None:
    code = answer.body.get("code") if isinstance(answer.body, dict) else None
    return code if isinstance(code, str) and code.startswith("RCS") else None


def _unanswered(answer: Answer) -> Finding | None:
    if not answer.sent:
        return Finding(CANNOT_TELL, f"not asked: {answer.reason}")
    if answer.status is None:
        return Finding(CANNOT_TELL, f"no HTTP answer: {answer.error}")
    return None


def _baseline_not_ok(ev: Evidence) -> Finding | None:
    """Comparisons need the documented sample request to have answered 200 with a list."""
    base = ev["baseline"]
    if not base.sent:
        return Finding(CANNOT_TELL, f"the sample request was not asked ({base.reason}); nothing to compare with")
    if base.status is None:
        return Finding(CANNOT_TELL, f"the sample request got no HTTP answer ({base.error}); nothing to compare with")
    if base.status != 200 or not isinstance(base.body, list):
        return Finding(CANNOT_TELL, f"the sample request answered {base.short(80)}, not a 200 list; nothing to compare")
    return None


def _status_code(answer: Answer) -> str:
    code = _code(answer)
    return f"{answer.status} {code}" if code else str(answer.status)


def _example(operation: str, name: str) -> Example:
    return SPEC.shared[name] if operation == "*" else SPEC.example(operation, name)


def _as_example(answer: Answer, example: Example) -> Finding:
    """Status, code, message, constant and error message as the spec's named answer (constant found anywhere)."""
    missing = _unanswered(answer)
    if missing is not None:
        return missing
    want = _fields(example.value)
    if answer.status != example.status:
        return Finding(CONTRADICTS, f"{answer.short()} (the spec: {example.status} {want['code']})")
    if not isinstance(answer.body, dict):
        return Finding(CONTRADICTS, f"{answer.short()} (the spec: a JSON object)")
    got = _fields(answer.body)
    diffs = [f"{k} {got[k]!r} (spec {want[k]!r})" for k in want if got[k] != want[k]]
    if diffs:
        return Finding(CONTRADICTS, f"{answer.status}: " + "; ".join(diffs))
    return Finding(CONFIRMS, f"{answer.status} {got['code']} {got['error_code']}, as the spec's `{example.name}`")


def _diff(want: Any, got: Any, pointer: str = "") -> list[str]:
    """Where `got` differs from the documented `want`; keys `want` does not have are not differences."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key, value in want.items():
            if key not in got:
                out.append(f"{pointer}/{key} missing")
            else:
                out += _diff(value, got[key], f"{pointer}/{key}")
        return out
    return [] if want == got else [f"{pointer or '/'} {got!r} (documented {want!r})"]


def _combine(findings: list[tuple[str, Finding]]) -> Finding:
    verdicts = {f.verdict for _, f in findings}
    verdict = CONTRADICTS if CONTRADICTS in verdicts else CONFIRMS if verdicts == {CONFIRMS} else CANNOT_TELL
    return Finding(verdict, "; ".join(f"{label}: {f.observed}" for label, f in findings))


# -- the judges ----------------------------------------------------------------------------


def _na_host(probe: str, host: str, other_probe: str, other_host: str) -> Judge:
    def answers(a: Answer) -> bool:
        return (
            a.http and a.status not in (404, 405) and ((a.status == 200 and isinstance(a.body, list)) or bool(_code(a)))
        )

    def judge(ev: Evidence) -> Finding:
        a, other = ev[probe], ev[other_probe]
        if not a.sent:
            return Finding(CANNOT_TELL, f"not asked: {a.reason}")
        if answers(a):
            return Finding(CONFIRMS, f"{_status_code(a)}: {host} answers the testers call")
        if answers(other):
            return Finding(CONTRADICTS, f"{host}: {a.short(100)}, while {other_host} answers")
        return Finding(
            CANNOT_TELL, f"neither NA host answered ({host}: {a.short(80)}; {other_host}: {other.short(80)})"
        )

    return judge


def _sample_path(ev: Evidence) -> Finding:
    a = ev["baseline"]
    missing = _unanswered(a)
    if missing is not None:
        return missing
    if a.status in (404, 405):
        return Finding(CONTRADICTS, f"{a.short()}: the documented request is not served")
    if a.status == 200:
        if isinstance(a.body, list):
            return Finding(CONFIRMS, f"200, a list of {len(a.body)} tester(s)")
        return Finding(CONTRADICTS, f"{a.short()}: 200 but not the documented JSON list")
    if a.status in (401, 403):
        return Finding(CANNOT_TELL, f"{a.short(100)}: the target refused the credentials (KALEYRA_API_KEY/SID/POD)")
    if _code(a) and (a.status or 0) < 500:
        return Finding(CONFIRMS, f"{_status_code(a)}: answered in Kaleyra's envelope, so the request is served")
    return Finding(CANNOT_TELL, a.short())


def _served(probe: str) -> Judge:
    """The variant is served: anything but a 404/405 or a non-Kaleyra refusal, once the sample request works."""

    def judge(ev: Evidence) -> Finding:
        a = ev[probe]
        not_ok = _baseline_not_ok(ev) or _unanswered(a)
        if not_ok is not None:
            return not_ok
        assert a.status is not None
        if a.status in (404, 405):
            return Finding(CONTRADICTS, f"{a.short(100)}: not served")
        if a.status == 200 or _code(a):
            return Finding(CONFIRMS, f"{_status_code(a)}: served")
        if a.status >= 500:
            return Finding(CANNOT_TELL, a.short(100))
        return Finding(CONTRADICTS, f"{a.short(100)}: not answered as the sample path is")

    return judge


def _alike(probe: str) -> Judge:
    """The variant answers exactly what the documented GET answered."""

    def judge(ev: Evidence) -> Finding:
        a, base = ev[probe], ev["baseline"]
        not_ok = _baseline_not_ok(ev) or _unanswered(a)
        if not_ok is not None:
            return not_ok
        if a.status == base.status and a.body == base.body:
            return Finding(CONFIRMS, f"{a.status}, the same body as the documented GET")
        return Finding(CONTRADICTS, f"{a.short(120)} (the documented GET: 200, {len(base.body)} tester(s))")

    return judge


def _refused(probe: str, what: str) -> Judge:
    def judge(ev: Evidence) -> Finding:
        a = ev[probe]
        not_ok = _baseline_not_ok(ev) or _unanswered(a)
        if not_ok is not None:
            return not_ok
        assert a.status is not None
        if 200 <= a.status < 300:
            return Finding(CONTRADICTS, f"{a.status}, answered like the sample request: {what} is not refused")
        if 400 <= a.status < 500 and a.status not in (401, 403):
            return Finding(CONFIRMS, f"refused: {_status_code(a)}")
        return Finding(CANNOT_TELL, a.short(100))

    return judge


def _accepted_upper_case(ev: Evidence) -> Finding:
    a, base = ev["json_upper"], ev["baseline"]
    not_ok = _baseline_not_ok(ev) or _unanswered(a)
    if not_ok is not None:
        return not_ok
    assert a.status is not None
    if a.status == 200 and a.body == base.body:
        return Finding(CONFIRMS, "200, the same answer as with application/json")
    if 400 <= a.status < 500 and a.status not in (401, 403):
        return Finding(CONTRADICTS, f"refused: {_status_code(a)}: the documents' own spelling is not accepted")
    return Finding(CANNOT_TELL, a.short(100))


def _query_agent(ev: Evidence) -> Finding:
    a = ev["baseline"]
    missing = _unanswered(a)
    if missing is not None:
        return missing
    if a.status == 200 and isinstance(a.body, list):
        return Finding(CONFIRMS, "200: agent_number read from the query string")
    if _fields(a.body)["error_code"] == "MISSING_REQUIRED_PARAMS":
        return Finding(CONTRADICTS, f"{a.short(100)}: the query's agent_number is not read")
    return Finding(CANNOT_TELL, a.short(100))


def _body_agent(ev: Evidence) -> Finding:
    a, base = ev["post_body"], ev["baseline"]
    not_ok = _baseline_not_ok(ev) or _unanswered(a)
    if not_ok is not None:
        return not_ok
    if a.status in (404, 405):
        return Finding(CONTRADICTS, f"{a.short(100)}: POST is not served at all")
    if a.status == 200 and a.body == base.body:
        return Finding(CONFIRMS, "200, the same testers as the GET with the query")
    return Finding(CONTRADICTS, f"{a.short(100)}: agent_number in a JSON body is not read")


def _path_agent(ev: Evidence) -> Finding:
    a = ev["delete_first"]
    missing = _unanswered(a)
    if missing is not None:
        return missing
    constant = _fields(a.body)["error_code"]
    if a.status == 200 and _code(a) == "RCS902":
        return Finding(CONFIRMS, f"200 RCS902: agent {ev.delete_agent} deleted by its number in the path")
    if a.status in (404, 405) or constant == "MISSING_REQUIRED_PARAMS":
        return Finding(CONTRADICTS, f"{a.short(100)}: the agent number in the path is not read")
    if constant == "PROV_ERROR":
        return Finding(CANNOT_TELL, f"{_status_code(a)} PROV_ERROR: agent {ev.delete_agent} was not there")
    return Finding(CANNOT_TELL, a.short(100))


SAMPLE_TESTER: dict[str, Any] = SPEC.example("getTestersByAgent", "testers").value[0]
TESTER_SCHEMA: dict[str, Any] = SPEC.document["components"]["schemas"]["Tester"]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    for kind, name in ((int, "integer"), (float, "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


def _testers_or_why(ev: Evidence) -> list[Any] | Finding:
    base = ev["baseline"]
    missing = _unanswered(base)
    if missing is not None:
        return missing
    if base.status != 200 or not isinstance(base.body, list):
        return Finding(CANNOT_TELL, f"no tester list: {base.short(100)}")
    if not base.body:
        return Finding(CANNOT_TELL, f"agent {ev.agent} has no testers: nothing to compare")
    return base.body


def _sample_tester(ev: Evidence) -> Finding:
    testers = _testers_or_why(ev)
    if isinstance(testers, Finding):
        return testers
    wrong = []
    for i, tester in enumerate(testers):
        if not isinstance(tester, dict):
            wrong.append(f"tester {i} is a JSON {_json_type(tester)}, not an object")
            continue
        for name, sample in SAMPLE_TESTER.items():
            if name in tester and _json_type(tester[name]) != _json_type(sample):
                wrong.append(f"tester {i} {name}: {_json_type(tester[name])} (sample: {_json_type(sample)})")
    if wrong:
        return Finding(CONTRADICTS, "; ".join(wrong[:5]) + (f"; … {len(wrong) - 5} more" if len(wrong) > 5 else ""))
    same = sum(isinstance(t, dict) and t.get("agent_no") == ev.agent for t in testers)
    pairing = f"agent_no equals the agent asked ({ev.agent}) in {same} of {len(testers)}"
    if same == len(testers):
        pairing += ': the sample\'s 48900 → "1102" is not what this target does'
    return Finding(CONFIRMS, f"{len(testers)} tester(s) with the sample's field types; {pairing}")


def _stray_space(ev: Evidence) -> Finding:
    found = _sample_path(ev)
    if found.verdict == CONFIRMS:
        return Finding(CONFIRMS, f"the path without the space is answered ({found.observed})")
    return found


def _agent_deleted(ev: Evidence) -> Finding:
    a = ev["delete_first"]
    missing = _unanswered(a)
    if missing is not None:
        return missing
    want = _example("deleteAgent", "agent_deleted").value
    if a.status == 200:
        diffs = _diff(want, a.body)
        if not diffs:
            extra = sorted(set(a.body) - set(want)) if isinstance(a.body, dict) else []
            more = f"; extra keys {extra}" if extra else ""
            return Finding(CONFIRMS, f'200, the sample body, "succesfully" (sic) included{more}')
        return Finding(CONTRADICTS, "200, but " + "; ".join(diffs[:5]))
    if _fields(a.body)["error_code"] == "PROV_ERROR":
        return Finding(CANNOT_TELL, f"{_status_code(a)} PROV_ERROR: agent {ev.delete_agent} was not there")
    return Finding(CANNOT_TELL, a.short(100))


def _not_found_after_delete(ev: Evidence) -> Finding:
    found = _as_example(ev["delete_again"], _example("deleteAgent", "agent_not_found"))
    if found.verdict == CONFIRMS:
        return Finding(CONFIRMS, f"{found.observed}; its error message is a JSON document in a string")
    return found


def _missing_agent_number(ev: Evidence) -> Finding:
    example = _example("deleteAgentWithoutNumber", "missing_agent_number")
    return _combine(
        [
            ("…/rcs/agent/", _as_example(ev["delete_no_number_slash"], example)),
            ("…/rcs/agent", _as_example(ev["delete_no_number"], example)),
        ]
    )


def _never(why: str) -> Judge:
    def judge(ev: Evidence) -> Finding:
        return Finding(CANNOT_TELL, why)

    return judge


_PLACES = {
    "error": "under error",
    "data.error": "under data.error",
    "top level": "at the top level",
    "data": "under data",
    "nowhere": "no constant",
    "not a JSON object": "not a JSON object",
}


def _error_envelope(ev: Evidence) -> Finding:
    errors = ev.errors()
    if not errors:
        return Finding(CANNOT_TELL, "no error answer was received")
    places: dict[str, list[str]] = {}
    for a in errors:
        layout, detail = error_layout(a.body)
        place = _PLACES[layout]
        if layout == "data.error":
            body = a.body
            gaps = [k for k in ("code", "message") if not isinstance(body.get(k), str)]
            gaps += [k for k in ("error_code", "error_message") if k not in detail]
            place += f", without {', '.join(gaps)}" if gaps else ""
            place += ", beside a top-level error" if "error" in body else ""
        places.setdefault(place, []).append(f"{a.probe} {a.status}")
    summary = "; ".join(f"{place}: {', '.join(probes)}" for place, probes in places.items())
    if set(places) == {"under data.error"}:
        return Finding(CONFIRMS, f"{len(errors)} error answers, each in the full envelope ({summary})")
    return Finding(CONTRADICTS, f"not every error has its constant under `data.error` ({summary})")


def _unknown_agent(probe: str) -> Judge:
    def judge(ev: Evidence) -> Finding:
        a = ev[probe]
        missing = _unanswered(a)
        if missing is not None:
            return missing
        if probe == "testers_after_delete" and ev["delete_first"].status != 200:
            return Finding(CANNOT_TELL, f"nothing was deleted ({ev['delete_first'].short(80)})")
        if a.http and a.status == 200 and a.body == []:
            return Finding(CONTRADICTS, "200 []: an unknown agent is an empty list, not 400 RCS904 PROV_ERROR")
        return _as_example(a, _example("getTestersByAgent", "agent_not_found"))

    return judge


def _like(probe: str, operation: str, name: str, header: str | None = None) -> Judge:
    def judge(ev: Evidence) -> Finding:
        a = ev[probe]
        found = _as_example(a, _example(operation, name))
        if found.verdict == CONFIRMS and header and header.lower() not in a.headers:
            return Finding(CONTRADICTS, f"{found.observed}, but without a {header} header")
        if found.verdict == CONFIRMS and header:
            return Finding(CONFIRMS, f"{found.observed}; {header}: {a.headers[header.lower()]}")
        if a.http and a.status == 401:  # the real 401 body is what this probe is for: keep it whole
            return Finding(found.verdict, f"{found.observed}; body: {a.short(300)}")
        return found

    return judge


def _rate_limited(ev: Evidence) -> Finding:
    hits = [a for a in ev.answers.values() if a.http and a.status == 429]
    if not hits:
        return Finding(CANNOT_TELL, "no answer was a 429 (the suite stays under the rate limit on purpose)")
    return _like(hits[0].probe, "getTestersByAgent", "rate_limited", "Retry-After")(ev)


def _any_sid(ev: Evidence) -> Finding:
    a = ev["unknown_sid"]
    not_ok = _baseline_not_ok(ev) or _unanswered(a)
    if not_ok is not None:
        return not_ok
    assert a.status is not None
    if a.status == 200:
        return Finding(CONFIRMS, "an unknown SID with the configured key is answered 200 like the configured SID")
    if 400 <= a.status < 500:
        return Finding(
            CONTRADICTS,
            f"an unknown SID is refused ({a.short(100)}): list real accounts in a seed "
            "(`default_account: null` makes unknown SIDs 401)",
        )
    return Finding(CANNOT_TELL, a.short(100))


def _tester_fields(ev: Evidence) -> Finding:
    testers = _testers_or_why(ev)
    if isinstance(testers, Finding):
        return testers
    required = TESTER_SCHEMA["required"]
    missing = [f"tester {i} lacks {name}" for i, t in enumerate(testers) for name in required if name not in t]
    if missing:
        return Finding(
            CONTRADICTS, "; ".join(missing[:5]) + (f"; … {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    extra = sorted({k for t in testers for k in t} - set(TESTER_SCHEMA["properties"]))
    more = f"; fields the spec does not name: {', '.join(extra)}" if extra else ""
    return Finding(CONFIRMS, f"all {len(required)} fields in each of {len(testers)} tester(s){more}")


# -- the items -----------------------------------------------------------------------------


def _op(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


TESTERS_GET = _op("/v1/{sid}/rcs/agent/testersbyagent", "get")
TESTERS_POST = _op("/v1/{sid}/rcs/agent/testersbyagent", "post")
AGENTTESTER_GET = _op("/v1/{sid}/rcs/agenttester/testersbyagent", "get")
AGENTTESTER_POST = _op("/v1/{sid}/rcs/agenttester/testersbyagent", "post")
WSGW_GET = _op("/wsgw/v1/agent/testersbyagent", "get")
WSGW_POST = _op("/wsgw/v1/agent/testersbyagent", "post")
DELETE = _op("/v1/{sid}/rcs/agent/{agent_number}", "delete")
DELETE_WITHOUT_NUMBER = _op("/v1/{sid}/rcs/agent/", "delete")
# The spec's NA servers: the "Delete an Agent" document's host, then "Get Tester By Agent"'s.
NA_HOSTS = tuple(host for host, pod in SPEC.pod_hosts.items() if pod == "na")
IO, AI = NA_HOSTS

ITEMS: tuple[Item, ...] = (
    Item(
        "D1-na-host",
        "NA host: .io (delete document) and .ai (testers document)",
        "rcs-api.na.kaleyra.ai",
        (
            Claim(
                "D1-na-host.io",
                f"{IO} serves the NA pod",
                "documented",
                "#/servers/1",
                _na_host("na_host_io", IO, "na_host_ai", AI),
            ),
            Claim(
                "D1-na-host.ai",
                f"{AI} serves the NA pod",
                "documented",
                "#/servers/2",
                _na_host("na_host_ai", AI, "na_host_io", IO),
            ),
        ),
    ),
    Item(
        "D2-testers-path",
        "Testers path: sample /v1/{sid}/rcs/agent/…, prose /wsgw/v1/agent/…, newer page /rcs/agenttester/…",
        "testers path",
        (
            Claim(
                "D2-testers-path.sample",
                "GET /v1/{sid}/rcs/agent/testersbyagent is served (heading, sample)",
                "documented",
                TESTERS_GET,
                _sample_path,
            ),
            Claim(
                "D2-testers-path.wsgw",
                "GET /wsgw/v1/agent/testersbyagent (no SID) is served",
                "x-assumed",
                WSGW_GET,
                _served("get_wsgw"),
            ),
            Claim(
                "D2-testers-path.agenttester",
                "GET /v1/{sid}/rcs/agenttester/testersbyagent is served",
                "x-assumed",
                AGENTTESTER_GET,
                _served("get_agenttester"),
            ),
        ),
    ),
    Item(
        "D3-testers-method",
        "Testers method: GET (heading, sample) vs POST (request-format line)",
        "testers method",
        (
            Claim("D3-testers-method.get", "GET is answered", "documented", TESTERS_GET, _sample_path),
            Claim(
                "D3-testers-method.post",
                "POST is answered on the sample path",
                "x-assumed",
                TESTERS_POST,
                _served("post_sample"),
            ),
        ),
    ),
    Item(
        "D4-content-type",
        'Content-Type: application/json "mandatory", "the only allowed value is application/JSON"',
        '`Content-Type: application/json` "mandatory"',
        (
            Claim(
                "D4-content-type.missing",
                'a request without Content-Type is refused ("mandatory")',
                "x-assumed",
                "#/components/responses/UnsupportedMediaType",
                _refused("no_content_type", "a missing Content-Type"),
            ),
            Claim(
                "D4-content-type.other",
                'Content-Type: text/plain is refused ("the only allowed value")',
                "x-assumed",
                "#/components/responses/UnsupportedMediaType",
                _refused("text_plain", "text/plain"),
            ),
            Claim(
                "D4-content-type.documented-spelling",
                "Content-Type: application/JSON (the table's spelling) is accepted",
                "documented",
                "#/x-kaleyra-documented-parameters/kaleyra-rcs-get-tester-by-agent.txt/1",
                _accepted_upper_case,
            ),
        ),
    ),
    Item(
        "D5-agent-number-position",
        'agent_number is a "payload" parameter, but travels in the path (delete) or the query (testers)',
        'is listed as a "payload" parameter',
        (
            Claim(
                "D5-agent-number-position.query",
                "the GET reads agent_number from the query (sample)",
                "documented",
                TESTERS_GET,
                _query_agent,
            ),
            Claim(
                "D5-agent-number-position.body",
                'a POST reads agent_number from a JSON body ("payload")',
                "x-assumed",
                TESTERS_POST,
                _body_agent,
            ),
            Claim(
                "D5-agent-number-position.path",
                "the DELETE reads the agent number from the path (sample)",
                "documented",
                DELETE,
                _path_agent,
            ),
        ),
    ),
    Item(
        "D6-sample-tester",
        'The testers sample answers agent 48900 with a tester whose agent_no is "1102"',
        '`agent_no` is `"1102"`',
        (
            Claim(
                "D6-sample-tester.types",
                "live testers carry the sample's fields with the sample's JSON types "
                "(agent_no compared with the agent asked)",
                "documented",
                "#/components/examples/testers",
                _sample_tester,
            ),
        ),
    ),
    Item(
        "D7-stray-space",
        "The request-format line has a stray space (https://<api_domain>/ v1/…)",
        "stray space",
        (
            Claim(
                "D7-stray-space.no-space",
                "the path is /v1/… without the space",
                "documented",
                TESTERS_GET,
                _stray_space,
            ),
        ),
    ),
    Item(
        "D8-typo-and-json-string",
        '"Agent deleted succesfully" (sic); the PROV_ERROR message is a JSON document inside a string',
        "succesfully",
        (
            Claim(
                "D8-typo-and-json-string.typo",
                'a delete answers 200 with the sample body, "succesfully" included',
                "documented",
                "#/components/examples/agent_deleted",
                _agent_deleted,
            ),
            Claim(
                "D8-typo-and-json-string.json-string",
                "a second delete answers 400 RCS904 PROV_ERROR, its error message the JSON document in a string",
                "documented",
                "#/components/examples/delete_agent_not_found",
                _not_found_after_delete,
            ),
        ),
    ),
    Item(
        "D9-missing-agent-number",
        '"Missing Agent Number" is documented, but an empty path segment cannot be expressed in OpenAPI',
        '"Missing Agent Number" is documented',
        (
            Claim(
                "D9-missing-agent-number.empty-path",
                'DELETE /v1/{sid}/rcs/agent/ (and without the slash) answers the "Missing Agent Number" row',
                "x-assumed",
                DELETE_WITHOUT_NUMBER,
                _missing_agent_number,
            ),
        ),
    ),
    Item(
        "D10-masked-samples",
        "Masked sample SID and key in two casings; the sample curl's mismatched quotes",
        "masked sample SID and key",
        (
            Claim(
                "D10-masked-samples.masked",
                "the documents' SID and key are masked (X's vs x's)",
                "documented",
                "#/components/securitySchemes/ApiKeyAuth",
                _never("masked values and a quoting slip in a sample: no request can tell"),
                askable=False,
            ),
        ),
    ),
    Item(
        "A1-error-envelope",
        "The error envelope {code, message, data: {error: {error_code, error_message}}}",
        "The error envelope",
        (
            Claim(
                "A1-error-envelope.layout",
                "errors carry their constant under `data.error` (not a top-level `error`), in the full envelope",
                "x-assumed",
                "#/components/schemas/ErrorResponse",
                _error_envelope,
            ),
        ),
    ),
    Item(
        "A2-testers-errors",
        "Every error of the testers call follows the delete table (none is documented)",
        "Every error of the testers call",
        (
            Claim(
                "A2-testers-errors.unknown-agent",
                'an unknown agent answers 400 RCS904 PROV_ERROR "Failed to get testers" (not 200 [])',
                "x-assumed",
                "#/components/examples/testers_agent_not_found",
                _unknown_agent("unknown_agent"),
            ),
            Claim(
                "A2-testers-errors.missing-agent",
                "no agent_number answers 400 RCS904 MISSING_REQUIRED_PARAMS",
                "x-assumed",
                "#/components/examples/testers_missing_agent_number",
                _like("missing_agent", "getTestersByAgent", "missing_agent_number"),
            ),
            Claim(
                "A2-testers-errors.deleted-agent",
                "the testers of a deleted agent answer agent_not_found",
                "x-assumed",
                "#/components/responses/TestersBadRequest",
                _unknown_agent("testers_after_delete"),
            ),
        ),
    ),
    Item(
        "A3-other-errors",
        "401, 415, 429, 404, 405, invalid JSON and bad_request answers",
        "**401**",
        (
            Claim(
                "A3-other-errors.no-key",
                "no api-key: 401 RCS401 UNAUTHORIZED",
                "x-assumed",
                "#/components/examples/missing_api_key",
                _like("no_key", "getTestersByAgent", "missing_api_key"),
            ),
            Claim(
                "A3-other-errors.wrong-key",
                "a wrong api-key: 401 RCS401 UNAUTHORIZED",
                "x-assumed",
                "#/components/examples/invalid_api_key",
                _like("wrong_key", "getTestersByAgent", "invalid_api_key"),
            ),
            Claim(
                "A3-other-errors.415",
                "Content-Type text/plain: 415 RCS415",
                "x-assumed",
                "#/components/examples/unsupported_media_type",
                _like("text_plain", "getTestersByAgent", "unsupported_media_type"),
            ),
            Claim(
                "A3-other-errors.429",
                "too many requests: 429 RCS429 with Retry-After",
                "x-assumed",
                "#/components/responses/RateLimited",
                _rate_limited,
            ),
            Claim(
                "A3-other-errors.404",
                "a path that is no operation: 404 RCS404",
                "x-assumed",
                "#/components/responses/NotFound",
                _like("not_found_path", "*", "not_found"),
            ),
            Claim(
                "A3-other-errors.405",
                "GET on the delete path: 405 RCS405 with Allow",
                "x-assumed",
                "#/components/responses/MethodNotAllowed",
                _like("get_delete_path", "*", "method_not_allowed", "Allow"),
            ),
            Claim(
                "A3-other-errors.invalid-json",
                "a POST body that is not JSON: 400 RCS701",
                "x-assumed",
                "#/components/examples/invalid_json",
                _like("invalid_json", "postTestersByAgent", "invalid_json"),
            ),
            Claim(
                "A3-other-errors.bad-request",
                "a repeated agent_number: 400 RCS400",
                "x-assumed",
                "#/components/examples/bad_request",
                _like("repeated_agent", "getTestersByAgent", "bad_request"),
            ),
        ),
    ),
    Item(
        "A4-variants-alike",
        "The path and method variants of the testers call behave like the documented GET",
        "path and method variants",
        (
            Claim(
                "A4-variants-alike.get-agenttester",
                "GET …/rcs/agenttester/… answers as the GET",
                "x-assumed",
                AGENTTESTER_GET,
                _alike("get_agenttester"),
            ),
            Claim(
                "A4-variants-alike.get-wsgw",
                "GET /wsgw/… answers as the GET",
                "x-assumed",
                WSGW_GET,
                _alike("get_wsgw"),
            ),
            Claim(
                "A4-variants-alike.post",
                "POST on the sample path answers as the GET",
                "x-assumed",
                TESTERS_POST,
                _alike("post_sample"),
            ),
            Claim(
                "A4-variants-alike.post-agenttester",
                "POST …/rcs/agenttester/… answers as the GET",
                "x-assumed",
                AGENTTESTER_POST,
                _alike("post_agenttester"),
            ),
            Claim(
                "A4-variants-alike.post-wsgw",
                "POST /wsgw/… answers as the GET",
                "x-assumed",
                WSGW_POST,
                _alike("post_wsgw"),
            ),
        ),
    ),
    Item(
        "A5-tester-fields",
        "Every field of the sample tester is always present",
        "Every field of the sample tester",
        (
            Claim(
                "A5-tester-fields.required",
                "each tester has all seven fields of the sample",
                "x-assumed",
                "#/components/schemas/Tester",
                _tester_fields,
            ),
        ),
    ),
    Item(
        "A6-any-sid-any-key",
        "Any SID is a valid account; any non-empty api-key is accepted unless the account lists its keys",
        "Any SID is a valid account",
        (
            Claim(
                "A6-any-sid-any-key.unknown-sid",
                "an unknown SID (with the configured key) is answered like any account",
                "x-assumed",
                None,
                _any_sid,
            ),
        ),
    ),
    Item(
        "A7-mock-own-errors",
        "The mock's own errors (control plane, a bad Prefer) use the envelope with MOCK… codes",
        "The mock's own errors",
        (
            Claim(
                "A7-mock-own-errors.mock-only",
                "the mock's own errors use the envelope",
                "x-assumed",
                None,
                _never("about the mock's control plane and Prefer header: nothing a Kaleyra pod answers"),
                askable=False,
            ),
        ),
    ),
)


def _node(pointer: str) -> Any:
    node: Any = SPEC.document
    for part in pointer.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def mark_problems() -> list[str]:
    """Parts whose declared mark the spec does not carry at their pointer (a test keeps this empty)."""
    problems = []
    for item in ITEMS:
        for claim in item.claims:
            if claim.spec is None:
                continue
            try:
                node = _node(claim.spec)
            except (KeyError, IndexError, ValueError):
                problems.append(f"{claim.id}: {claim.spec} is not in openapi.yaml")
                continue
            if claim.mark == "x-assumed" and "x-assumed" not in node:
                problems.append(f"{claim.id}: {claim.spec} has no x-assumed")
            documented_table = claim.spec.startswith(("#/servers/", "#/x-kaleyra-documented-parameters/"))
            if claim.mark == "documented" and not (documented_table or "x-documented" in node):
                problems.append(f"{claim.id}: {claim.spec} has no x-documented")
    return problems
