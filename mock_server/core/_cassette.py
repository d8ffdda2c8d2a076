"""Cassettes: recorded exchanges with a real (or any) upstream, one JSON object per line.

Why JSON lines: one exchange is one `write()` of one line to a file opened with O_APPEND, so
several workers append to one cassette without a lock and a reader sees whole lines only
(a line cut short by a full disk or a kill is skipped, with its line number, never
swallowing the next); `git diff` of two cassettes shows which exchanges changed. Keys keep
one order, bodies are kept as text when they are UTF-8 (else base64), so a cassette reads
like the traffic it holds. The format is versioned (`"v": 1`) and documented in the README
("Learning from your sandbox").

What is never written: an api key (only its fingerprint, as in the journal); by default
personal data either (`mask`): a tester's `phoneno`, anything in a body that looks like a
phone number or an e-mail address, and the values of cookies.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._json import INVALID_JSON, strict_json

__all__ = [
    "CASSETTE_VERSION",
    "DEFAULT_CASSETTE_LIMIT",
    "HOP_BY_HOP",
    "Cassette",
    "MASKED_EMAIL",
    "REQUEST_HEADERS",
    "CassetteError",
    "Exchange",
    "RecordedRequest",
    "RecordedResponse",
    "Violation",
    "decoded_body",
    "exchanges_of",
    "mask",
    "mask_text",
    "now_iso",
    "read_cassette",
    "recorded_headers",
]

CASSETTE_VERSION = 1
DEFAULT_CASSETTE_LIMIT = 64 * 1024 * 1024  # bytes of one cassette file; recording stops there
# RFC 9110 section 7.6.1: headers of one connection, never of the message; Content-Length is
# the framing of the answer that carries the body, recomputed by whoever sends it again.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
# The request headers that change what an answer may be; every other one is left out.
REQUEST_HEADERS = ("content-type", "accept", "accept-encoding", "content-encoding", "prefer", "host")


class CassetteError(ValueError):
    """A cassette that cannot be read as one: the path and the first reason."""


@dataclass(frozen=True)
class Violation:
    """One way an answer breaks openapi.yaml, and whether what it breaks is documented or
    `x-assumed` there. `kind` is a token (`status`, `schema`, `content-type`, `json`,
    `operation`); `at` says where (a status, a JSON pointer, a media type)."""

    kind: str
    at: str
    mark: str  # "documented" | "x-assumed" | "mock-own"
    detail: str = ""

    def token(self) -> str:
        """One item of the `X-Mock-Violations` header (an RFC 8941 list member)."""
        return f'{self.kind};at="{_sf_string(self.at)}";mark={self.mark}'

    def to_document(self) -> dict[str, str]:
        return {"kind": self.kind, "at": self.at, "mark": self.mark, "detail": self.detail}


def _sf_string(text: str) -> str:
    """An RFC 8941 sf-string body: printable ASCII, `"` and `\\` escaped, anything else dropped."""
    kept = "".join(ch for ch in text if " " <= ch <= "~")
    return kept.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    pod: str
    path: str  # as the upstream was asked: no /in or /na prefix of the mock's
    query: str = ""  # the raw query string, as sent
    headers: Mapping[str, str] = field(default_factory=dict)  # REQUEST_HEADERS only, lower-case names
    api_key: str | None = None  # its fingerprint, never the key
    body: bytes = b""


@dataclass(frozen=True)
class RecordedResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()  # in the order received, hop-by-hop left out
    body: bytes = b""  # as it came off the wire: still Content-Encoded, never chunked

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass(frozen=True)
class Exchange:
    """One request forwarded upstream and what came back, with the verdicts on it."""

    request: RecordedRequest
    response: RecordedResponse
    elapsed_ms: float = 0.0
    upstream: str = ""  # the upstream's base URL
    time: str = ""
    operation: str | None = None  # the operationId the request matched in openapi.yaml
    example: str | None = None  # the named example the answer matches, if any
    # Where an error answer carried its constant: "error" (error.error_code) or "data" (data.error.error_code).
    layout: str | None = None
    violations: tuple[Violation, ...] = ()
    masked: bool = True
    # Where it was read from ("FILE:LINE"): reports name the exchange that decided an item.
    source: str = ""
    # Set by `make live`: the probe that sent it, so a reader knows what was asked for.
    probe: str | None = None

    def to_line(self) -> bytes:
        req, resp = self.request, self.response
        doc: dict[str, Any] = {
            "v": CASSETTE_VERSION,
            "time": self.time,
            "pod": req.pod,
            "upstream": self.upstream,
            "request": {
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "headers": dict(req.headers),
                "api_key": req.api_key,
                **_body_fields(req.body),
            },
            "response": {
                "status": resp.status,
                "headers": [list(h) for h in resp.headers],
                **_body_fields(resp.body),
            },
            "elapsed_ms": round(self.elapsed_ms, 1),
            "operation": self.operation,
            "example": self.example,
            "layout": self.layout,
            "violations": [v.to_document() for v in self.violations],
            "masked": self.masked,
        }
        if self.probe is not None:
            doc["probe"] = self.probe
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_document(cls, doc: Any, source: str = "") -> Exchange:
        """One line's object; KeyError, TypeError or ValueError when it is not an exchange."""
        if not isinstance(doc, dict) or doc.get("v") != CASSETTE_VERSION:
            raise ValueError(f"not a version {CASSETTE_VERSION} exchange")
        req, resp = doc["request"], doc["response"]
        status = resp["status"]
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("response.status is not an HTTP status")
        return cls(
            request=RecordedRequest(
                method=str(req["method"]),
                pod=str(doc["pod"]),
                path=str(req["path"]),
                query=str(req.get("query") or ""),
                headers={str(k).lower(): str(v) for k, v in (req.get("headers") or {}).items()},
                api_key=req.get("api_key"),
                body=_body_of(req),
            ),
            response=RecordedResponse(
                status=status,
                headers=tuple((str(k), str(v)) for k, v in resp.get("headers") or ()),
                body=_body_of(resp),
            ),
            elapsed_ms=float(doc.get("elapsed_ms") or 0),
            upstream=str(doc.get("upstream") or ""),
            time=str(doc.get("time") or ""),
            operation=doc.get("operation"),
            example=doc.get("example"),
            layout=doc.get("layout"),
            violations=tuple(
                Violation(str(v["kind"]), str(v["at"]), str(v["mark"]), str(v.get("detail") or ""))
                for v in doc.get("violations") or ()
            ),
            masked=bool(doc.get("masked", True)),
            source=source,
            probe=doc.get("probe"),
        )


def _body_fields(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode("ascii")}


def _body_of(part: Mapping[str, Any]) -> bytes:
    if "body_base64" in part:
        return base64.b64decode(part["body_base64"], validate=True)
    return str(part.get("body") or "").encode("utf-8")


def read_cassette(path: Path) -> tuple[list[Exchange], list[str]]:
    """The exchanges of a cassette in recorded order, and one line per line skipped (a line
    cut short, or not an exchange). A file that holds no exchange at all is a CassetteError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CassetteError(f"{path}: cannot read: {exc.strerror or exc}") from None
    exchanges: list[Exchange] = []
    skipped: list[str] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        doc = strict_json(line)
        try:
            if doc is INVALID_JSON:
                raise ValueError("not strict JSON (cut short?)")
            exchanges.append(Exchange.from_document(doc, f"{path.name}:{number}"))
        except (KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{path.name}:{number}: {exc}")
    if not exchanges:
        raise CassetteError(f"{path}: no exchange in it" + (f" ({skipped[0]})" if skipped else ""))
    return exchanges, skipped


class Cassette:
    """An append-only cassette file shared by every worker (O_APPEND, one write per exchange).

    Bounded: once the file holds `limit` bytes, exchanges are no longer written (`full`), and
    what was recorded stays whole. The check and the write are two calls, so several workers
    may together pass the limit by at most one exchange each.
    """

    def __init__(self, path: Path, limit: int = DEFAULT_CASSETTE_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.full = False
        self.written = 0
        self._lock = threading.Lock()
        self._fd: int | None = None

    def append(self, exchange: Exchange) -> bool:
        """True when written; False when the cassette is full."""
        line = exchange.to_line()
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if os.fstat(self._fd).st_size + len(line) > self.limit:
                self.full = True
                return False
            os.write(self._fd, line)
            self.written += 1
            return True

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def now_iso() -> str:
    """An exchange's time, to the millisecond, UTC."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


# -- what a body says, whatever its Content-Encoding --------------------------------------


def decoded_body(response: RecordedResponse) -> bytes | None:
    """The body with its Content-Encoding undone (gzip, deflate, identity); None when it cannot be."""
    coding = (response.header("content-encoding") or "identity").strip().lower()
    try:
        if coding in ("", "identity"):
            return response.body
        if coding in ("gzip", "x-gzip"):
            return gzip.decompress(response.body)
        if coding == "deflate":
            try:
                return zlib.decompress(response.body)
            except zlib.error:
                return zlib.decompress(response.body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except (OSError, EOFError, zlib.error):
        return None
    return None


def _encoded(body: bytes, coding: str) -> bytes:
    coding = coding.strip().lower()
    if coding in ("gzip", "x-gzip"):
        return gzip.compress(body, mtime=0)  # mtime 0: the same body always gives the same bytes
    if coding == "deflate":
        return zlib.compress(body)
    return body


# -- personal data ------------------------------------------------------------------------

# A phone number: 8 to 15 digits (E.164 allows 15), maybe after `+`, maybe grouped by spaces
# or dashes; not inside a longer word or number (an id, a SID, a UUID).
_PHONE = re.compile(r"(?<![\w.+-])\+?\d(?:[ -]?\d){7,14}(?![\w.-])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PERSONAL_KEYS = frozenset({"phoneno", "phone", "phone_number", "msisdn", "mobile", "email"})
MASKED_EMAIL = "masked@example.invalid"


def _mask_phone(text: str) -> str:
    """Kaleyra's own way of masking its samples (91077XXXXXX79): first and last digits kept."""
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    keep = set(digits[:5] + digits[-2:]) if len(digits) > 9 else set(digits[:2] + digits[-2:])
    return "".join(ch if not ch.isdigit() or i in keep else "X" for i, ch in enumerate(text))


def mask_text(text: str) -> str:
    """Phone numbers and e-mail addresses in free text (a body that is not JSON, a query)."""
    return _PHONE.sub(lambda m: _mask_phone(m.group(0)), _EMAIL.sub(MASKED_EMAIL, text))


def _mask_value(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _mask_value(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(v, key) for v in value]
    if isinstance(value, str):
        if key is not None and key.lower() in _PERSONAL_KEYS and "@" not in value:
            return _mask_phone(value) if any(ch.isdigit() for ch in value) else value
        return mask_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and key is not None and key.lower() in _PERSONAL_KEYS:
        return _mask_phone(str(value))
    return value


def _mask_body(body: bytes) -> bytes:
    """JSON is masked value by value and written back compactly only when something changed;
    any other text, by pattern."""
    if not body:
        return body
    doc = strict_json(body)
    if doc is not INVALID_JSON:
        masked = _mask_value(doc)
        if masked == doc:
            return body
        return json.dumps(masked, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    masked_text = mask_text(text)
    return body if masked_text == text else masked_text.encode()


def _mask_cookie(value: str) -> str:
    name, _, rest = value.partition("=")
    attributes = rest.partition(";")[2]
    return f"{name}=masked" + (f";{attributes}" if attributes else "")


def mask(exchange: Exchange) -> Exchange:
    """The exchange with personal data replaced (see the module's docstring). A Content-Encoded
    body is decoded, masked and encoded again the same way, only when masking changed it."""
    response = exchange.response
    body = response.body
    coding = response.header("content-encoding") or "identity"
    plain = decoded_body(response)
    if plain is not None:
        masked_plain = _mask_body(plain)
        if masked_plain != plain:
            body = _encoded(masked_plain, coding)
    headers = tuple(
        (name, _mask_cookie(value) if name.lower() == "set-cookie" else value) for name, value in response.headers
    )
    request = exchange.request
    return replace(
        exchange,
        request=replace(request, body=_mask_body(request.body), query=mask_text(request.query)),
        response=replace(response, body=body, headers=headers),
        masked=True,
    )


def recorded_headers(headers: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """An answer's headers as a cassette keeps them: hop-by-hop ones left out."""
    return tuple((k, v) for k, v in headers if k.lower() not in HOP_BY_HOP)


def exchanges_of(paths: Sequence[Path]) -> Iterator[Exchange]:
    """Every exchange of several cassettes, file by file, each in recorded order."""
    for path in paths:
        yield from read_cassette(path)[0]
