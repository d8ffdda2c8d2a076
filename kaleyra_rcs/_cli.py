"""`kaleyra-rcs`: the two calls from a shell, JSON out, one exit code per error class.

Credentials come from the environment only (KALEYRA_API_KEY, KALEYRA_SID), never from
arguments, so they stay out of shell history and process lists.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ._client import KaleyraRCS
from ._errors import (
    AgentNotFound,
    AuthenticationError,
    ContractViolation,
    KaleyraError,
    MissingRequiredParams,
    RateLimited,
    RcsChannelDisabled,
    ServerError,
    TransportError,
)

__all__ = ["EXIT_CODES", "main", "run"]

# By class, most specific first: the first class an error is an instance of gives the exit code.
# Classes, not constants: an error example new to openapi.yaml raises KaleyraApiError (1), or
# ServerError (9) for a 5xx, and so has its code with no change here.
_EXITS: tuple[tuple[type[KaleyraError], int, str], ...] = (
    (ContractViolation, 3, "contract violation"),
    (AuthenticationError, 4, "authentication"),
    (AgentNotFound, 5, "agent not found"),
    (MissingRequiredParams, 6, "missing parameter"),
    (RcsChannelDisabled, 7, "RCS disabled"),
    (RateLimited, 8, "rate limited"),
    (ServerError, 9, "server error"),
    (TransportError, 10, "transport"),
    (KaleyraError, 1, "other API error"),
)
EXIT_CODES: tuple[tuple[type[KaleyraError], int], ...] = tuple((cls, code) for cls, code, _ in _EXITS)
EXIT_OK, EXIT_USAGE = 0, 2
_EXIT_HELP = ", ".join(
    f"{code} {meaning}"
    for code, meaning in sorted({(EXIT_OK, "ok"), (EXIT_USAGE, "usage")} | {(c, m) for _, c, m in _EXITS})
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds above 0")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kaleyra-rcs",
        description="Call Kaleyra's RCS agent API. Credentials: KALEYRA_API_KEY and KALEYRA_SID in the environment.",
        epilog=f"Exit codes: {_EXIT_HELP}.",
    )
    p.add_argument("--pod", choices=["in", "na"], help="default: KALEYRA_POD, else in")
    p.add_argument(
        "--base-url", help="default: KALEYRA_BASE_URL, else the pod's host (e.g. the mock: http://127.0.0.1:8080/in)"
    )
    p.add_argument("--timeout", type=_seconds, default=10.0, help="seconds (default 10)")
    sub = p.add_subparsers(dest="command", required=True)
    testers = sub.add_parser("testers", help="get the testers of an agent")
    testers.add_argument("--agent", required=True, help="agent number")
    testers.add_argument("--retries", type=int, default=0, help="retries on 5xx, 429 and connect errors (default 0)")
    delete = sub.add_parser("delete-agent", help="delete an agent (asks to confirm unless --yes)")
    delete.add_argument("agent", help="agent number")
    delete.add_argument("--yes", action="store_true", help="do not ask to confirm")
    return p


def _error_json(error: KaleyraError) -> dict[str, Any]:
    return {
        "error": type(error).__name__,
        "status": error.status,
        "code": error.code,
        "error_code": error.error_code,
        "message": str(error),
    }


def main(
    argv: Sequence[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    client_factory: Callable[..., KaleyraRCS] | None = None,
) -> int:
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {"timeout": args.timeout}
    if args.pod:
        overrides["pod"] = args.pod
    if args.base_url:
        overrides["base_url"] = args.base_url
    if args.command == "testers":
        overrides["retries"] = max(0, args.retries)
    try:
        client = (client_factory or KaleyraRCS.from_env)(env, **overrides)
    except ValueError as exc:
        print(f"kaleyra-rcs: {exc}", file=stderr)
        return EXIT_USAGE

    with client:
        if args.command == "delete-agent" and not args.yes:
            if not stdin.isatty():
                print("kaleyra-rcs: refusing to delete without --yes (stdin is not a terminal)", file=stderr)
                return EXIT_USAGE
            print(
                f"Delete agent {args.agent} on {client.base_url} (SID {client.sid})? [y/N] ",
                end="",
                file=stderr,
                flush=True,
            )
            if stdin.readline().strip().lower() not in {"y", "yes"}:
                print("kaleyra-rcs: not deleted", file=stderr)
                return EXIT_USAGE
        try:
            if args.command == "testers":
                result: Any = [t.to_dict() for t in client.get_testers_by_agent(args.agent)]
            else:
                result = client.delete_agent(args.agent).to_dict()
        except KaleyraError as error:
            print(json.dumps(_error_json(error)), file=stdout)
            return next(code for cls, code in EXIT_CODES if isinstance(error, cls))
    print(json.dumps(result), file=stdout)
    return EXIT_OK


def run() -> None:
    """The console script."""
    sys.exit(main())
