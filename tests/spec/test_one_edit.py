"""A documented scenario is one edit of openapi.yaml: on a copy of the project with one made-up
example added to the spec and nothing else, the mock serves it by every trigger, the README
lists it, and the test suites pick it up without being told."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mock_server.core import SpecIndex
from mock_server.web import create_app
from tests._spec import ROOT, Spec
from tools.readme import rendered

NAME, CODE, CONSTANT, MAGIC = "agent_suspended", "RCS906", "AGENT_SUSPENDED", "99406"
EXAMPLE = {
    "summary": "Agent Suspended (400). Made up by tests/spec/test_one_edit.py.",
    "x-assumed": "Made up: no document shows it.",
    "x-mock-magic-agent": MAGIC,
    "x-mock-when": "made up for the one-edit test",
    "value": {
        "code": CODE,
        "message": "Failed to delete Agent",
        "data": {"error": {"error_code": CONSTANT, "error_message": '{"status":"FAILED","message":"Agent suspended"}'}},
    },
}
_LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "node_modules", "reports", ".hypothesis", "*_cache", "__pycache__")


def add_example(spec_file: Path) -> None:
    """The one edit: a component example, listed under deleteAgent's 400."""
    spec = Spec.load(spec_file)
    spec.document["components"]["examples"][NAME] = EXAMPLE
    delete = spec.operation("deleteAgent").raw
    delete["responses"]["400"]["content"]["application/json"]["examples"][NAME] = {
        "$ref": f"#/components/examples/{NAME}"
    }
    dumped = yaml.safe_dump(spec.document, sort_keys=False, allow_unicode=True, width=120)
    spec_file.write_text(dumped, encoding="utf-8")


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project") / "project"
    shutil.copytree(ROOT, root, symlinks=True, ignore=_LEFT_OUT)
    add_example(root / "openapi.yaml")
    walked = Spec.load(root / "openapi.yaml").examples("deleteAgent")[NAME]
    assert (walked.status, walked.value, walked.magic_agent) == (400, EXAMPLE["value"], MAGIC), "the edit did not land"
    return root


def test_one_edit__the_mock_serves_the_new_example_by_every_trigger(copy: Path, headers: dict[str, str]) -> None:
    spec = SpecIndex.load(copy / "openapi.yaml")
    client = create_app(spec=spec).test_client()

    by_prefer = client.delete("/v1/S1/rcs/agent/48400", headers={**headers, "Prefer": f"example={NAME}"})
    by_magic = client.delete(f"/v1/S1/rcs/agent/{MAGIC}", headers=headers)
    armed = client.post("/__mock/scenarios", json={"scenario": NAME, "times": 1})
    assert armed.status_code == 201, armed.get_data(as_text=True)
    by_scenario = client.delete("/v1/S1/rcs/agent/48400", headers=headers)

    for response, source in ((by_prefer, "prefer"), (by_magic, "magic"), (by_scenario, "armed")):
        assert response.status_code == 400
        assert response.get_json() == EXAMPLE["value"]
        assert (response.headers["X-Mock-Source"], response.headers["X-Mock-Example"]) == (source, NAME)
    assert client.delete("/v1/S1/rcs/agent/48400", headers=headers).headers["X-Mock-Example"] == "agent_deleted"


def test_one_edit__the_readme_table_lists_it(copy: Path) -> None:
    readme = rendered((copy / "README.md").read_text(encoding="utf-8"), SpecIndex.load(copy / "openapi.yaml"))
    assert f"| `{NAME}` | 400 | {CODE} | A | made up for the one-edit test | `{MAGIC}` |" in readme


def test_one_edit__the_suites_cover_it_without_being_told(copy: Path) -> None:
    """`make docs` then the mock's and the spec's tests, run inside the copy: they pass, and
    the new example is among the cases they ran."""
    env = {"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin", "HOME": str(copy)}
    docs = subprocess.run(
        [sys.executable, "tools/readme.py"], cwd=copy, env=env, capture_output=True, text=True, check=False
    )
    assert docs.returncode == 0, docs.stderr
    suites = ["tests/mock/test_api.py", "tests/spec/test_readme.py", "tests/mock/test_spec_vs_mock.py"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *suites],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    covered = [line for line in run.stdout.splitlines() if line.startswith("PASSED") and NAME in line]
    assert len(covered) >= 3, run.stdout[-4000:]


def test_one_edit__a_magic_agent_given_to_two_examples_fails_the_load() -> None:
    doc: Any = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    examples = doc["components"]["examples"]
    taken = next(ex["x-mock-magic-agent"] for ex in examples.values() if "x-mock-magic-agent" in ex)
    examples["gateway_error"]["x-mock-magic-agent"] = taken
    with pytest.raises(ValueError, match=f"x-mock-magic-agent {taken} names two examples"):
        SpecIndex(doc)
