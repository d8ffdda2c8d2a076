"""Shared fixtures of the proxy's tests: a test CA, and a folder per module for servers' files."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tests.proxy._gateway import make_ca


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A CA file to pass with --upstream-ca, and the server context of a certificate it signed."""
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy")
