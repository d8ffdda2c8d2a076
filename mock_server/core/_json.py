"""Strict JSON for everything a client sends: API bodies, control-plane documents, seed files.

Python's json module takes more than RFC 8259 allows and more than the later steps can
carry: NaN and Infinity, numbers that overflow to infinity, lone surrogates, UTF-16 and
UTF-32 text, a name twice in one object (the last silently wins), and any nesting depth
(a few hundred levels later break `copy.deepcopy` and the schema checks with a
RecursionError). Each of those is refused here, once, before anything else looks at it.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["INVALID_JSON", "MAX_DEPTH", "strict_json", "too_deep"]

INVALID_JSON: Any = object()

# Deep enough for every document the mock reads (a state document is about 6 levels deep),
# shallow enough that every recursive step after the parser stays far from Python's limit.
MAX_DEPTH = 32


class _Refused(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # "1e400": RFC 8259 section 6 leaves such numbers to the parser; JSON cannot write them back
        raise _Refused("a number too large for a double")
    return value


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):  # RFC 8259 section 4: with a name twice, behaviour is unpredictable
        raise _Refused("a name appears twice in one object")
    return doc


def too_deep(doc: Any, limit: int = MAX_DEPTH) -> bool:
    """More than `limit` levels of arrays and objects; walked without recursion."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def strict_json(raw: bytes | str) -> Any:
    """The parsed document, or `INVALID_JSON` for what RFC 8259 or the mock cannot take.

    Bytes must be UTF-8 (RFC 8259 section 8.1; a leading byte order mark may be ignored, and
    is). The text is encoded back once to prove it has no lone surrogate.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return INVALID_JSON
        raw = raw.removeprefix("\ufeff")
    try:
        doc = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite, object_pairs_hook=_unique_names)
        if too_deep(doc):
            return INVALID_JSON
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        return INVALID_JSON
    return doc
