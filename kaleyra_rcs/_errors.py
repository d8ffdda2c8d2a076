"""Every failure the client raises is a KaleyraError, typed by what Kaleyra documents.

A documented error answer is a KaleyraApiError: one of the typed subclasses below when its
status, code or constant is one Kaleyra documents a meaning for, else KaleyraApiError itself
(ServerError for a 5xx), so an error example newly added to openapi.yaml is raised, caught and
given its CLI exit code without a change here. The constant is read from `data.error` (where
the best evidence puts it, openapi.yaml's ErrorResponse) or from a top-level `error`, the other
reading: no Kaleyra page shows where it sits for this API. No message here ever contains the api key.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "AgentNotFound",
    "AuthenticationError",
    "ContractViolation",
    "GatewayError",
    "InternalServerError",
    "KaleyraApiError",
    "KaleyraError",
    "MissingRequiredParams",
    "NotKaleyra",
    "RateLimited",
    "RcsChannelDisabled",
    "ServerError",
    "TransportError",
    "error_from_body",
]

_BODY_EXCERPT = 300


def _excerpt(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False) if body is not None else ""
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "…"


class KaleyraError(Exception):
    """Base of every error the client raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error_code = error_code
        self.error_message = error_message
        self.body = body

    def __str__(self) -> str:
        parts = [str(self.status)] if self.status is not None else []
        parts += [p for p in (self.code, self.error_code) if p]
        prefix = " ".join(parts)
        detail = self.error_message if self.error_message and self.error_message != self.message else None
        text = f"{self.message}: {detail}" if detail else self.message
        return f"{prefix} {text}" if prefix else text


class KaleyraApiError(KaleyraError):
    """A documented error answer (status and body as the spec says); this class itself for one
    whose constant has no class of its own: `status`, `code` and `error_code` tell them apart."""


class MissingRequiredParams(KaleyraApiError):
    """400 RCS904 MISSING_REQUIRED_PARAMS (documented)."""


class AgentNotFound(KaleyraApiError):
    """400 RCS904 PROV_ERROR (documented). `detail` is the decoded JSON-in-a-string message."""

    @property
    def detail(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.error_message or "")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


class RcsChannelDisabled(KaleyraApiError):
    """400 RCS601 RCS_CHANNEL_DISABLED (documented)."""


class ServerError(KaleyraApiError):
    """Any documented 5xx answer; transient, so the GET is retried on it."""


class GatewayError(ServerError):
    """500 RCS502 (documented)."""


class InternalServerError(ServerError):
    """500 RCS500 (documented)."""


class AuthenticationError(KaleyraApiError):
    """401 (assumed: Kaleyra shows no body for it)."""


class RateLimited(KaleyraApiError):
    """429 (assumed). `retry_after` is the Retry-After header in seconds, when sent."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ContractViolation(KaleyraError):
    """The response breaks openapi.yaml: never half-parsed data, always this."""

    def __init__(self, message: str, *, pointer: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.pointer = pointer

    def __str__(self) -> str:
        where = f" at {self.pointer}" if self.pointer else ""
        status = f"status {self.status}: " if self.status is not None else ""
        return f"contract violation{where}: {status}{self.message}; body: {_excerpt(self.body)}"


class NotKaleyra(ContractViolation):
    """An answer no Kaleyra pod gives: a redirect, a 404 that is not the documented error
    envelope (an HTML page, other JSON), a web page. Most likely the wrong base URL or pod prefix,
    or not a Kaleyra server at all; the message names the URL tried. A ContractViolation still, so
    `except ContractViolation` (and the CLI's exit code 3) catch it as before."""

    def __str__(self) -> str:
        return f"{self.message}; body: {_excerpt(self.body)}"


class TransportError(KaleyraError):
    """The request did not get an HTTP answer (connect, timeout, dropped connection)."""


def _constant(body: dict[str, Any]) -> tuple[str | None, str | None]:
    for holder in (
        (body.get("data") or {}).get("error") if isinstance(body.get("data"), dict) else None,
        body.get("error"),
    ):
        if isinstance(holder, dict) and (holder.get("error_code") or holder.get("error_message")):
            code, message = holder.get("error_code"), holder.get("error_message")
            return (code if isinstance(code, str) else None), (message if isinstance(message, str) else None)
    return None, None


_FIVE_XX = range(500, 600)

# The documented meanings, first match wins: (statuses, code, constant, class); None matches any.
# The order is the precedence: status, then the RCS code, then the constant.
_RULES: tuple[tuple[range | None, str | None, str | None, type[KaleyraApiError]], ...] = (
    (range(401, 402), None, None, AuthenticationError),
    (range(429, 430), None, None, RateLimited),
    (None, "RCS502", None, GatewayError),
    (None, "RCS500", None, InternalServerError),
    (_FIVE_XX, None, "RCS_CHANNEL_INTERNAL_ERROR", InternalServerError),
    (None, None, "PROV_ERROR", AgentNotFound),
    (None, None, "MISSING_REQUIRED_PARAMS", MissingRequiredParams),
    (None, None, "RCS_CHANNEL_DISABLED", RcsChannelDisabled),
    (None, "RCS601", None, RcsChannelDisabled),
    (_FIVE_XX, None, None, ServerError),
)


def _error_class(status: int, code: str | None, error_code: str | None) -> type[KaleyraApiError]:
    """The class of a documented error answer: a documented meaning, else KaleyraApiError."""
    for statuses, rule_code, rule_constant, cls in _RULES:
        if (
            (statuses is None or status in statuses)
            and (rule_code is None or rule_code == code)
            and (rule_constant is None or rule_constant == error_code)
        ):
            return cls
    return KaleyraApiError


def error_from_body(status: int, body: dict[str, Any], retry_after: float | None = None) -> KaleyraApiError:
    """The typed error for a documented error response (already validated against the spec)."""
    raw_code, raw_message = body.get("code"), body.get("message")
    code = raw_code if isinstance(raw_code, str) else None
    message = raw_message if isinstance(raw_message, str) else f"HTTP {status}"
    error_code, error_message = _constant(body)
    cls = _error_class(status, code, error_code)
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "error_code": error_code,
        "error_message": error_message,
        "body": body,
    }
    if cls is RateLimited:
        return RateLimited(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
