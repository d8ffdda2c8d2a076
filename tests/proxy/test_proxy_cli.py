"""The proxy's flags: a wrong one is one clear line and exit 2, before anything starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mock_server._cli import DEFAULT_UPSTREAM_TIMEOUT
from mock_server.web._proxy import DEFAULT_UPSTREAM_TIMEOUT as WEB_DEFAULT


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--upstream", "eu=https://example.com"], "POD in or na"),
        (["--upstream", "in"], "POD in or na"),
        (["--upstream", "in=ftp://example.com"], "http:// or https://"),
        (["--upstream", "in=https://"], "name a host"),
        (["--upstream", "in=http://a", "--upstream", "in=http://b"], "given twice"),
        (["--upstream", "in=http://a", "--upstream-timeout", "0"], "--upstream-timeout"),
        (["--record", "c.jsonl"], "need --upstream"),
        (["--upstream", "in=http://a", "--record-limit", "0"], "--record-limit"),
        (["--upstream", "in=http://a", "--upstream-ca", "/nonexistent.pem"], "--upstream-ca"),
    ],
)
def test_cli__a_wrong_proxy_flag__is_one_line_and_exit_2(args: list[str], said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mock_server", "--port", "0", *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], done.stderr
    assert done.stdout == ""


def test_cli__the_default_upstream_timeout__is_the_web_layers() -> None:
    assert DEFAULT_UPSTREAM_TIMEOUT == WEB_DEFAULT == 30.0
