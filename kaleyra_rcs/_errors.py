"""Every failure the client raises is a KaleyraError, typed by what Kaleyra documents.

The error constant is read from `error` or from `data.error`: no Kaleyra page shows where it
sits, so the client survives either layout. No message here ever contains the api key.
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
    "KaleyraError",
    "MissingRequiredParams",
    "RateLimited",
    "RcsChannelDisabled",
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


class MissingRequiredParams(KaleyraError):
    """400 RCS904 MISSING_REQUIRED_PARAMS (documented)."""


class AgentNotFound(KaleyraError):
    """400 RCS904 PROV_ERROR (documented). `detail` is the decoded JSON-in-a-string message."""

    @property
    def detail(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.error_message or "")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


class RcsChannelDisabled(KaleyraError):
    """400 RCS601 RCS_CHANNEL_DISABLED (documented)."""


class GatewayError(KaleyraError):
    """500 RCS502 (documented)."""


class InternalServerError(KaleyraError):
    """500 RCS500 (documented)."""


class AuthenticationError(KaleyraError):
    """401 (assumed: Kaleyra shows no body for it)."""


class RateLimited(KaleyraError):
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


class TransportError(KaleyraError):
    """The request did not get an HTTP answer (connect, timeout, dropped connection)."""


def _constant(body: dict[str, Any]) -> tuple[str | None, str | None]:
    for holder in (
        body.get("error"),
        (body.get("data") or {}).get("error") if isinstance(body.get("data"), dict) else None,
    ):
        if isinstance(holder, dict) and (holder.get("error_code") or holder.get("error_message")):
            code, message = holder.get("error_code"), holder.get("error_message")
            return (code if isinstance(code, str) else None), (message if isinstance(message, str) else None)
    return None, None


def error_from_body(status: int, body: dict[str, Any], retry_after: float | None = None) -> KaleyraError:
    """The typed error for a documented error response (already validated against the spec)."""
    raw_code, raw_message = body.get("code"), body.get("message")
    code = raw_code if isinstance(raw_code, str) else None
    message = raw_message if isinstance(raw_message, str) else f"HTTP {status}"
    error_code, error_message = _constant(body)
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "error_code": error_code,
        "error_message": error_message,
        "body": body,
    }
    if status == 401:
        return AuthenticationError(message, **kwargs)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **kwargs)
    if code == "RCS502":
        return GatewayError(message, **kwargs)
    if code == "RCS500" or (status >= 500 and error_code == "RCS_CHANNEL_INTERNAL_ERROR"):
        return InternalServerError(message, **kwargs)
    if error_code == "PROV_ERROR":
        return AgentNotFound(message, **kwargs)
    if error_code == "MISSING_REQUIRED_PARAMS":
        return MissingRequiredParams(message, **kwargs)
    if error_code == "RCS_CHANNEL_DISABLED" or code == "RCS601":
        return RcsChannelDisabled(message, **kwargs)
    return KaleyraError(message, **kwargs)
