"""The cold-start floor: granian started the way the mock starts it (`mock_server/web/_server.py`:
two workers, RSGI, uvloop, one thread), serving a callable that imports nothing and answers every
request with 200 at once. Process start to its first 200 is what any Python app served this way
pays before its own code; `mock - floor` is what the mock's imports and set-up add.

Run as `python -m benchmarks.floor PORT`."""

from __future__ import annotations

import sys
from typing import Any


async def app(scope: Any, proto: Any) -> None:
    proto.response_bytes(200, [("content-type", "application/json")], b"[]")


def main(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops, RuntimeModes

    options: dict[str, Any] = {
        "address": "127.0.0.1",
        "port": port,
        "interface": Interfaces.RSGI,
        "loop": Loops.uvloop,
        "runtime_mode": RuntimeModes.st,
        "workers": 2,
        "log_level": "error",
        "log_access": False,
        "websockets": False,
    }
    Granian("benchmarks.floor:app", **options).serve()


if __name__ == "__main__":
    main(int(sys.argv[1]))
