"""What the real server writes to its log (stderr) about the requests it serves."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mock_server.testing import start_server

pytestmark = pytest.mark.server

KEY = {"api-key": "any-key"}


def test_server_log__missing_content_type__one_warning_naming_the_first_request(tmp_path: Path) -> None:
    """Per worker process: with one worker, one line for any number of such requests."""
    log = tmp_path / "server.stderr"
    with log.open("w") as err:
        server = start_server(("--workers", "1"), stderr=err)
        try:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                ok = http.get(
                    "/in/v1/S/rcs/agent/testersbyagent?agent_number=48900",
                    headers={**KEY, "Content-Type": "application/json"},
                )
                assert (ok.status_code, ok.headers.get("X-Mock-Warning")) == (200, None)
                first = http.get("/na/v1/S/rcs/agent/testersbyagent?agent_number=48900", headers=KEY)
                assert first.status_code == 200 and "Content-Type missing" in first.headers["X-Mock-Warning"]
                for _ in range(5):
                    later = http.delete("/in/v1/S/rcs/agent/48400", headers=KEY)
                    assert "Content-Type missing" in later.headers["X-Mock-Warning"]
        finally:
            assert server.stop() == 0
    lines = [line for line in log.read_text().splitlines() if "without Content-Type" in line]
    assert lines == [
        "mock_server: GET '/na/v1/S/rcs/agent/testersbyagent' came without Content-Type; Kaleyra documents "
        "application/json as mandatory (logged once per worker; every such answer carries X-Mock-Warning, "
        "--strict-content-type refuses them)"
    ]
