"""The generated client is the generator's output for today's openapi.yaml, untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kaleyra_rcs
from tests._spec import ROOT, SPEC_FILE

PACKAGE = Path(kaleyra_rcs.__file__).resolve().parent
BIN = Path(sys.executable).parent


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".ruff_cache" not in p.parts
    }


def test_generated__matches_a_fresh_generation(tmp_path: Path) -> None:
    out = tmp_path / "_generated"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [str(BIN / "openapi-python-client"), "generate", "--path", str(SPEC_FILE), "--meta", "none"]
    cmd += ["--config", str(ROOT / "opc.yaml"), "--output-path", str(out), "--overwrite", "--fail-on-warning"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(out / ".ruff_cache", ignore_errors=True)
    fresh, committed = _tree(out), _tree(PACKAGE / "_generated")
    assert sorted(fresh) == sorted(committed), "files differ: run `make generate`"
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert changed == [], f"generated code drifted from openapi.yaml: run `make generate` ({changed})"


def test_generated__packaged_spec_is_the_top_level_one() -> None:
    """A symlink, so there is no copy to forget; the wheel build follows it."""
    assert (PACKAGE / "openapi.yaml").resolve() == SPEC_FILE.resolve()
