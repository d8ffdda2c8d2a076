"""A real `redis-server` (Debian's package) for the tests: `mock_server.testing.RedisServer`, except
that where the executable is missing the test fails naming the package, never a silent skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_server import testing
from mock_server.testing import free_port

__all__ = ["MISSING", "RedisServer", "free_port"]

MISSING = testing.REDIS_MISSING


class RedisServer(testing.RedisServer):
    def __init__(self, folder: Path, port: int | None = None) -> None:
        try:
            super().__init__(folder, port)
        except testing.RedisMissing:
            pytest.fail(MISSING, pytrace=False)
