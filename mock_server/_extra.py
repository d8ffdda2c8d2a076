"""The `[mock]` extra: a client-only install has `mock_server` but not what the server imports, so
the command line and the fixtures turn a missing module into one line that names the extra."""

from __future__ import annotations

import importlib.util

__all__ = ["INSTALL", "IN_PROCESS", "SERVER", "missing_extra", "require_extra"]

INSTALL = "pip install 'kaleyra-rcs-harness[mock]'"
# What the mock imports from the extra: in-process (the app, its journal writer), and to serve.
IN_PROCESS = ("flask", "werkzeug", "orjson")
SERVER = (*IN_PROCESS, "granian")
_OWN = ("mock_server", "kaleyra_rcs")


def missing_extra(who: str, exc: ModuleNotFoundError) -> str | None:
    """The line for `who` (a fixture, a command), or None when the missing module is this project's
    own: that is a bug, to be seen as it is, not a missing extra."""
    root = (exc.name or "").partition(".")[0]
    if not root or root in _OWN:
        return None
    return f"{who} needs the mock server (no module named {root!r}): {INSTALL}"


def require_extra(*modules: str, imported: bool = True) -> None:
    """A missing one of `modules` fails here, before any work, not halfway through it.

    `imported=False` (the server) only looks each one up: its workers import Flask at their first
    control request (`web/_front.py`), so a Flask that is there but cannot be imported (one of its
    own dependencies gone) is found then, answered 500 `MOCK500` with the error in the log."""
    for name in modules:
        if imported:
            importlib.import_module(name)
        elif importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
