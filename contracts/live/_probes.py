"""What the live smoke suite sends, and the bounds it sends it within.

Every request goes through `DriftRun.send_all`: a fixed list of probes (`PROBES`), each sent
at most once, within a request budget and a rate limit, with a finite timeout, no redirects
followed (a redirect could carry the api-key to another host), and the api key redacted from
everything recorded. Destructive probes (DELETE) are sent only when `--destructive` is given
AND `KALEYRA_ALLOW_DESTRUCTIVE=1` AND `KALEYRA_DELETE_AGENT_NUMBER` names the agent to lose.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from mock_server.core import (
    REQUEST_HEADERS,
    Exchange,
    RecordedRequest,
    RecordedResponse,
    key_fingerprint,
    mask,
    now_iso,
    recorded_headers,
)
from mock_server.web import is_loopback_host

from ._drift import NA_HOSTS, Answer, Evidence

__all__ = [
    "BODY_LIMIT",
    "DEFAULT_BUDGET",
    "DEFAULT_RATE",
    "LIVE_CASSETTE",
    "PROBES",
    "REPORTED_HEADERS",
    "UNKNOWN_SID",
    "WRONG_KEY",
    "Budget",
    "DriftRun",
    "LiveSettings",
    "Probe",
    "RateLimiter",
    "SettingsError",
    "redact",
]

DEFAULT_BUDGET = 40
DEFAULT_RATE = 1.0  # requests per second
DEFAULT_TIMEOUT = 10.0
MAX_REMOTE_RATE = 2.0  # above this (or 0, no limit) only against a loopback stand-in
MIN_RATE = 0.05  # so one wait is at most 20 s
WRONG_KEY = "drift-probe-wrong-key-0000000000"
UNKNOWN_AGENT = "0000000000"
UNKNOWN_SID = "DRIFTPROBE0UNKNOWN0SID"
BODY_LIMIT = 2000
USER_AGENT = "kaleyra-rcs-harness live smoke suite"
LIVE_CASSETTE = "live-cassette.jsonl"  # beside drift.md: every answer, as a cassette
REPORTED_HEADERS = ("content-type", "allow", "retry-after", "www-authenticate", "x-mock-source", "x-mock-example")


class SettingsError(ValueError):
    """A setting that would make the run unsafe or meaningless; the run stops before any request."""


# -- settings ------------------------------------------------------------------------------


def _is_loopback(url: str) -> bool:
    """The mock's own rule of what is loopback, for a base URL."""
    return is_loopback_host(urlsplit(url).hostname or "")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number")
    return value


def _agent(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip() or None
    if value in {".", ".."}:
        raise SettingsError(f"{name} {value!r} is a dot segment, not an agent number")
    return value


@dataclass(frozen=True)
class LiveSettings:
    base_url: str
    base_url_given: bool
    pod: str
    sid: str
    api_key: str = field(repr=False)
    agent: str | None
    delete_agent: str | None
    destructive: bool
    destructive_reason: str
    budget: int
    rate: float
    timeout: float
    host_header_probes: bool

    @property
    def loopback(self) -> bool:
        return _is_loopback(self.base_url)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, destructive_flag: bool, base_url: str, api_key: str, sid: str, pod: str
    ) -> LiveSettings:
        """`base_url`, `api_key`, `sid` and `pod` come from the contracts' `target` (the same variables)."""
        given = bool(env.get("KALEYRA_BASE_URL", "").strip())
        budget = _number(env, "KALEYRA_REQUEST_BUDGET", DEFAULT_BUDGET)
        if budget < 1 or budget != int(budget):
            raise SettingsError("KALEYRA_REQUEST_BUDGET must be a whole number of at least 1")
        rate = _number(env, "KALEYRA_RATE_LIMIT", DEFAULT_RATE)
        loopback = _is_loopback(base_url)
        if rate < 0 or 0 < rate < MIN_RATE:
            raise SettingsError(f"KALEYRA_RATE_LIMIT must be 0 (no limit, loopback only) or at least {MIN_RATE}")
        if (rate == 0 or rate > MAX_REMOTE_RATE) and not loopback:
            raise SettingsError(
                f"KALEYRA_RATE_LIMIT={rate:g}: a rate above {MAX_REMOTE_RATE:g}/s, or 0 (no limit), is allowed only "
                "against a loopback stand-in"
            )
        timeout = _number(env, "KALEYRA_TIMEOUT", DEFAULT_TIMEOUT)
        if not 0 < timeout <= 120:
            raise SettingsError("KALEYRA_TIMEOUT must be more than 0 and at most 120 seconds")
        host_header = env.get("KALEYRA_HOST_HEADER_PROBES", "") == "1"
        if host_header and not (given and loopback):
            raise SettingsError("KALEYRA_HOST_HEADER_PROBES=1 is for a loopback stand-in named by KALEYRA_BASE_URL")
        agent = _agent(env, "KALEYRA_AGENT_NUMBER")
        delete_agent = _agent(env, "KALEYRA_DELETE_AGENT_NUMBER")
        allowed = env.get("KALEYRA_ALLOW_DESTRUCTIVE", "") == "1"
        missing = [
            name
            for name, ok in (
                ("--destructive", destructive_flag),
                ("KALEYRA_ALLOW_DESTRUCTIVE=1", allowed),
                ("KALEYRA_DELETE_AGENT_NUMBER", bool(delete_agent)),
            )
            if not ok
        ]
        reason = f"destructive probes off (missing: {', '.join(missing)})" if missing else ""
        if not missing and delete_agent in (agent, UNKNOWN_AGENT):
            reason = "destructive probes off: KALEYRA_DELETE_AGENT_NUMBER must differ from KALEYRA_AGENT_NUMBER"
        return cls(
            base_url=base_url.rstrip("/"),
            base_url_given=given,
            pod=pod,
            sid=sid,
            api_key=api_key,
            agent=agent,
            delete_agent=delete_agent,
            destructive=not reason,
            destructive_reason=reason,
            budget=int(budget),
            rate=rate,
            timeout=timeout,
            host_header_probes=host_header,
        )

    def masked_sid(self) -> str:
        return self.sid[:2] + "…" + self.sid[-2:] if len(self.sid) > 6 else "***"


# -- bounds --------------------------------------------------------------------------------


class RateLimiter:
    """At most `per_second` requests a second; 0 means no limit. One wait never exceeds 1/per_second."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 0.0 if per_second <= 0 else 1.0 / per_second
        self._clock, self._sleep = clock, sleep
        self._next: float | None = None

    def wait(self) -> float:
        if not self.interval:
            return 0.0
        now = self._clock()
        waited = 0.0
        if self._next is not None and now < self._next:
            waited = min(self._next - now, self.interval)
            self._sleep(waited)
            now += waited
        self._next = now + self.interval
        return waited


@dataclass
class Budget:
    limit: int
    spent: int = 0

    def take(self) -> bool:
        if self.spent >= self.limit:
            return False
        self.spent += 1
        return True


def redact(text: str, secret: str) -> str:
    if not secret:
        return text
    for form in {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}:
        text = text.replace(form, "***")
    return text


def _redact_json(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, list):
        return [_redact_json(v, secret) for v in value]
    if isinstance(value, dict):
        return {redact(str(k), secret): _redact_json(v, secret) for k, v in value.items()}
    return value


# -- the probes ----------------------------------------------------------------------------

TESTERS = "/v1/{sid}/rcs/agent/testersbyagent"
AGENTTESTER = "/v1/{sid}/rcs/agenttester/testersbyagent"
WSGW = "/wsgw/v1/agent/testersbyagent"
Q = "?agent_number={agent}"


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str  # {sid} {agent} {any_agent} {unknown} {unknown_sid} {delete}
    headers: str = "ok"  # ok | no_key | wrong_key | no_content_type | a Content-Type value
    body: str | None = None
    needs_agent: bool = False
    destructive: bool = False
    host: str | None = None  # an NA host: asked directly, or as the Host header of a stand-in


PROBES: tuple[Probe, ...] = (
    # read-only: the documented request first, every other answer is compared with it
    Probe("baseline", "GET", TESTERS + Q, needs_agent=True),
    Probe("no_key", "GET", TESTERS + "?agent_number={any_agent}", headers="no_key"),
    Probe("wrong_key", "GET", TESTERS + "?agent_number={any_agent}", headers="wrong_key"),
    Probe("get_agenttester", "GET", AGENTTESTER + Q, needs_agent=True),
    Probe("get_wsgw", "GET", WSGW + Q, needs_agent=True),
    Probe("post_sample", "POST", TESTERS + Q, needs_agent=True),
    Probe("post_agenttester", "POST", AGENTTESTER + Q, needs_agent=True),
    Probe("post_wsgw", "POST", WSGW + Q, needs_agent=True),
    Probe("post_body", "POST", TESTERS, body='{{"agent_number": "{agent_json}"}}', needs_agent=True),
    Probe("no_content_type", "GET", TESTERS + Q, headers="no_content_type", needs_agent=True),
    Probe("text_plain", "GET", TESTERS + Q, headers="text/plain", needs_agent=True),
    Probe("json_upper", "GET", TESTERS + Q, headers="application/JSON", needs_agent=True),
    Probe("unknown_agent", "GET", TESTERS + "?agent_number={unknown}"),
    Probe("missing_agent", "GET", TESTERS),
    Probe("repeated_agent", "GET", TESTERS + "?agent_number={any_agent}&agent_number={any_agent}"),
    Probe("invalid_json", "POST", TESTERS, body="{{not json"),
    Probe("not_found_path", "GET", "/v1/{sid}/rcs/drift-probe-no-such-operation"),
    Probe("get_delete_path", "GET", "/v1/{sid}/rcs/agent/{unknown}"),
    Probe("unknown_sid", "GET", "/v1/{unknown_sid}/rcs/agent/testersbyagent" + Q, needs_agent=True),
    Probe("na_host_io", "GET", TESTERS + Q, needs_agent=True, host=NA_HOSTS[0]),
    Probe("na_host_ai", "GET", TESTERS + Q, needs_agent=True, host=NA_HOSTS[1]),
    # destructive, last, in this order
    Probe("delete_first", "DELETE", "/v1/{sid}/rcs/agent/{delete}", destructive=True),
    Probe("delete_again", "DELETE", "/v1/{sid}/rcs/agent/{delete}", destructive=True),
    Probe("testers_after_delete", "GET", TESTERS + "?agent_number={delete}", destructive=True),
    Probe("delete_no_number_slash", "DELETE", "/v1/{sid}/rcs/agent/", destructive=True),
    Probe("delete_no_number", "DELETE", "/v1/{sid}/rcs/agent", destructive=True),
)


class DriftRun:
    """One session's probes and answers. Never holds the key anywhere but in `settings`."""

    def __init__(self, settings: LiveSettings) -> None:
        self.settings = settings
        self.budget = Budget(settings.budget)
        self.limiter = RateLimiter(settings.rate)
        self.answers: dict[str, Answer] = {}
        # Every HTTP answer as a cassette keeps it (key as its fingerprint, masked), in order:
        # exchange N is line N of LIVE_CASSETTE, the `source` of its answer.
        self.exchanges: list[Exchange] = []
        self.started = time.time()
        self.seconds = 0.0

    @property
    def evidence(self) -> Evidence:
        return Evidence(self.answers, self.settings.agent, self.settings.delete_agent)

    def send_all(self, transport: httpx.BaseTransport | None = None) -> None:
        started = time.monotonic()
        s = self.settings
        timeout = httpx.Timeout(s.timeout, connect=min(5.0, s.timeout))
        with httpx.Client(
            timeout=timeout, follow_redirects=False, transport=transport, headers={"User-Agent": USER_AGENT}
        ) as client:
            for probe in PROBES:
                self.answers[probe.name] = self._send(client, probe)
        self.seconds = time.monotonic() - started

    # -- one probe ---------------------------------------------------------------------

    def _values(self) -> dict[str, str]:
        s = self.settings
        any_agent = s.agent or UNKNOWN_AGENT
        return {
            "sid": quote(s.sid, safe=""),
            "agent": quote(s.agent or "", safe=""),
            "agent_json": json.dumps(s.agent or "")[1:-1],
            "any_agent": quote(any_agent, safe=""),
            "unknown": UNKNOWN_AGENT,
            "unknown_sid": UNKNOWN_SID,
            "delete": quote(s.delete_agent or "", safe=""),
        }

    def _why_not(self, probe: Probe) -> str | None:
        s = self.settings
        if probe.needs_agent and not s.agent:
            return "KALEYRA_AGENT_NUMBER is not set (an agent of the account, with testers if possible)"
        if probe.destructive and not s.destructive:
            return s.destructive_reason
        if probe.host is not None:
            if s.base_url_given and not s.host_header_probes:
                return (
                    "KALEYRA_BASE_URL is set: the NA hosts are asked only without it "
                    "(a loopback stand-in: KALEYRA_HOST_HEADER_PROBES=1)"
                )
            if not s.base_url_given and s.pod != "na":
                return f"the pod is {s.pod}: the NA hosts are asked only with KALEYRA_POD=na and an NA account"
        return None

    def _request_line(self, probe: Probe) -> str:
        s = self.settings
        values = self._values() | {"sid": "{sid}"}
        if not s.agent:
            values |= {"agent": "{KALEYRA_AGENT_NUMBER}", "agent_json": "{KALEYRA_AGENT_NUMBER}"}
        if not s.delete_agent:
            values["delete"] = "{KALEYRA_DELETE_AGENT_NUMBER}"
        line = f"{probe.method} {probe.path.format(**values)}"
        if probe.host is not None:
            line += f" (Host: {probe.host})" if s.base_url_given else f" on https://{probe.host}"
        if probe.headers != "ok":
            line += f" [{probe.headers.replace('_', ' ')}]"
        if probe.body is not None:
            line += f" body {probe.body.format(**values)}"
        return line

    def _headers(self, probe: Probe) -> dict[str, str]:
        key, json_type = self.settings.api_key, "application/json"
        headers = {
            "ok": {"api-key": key, "Content-Type": json_type},
            "no_key": {"Content-Type": json_type},
            "wrong_key": {"api-key": WRONG_KEY if key != WRONG_KEY else WRONG_KEY + "x", "Content-Type": json_type},
            "no_content_type": {"api-key": key},
        }.get(probe.headers) or {"api-key": key, "Content-Type": probe.headers}
        if probe.host is not None and self.settings.base_url_given:
            headers["Host"] = probe.host
        return headers

    def _send(self, client: httpx.Client, probe: Probe) -> Answer:
        line = self._request_line(probe)
        why_not = self._why_not(probe)
        if why_not is not None:
            return Answer(probe.name, line, reason=why_not)
        if not self.budget.take():
            return Answer(probe.name, line, reason=f"the request budget ({self.budget.limit}) was spent")
        values = self._values()
        root = self.settings.base_url
        if probe.host is not None and not self.settings.base_url_given:
            root = f"https://{probe.host}"
        body = probe.body.format(**values).encode() if probe.body is not None else None
        self.limiter.wait()
        started = time.monotonic()
        try:
            response = client.request(
                probe.method, root + probe.path.format(**values), headers=self._headers(probe), content=body
            )
        except httpx.HTTPError as exc:
            error = redact(f"{type(exc).__name__}: {exc}", self.settings.api_key)
            return Answer(probe.name, line, sent=True, error=error)
        elapsed = (time.monotonic() - started) * 1000
        self.exchanges.append(self._exchange(probe, root, values, response, elapsed))
        return self._answer(probe.name, line, response, elapsed, f"{LIVE_CASSETTE}:{len(self.exchanges)}")

    def _exchange(
        self, probe: Probe, root: str, values: Mapping[str, str], response: httpx.Response, elapsed_ms: float
    ) -> Exchange:
        """The probe as a cassette records it: the path below the base URL, the key's fingerprint
        only, the body decoded (httpx undid any Content-Encoding) and redacted, personal data masked."""
        key = self.settings.api_key
        path, _, query = probe.path.format(**values).partition("?")
        sent = response.request.headers
        body = response.content
        try:
            body = redact(body.decode("utf-8"), key).encode()
        except UnicodeDecodeError:
            body = body.replace(key.encode(), b"***") if key else body
        headers = [(k, redact(v, key)) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        exchange = Exchange(
            request=RecordedRequest(
                method=probe.method,
                pod="na" if probe.host is not None else self.settings.pod,
                path=path,
                query=query,
                headers={h: sent[h] for h in REQUEST_HEADERS if h in sent},
                api_key=key_fingerprint(sent.get("api-key")),
                body=probe.body.format(**values).encode() if probe.body is not None else b"",
            ),
            response=RecordedResponse(response.status_code, recorded_headers(headers), body),
            elapsed_ms=elapsed_ms,
            upstream=root,
            time=now_iso(),
            probe=probe.name,
        )
        return mask(exchange)

    def _answer(self, name: str, line: str, response: httpx.Response, elapsed_ms: float, source: str) -> Answer:
        key = self.settings.api_key
        raw = response.content
        text = raw.decode("utf-8", "replace")
        try:
            parsed, is_json = json.loads(raw), True
        except (ValueError, RecursionError):
            parsed, is_json = None, False
        text = redact(text, key)
        return Answer(
            name,
            line,
            sent=True,
            status=response.status_code,
            headers={h: redact(response.headers[h], key) for h in REPORTED_HEADERS if h in response.headers},
            text=text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + "…",
            body=_redact_json(parsed, key),
            is_json=is_json,
            elapsed_ms=round(elapsed_ms, 1),
            source=source,
        )
