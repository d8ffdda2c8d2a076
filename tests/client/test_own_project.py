"""The package used from someone else's project: the README's example file, under anyio and under
pytest-asyncio, the one line a client-only install gets from a mock fixture or `kaleyra-mock`, and
a fresh venv outside the repository that installs the package and runs the example."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._spec import ROOT

EXAMPLE = ROOT / "examples" / "test_my_project.py"
INSTALL = "pip install 'kaleyra-rcs-harness[mock]'"
MOCK_MODULES = ("flask", "werkzeug", "granian", "orjson")
# pytest-asyncio warns (an error under -W error) until its fixture loop scope is set.
ASYNCIO_MARK = "@pytest.mark.asyncio"
ASYNCIO_INI = ("-o", "asyncio_default_fixture_loop_scope=function")

# Installed as sitecustomize.py ahead on PYTHONPATH: the interpreter starts as if the [mock] extra
# were not installed, as a finder that refuses its modules (what a missing distribution looks like).
NO_EXTRA = f"""
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {MOCK_MODULES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""


def _asyncio_variant(text: str) -> str:
    """The example as a pytest-asyncio user writes it: the README names the one line that changes."""
    marked = text.replace(f"@pytest.mark.anyio  # with pytest-asyncio instead: {ASYNCIO_MARK}", ASYNCIO_MARK)
    assert marked != text and "anyio" not in marked
    return marked


def _pytest(python: str | Path, project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def _env_with(*paths: Path) -> dict[str, str]:
    """This worktree (and `paths` ahead of it) on the path; wide enough that no summary line is cut."""
    return {**os.environ, "COLUMNS": "400", "PYTHONPATH": os.pathsep.join(str(p) for p in (*paths, ROOT))}


# -- the README's example ------------------------------------------------------------------------------


def test_readme__own_project_example_is_the_example_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Use it in your own project\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert blocks == [EXAMPLE.read_text(encoding="utf-8")]


@pytest.mark.server
def test_plugin__example__passes_under_anyio(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path)
    out = _pytest(sys.executable, tmp_path, "-p", "no:asyncio", env=_env_with())
    assert out.startswith("exit 0\n") and "4 passed" in out, out


@pytest.mark.server
def test_plugin__example__passes_under_pytest_asyncio(tmp_path: Path) -> None:
    (tmp_path / EXAMPLE.name).write_text(_asyncio_variant(EXAMPLE.read_text(encoding="utf-8")))
    out = _pytest(sys.executable, tmp_path, "-p", "no:anyio", *ASYNCIO_INI, env=_env_with())
    assert out.startswith("exit 0\n") and "4 passed" in out, out


def test_plugin__async_client__works_under_a_session_wide_pytest_asyncio_loop(tmp_path: Path) -> None:
    """The fixture's teardown leaves the thread's loop alone: a later test on the same loop still runs."""
    (tmp_path / "test_loop.py").write_text(
        "import asyncio\nimport pytest\n\n"
        "@pytest.mark.asyncio(loop_scope='session')\n"
        "async def test_first(kaleyra_async_client):\n"
        "    assert (await kaleyra_async_client.get_testers_by_agent('48900'))[0].status == 'ACTIVE'\n\n"
        "@pytest.mark.asyncio(loop_scope='session')\n"
        "async def test_second(kaleyra_async_client):\n"
        "    assert (await kaleyra_async_client.get_testers_by_agent('48900'))[0].status == 'ACTIVE'\n\n"
        "def test_the_loop_is_still_current():\n"
        "    asyncio.get_event_loop_policy().get_event_loop()\n"
    )
    out = _pytest(sys.executable, tmp_path, "-p", "no:anyio", *ASYNCIO_INI, env=_env_with())
    assert out.startswith("exit 0\n") and "3 passed" in out, out


# -- without the [mock] extra --------------------------------------------------------------------------


def _without_extra(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_EXTRA)
    return _env_with(site)


def test_plugin__without_the_mock_extra__each_fixture_fails_with_one_line(tmp_path: Path) -> None:
    env = _without_extra(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_fixtures.py").write_text(
        "import sys\nimport pytest\nfrom kaleyra_rcs import KaleyraRCS\n\n"
        "def test_uses_mock(kaleyra_mock): pass\n"
        "def test_uses_client(kaleyra_client): pass\n"
        "@pytest.mark.anyio\nasync def test_uses_async_client(kaleyra_async_client): pass\n"
        "def test_uses_mock_server(kaleyra_mock_server): pass\n"
        "def test_the_client_alone_still_works():\n"
        "    with KaleyraRCS(api_key='k', sid='S', pod='na'):\n"
        "        assert 'flask' not in sys.modules\n"
    )
    # schemathesis' plugin imports werkzeug itself; a project without the extra has no schemathesis.
    out = _pytest(sys.executable, project, "-p", "no:schemathesis", "-p", "no:asyncio", "-rE", env=env)
    assert out.startswith("exit 1\n") and "1 passed, 4 errors" in out, out
    for fixture in ("kaleyra_mock", "kaleyra_client", "kaleyra_async_client", "kaleyra_mock_server"):
        line = f"{fixture} needs the mock server (no module named 'flask'): {INSTALL}"
        test = f"test_uses_{fixture.removeprefix('kaleyra_')}{'[asyncio]' if 'async' in fixture else ''}"
        assert f"ERROR test_fixtures.py::{test} - Failed: {line}" in out, out
    assert out.count(INSTALL) == 2 * 4, out  # in its error and in the summary, nothing else
    assert "Traceback" not in out and "No module named" not in out, out


@pytest.mark.parametrize(
    "command",
    [pytest.param([sys.executable, "-m", "mock_server"], id="python -m"), pytest.param(["kaleyra-mock"], id="script")],
)
def test_cli__without_the_mock_extra__exits_2_with_one_line(tmp_path: Path, command: list[str]) -> None:
    if command == ["kaleyra-mock"]:
        command = [str(Path(sys.executable).parent / "kaleyra-mock")]
    done = subprocess.run(
        [*command, "--port", "0"], env=_without_extra(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"kaleyra-mock needs the mock server (no module named 'flask'): {INSTALL}\n"


def test_cli__the_extra_is_looked_up_not_imported__a_missing_module_is_named() -> None:
    """The server checks the [mock] extra before any work without importing Flask (its workers
    import it at their first control request): a module not installed is named as an import would."""
    from mock_server._extra import require_extra

    with pytest.raises(ModuleNotFoundError) as missing:
        require_extra("json", "kaleyra_no_such_module", imported=False)
    assert missing.value.name == "kaleyra_no_such_module"


# -- a fresh venv, outside the repository ----------------------------------------------------------------


def _source_tree(into: Path) -> Path:
    """What the wheel is built from, copied (symlinks followed): building in the worktree would
    leave build/ and *.egg-info behind, and race another run doing the same."""
    src = into / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "openapi.yaml"):
        shutil.copy(ROOT / name, src / name)
    for package in ("mock_server", "kaleyra_rcs"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    return src


@pytest.mark.server
def test_fresh_venv__installs_with_its_extras_and_runs_the_readme_example(tmp_path: Path) -> None:
    """The done-criterion of the own-project issue. The venv has no pip of its own (ensurepip costs
    seconds); this run's pip installs into it with `--python`, pinned by constraints.txt, from its cache."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    src = _source_tree(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # this worktree must not leak in
    started = time.monotonic()
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "-c", str(ROOT / "constraints.txt")]
    done = subprocess.run(
        [*pip, f"{src}[mock]", "pytest", "pytest-asyncio"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.monotonic() - started
    print(f"fresh venv: pip install of the package with [mock], pytest and pytest-asyncio took {seconds:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    where = subprocess.run(
        [str(python), "-c", "import mock_server; print(mock_server.__file__)"],
        cwd=tmp_path,  # not the worktree, which `-c` would put first on the path
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert where.stdout.startswith(str(venv)), where.stdout  # the installed copy, not this worktree

    project = tmp_path / "my_project"
    project.mkdir()
    shutil.copy(EXAMPLE, project)
    out = _pytest(python, project, "-p", "no:asyncio", env=env)
    assert out.startswith("exit 0\n") and "4 passed" in out, out
    (project / EXAMPLE.name).write_text(_asyncio_variant(EXAMPLE.read_text(encoding="utf-8")))
    out = _pytest(python, project, "-p", "no:anyio", *ASYNCIO_INI, env=env)
    assert out.startswith("exit 0\n") and "4 passed" in out, out
