"""The import rules of ARCHITECTURE.md, checked rather than hoped for."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mock_server.core
from mock_server.core import SpecIndex
from mock_server.web import create_app
from tests._spec import Spec

CORE = Path(mock_server.core.__file__).resolve().parent
PACKAGE = CORE.parent


def _python(code: str) -> str:
    """What `code` prints in a new interpreter: what importing costs is only seen from scratch."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core__imports_neither_flask_nor_werkzeug_nor_web(path: Path) -> None:
    for name in _imports(path):
        root = name.lstrip(".").split(".")[0]
        assert root not in {"flask", "werkzeug", "granian", "httpx"}, f"{path.name} imports {name}"
        assert not name.startswith("..web"), f"{path.name} imports {name}"


def test_core__importing_it_loads_no_web_framework() -> None:
    code = "import sys, mock_server.core; print(sorted(m for m in ('flask', 'werkzeug') if m in sys.modules))"
    out = _python(code)
    assert out.strip() == "[]"


def test_worker__a_valid_seed_and_an_app_load_no_jsonschema_until_a_document_is_refused() -> None:
    """What a start pays for (ARCHITECTURE.md, "Choices"): jsonschema-rs judges the seed and every
    control body; jsonschema is imported only to name what a refused one breaks."""
    code = (
        "import sys\n"
        "from mock_server.core import SpecIndex, StateData, default_seed_document, state_validator\n"
        "from mock_server.web import create_app\n"
        "from mock_server.web._server import worker_app\n"
        "spec = SpecIndex.load()\n"
        "StateData.from_document(default_seed_document(spec), state_validator(spec))\n"
        "client = create_app(spec=spec).test_client()\n"
        "ok = client.put('/__mock/accounts/in/S1', json={'rcs_enabled': True}).status_code\n"
        "before = 'jsonschema' in sys.modules\n"
        "no = client.put('/__mock/accounts/in/S1', json={'rcs_enabled': 'yes'})\n"
        "refused = no.get_json()['data']['error']['error_message']\n"
        "print(ok, before, 'jsonschema' in sys.modules, refused)\n"
    )
    out = _python(code)
    assert out.strip() == '200 False True /rcs_enabled: must satisfy type "boolean"'


def test_worker__answers_the_api_without_flask_until_a_first_control_request(tmp_path: Path) -> None:
    """What a start pays for (ARCHITECTURE.md, "Choices"): a server's worker routes every request
    with `Front`, and imports Flask, and builds the control plane, at its first control request."""
    code = (
        "import sys\n"
        "from mock_server.core import SqliteStore, SpecIndex, StateData, default_seed_document, state_validator\n"
        "from mock_server.web._http import call_app\n"
        "from mock_server.web._server import WORKER_ENV, WorkerSettings, worker_app\n"
        "import os\n"
        "spec = SpecIndex.load()\n"
        f"url = 'sqlite:///{tmp_path}/state.sqlite3'\n"
        "SqliteStore(url.removeprefix('sqlite:///'), seed=StateData.from_document(\n"
        "    default_seed_document(spec), state_validator(spec))).close()\n"
        "os.environ[WORKER_ENV] = WorkerSettings(store_url=url).to_env()\n"
        "front = worker_app().app\n"
        "def get(path, **headers):\n"
        "    environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': path, 'QUERY_STRING': 'agent_number=48900',\n"
        "               'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.1',\n"
        "               'HTTP_HOST': '127.0.0.1', 'wsgi.url_scheme': 'http',\n"
        "               'wsgi.input': __import__('io').BytesIO(), **headers}\n"
        "    return call_app(front, environ)[0]\n"
        "api = get('/in/v1/S/rcs/agent/testersbyagent', HTTP_API_KEY='k', CONTENT_TYPE='application/json')\n"
        "missing = get('/in/v2/nowhere')\n"
        "before = 'flask' in sys.modules\n"
        "health = get('/__mock/health')\n"
        "print(api, missing, before, health, 'flask' in sys.modules)\n"
    )
    out = _python(code)
    assert out.strip() == "200 404 False 200 True"


def test_core__imports_without_the_redis_extra_and_the_store_names_it() -> None:
    """The [redis] extra is optional: the core loads without the client, and only a Redis store
    asks for it, naming the extra."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import mock_server.core as core\n"
        "try:\n"
        "    core.RedisStore('redis://127.0.0.1:1/0')\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    out = _python(code)
    assert out.strip() == "the Redis store needs the redis client: pip install 'kaleyra-rcs-harness[redis]'"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_package__never_imports_tests(path: Path) -> None:
    assert not any(name.split(".")[0] == "tests" for name in _imports(path))


def test_package__private_modules_sit_behind_an_explicit_all() -> None:
    for init in (CORE / "__init__.py", PACKAGE / "web" / "__init__.py", PACKAGE / "__init__.py"):
        tree = ast.parse(init.read_text())
        assert any(
            isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets) for n in tree.body
        ), init


def test_create_app__each_app_has_its_own_store(headers: dict[str, str]) -> None:
    first, second = create_app().test_client(), create_app().test_client()
    assert first.delete("/in/v1/S/rcs/agent/48400", headers=headers).status_code == 200
    assert second.delete("/in/v1/S/rcs/agent/48400", headers=headers).status_code == 200


CLIENT = Path(__import__("kaleyra_rcs").__file__).resolve().parent


@pytest.mark.parametrize("path", sorted(CLIENT.rglob("*.py")), ids=lambda p: str(p.relative_to(CLIENT)))
def test_client__never_imports_the_mock(path: Path) -> None:
    roots = {name.lstrip(".").split(".")[0] for name in _imports(path)}
    assert "mock_server" not in roots
    assert not roots & {"flask", "werkzeug", "granian"}


def test_client__importing_it_loads_no_mock() -> None:
    code = "import sys, kaleyra_rcs; print(sorted(m for m in ('mock_server', 'flask') if m in sys.modules))"
    out = _python(code)
    assert out.strip() == "[]"


def test_fault_kinds__the_engine_and_the_control_document_agree() -> None:
    from mock_server.core import CONTROL_SPEC_PATH, FAULT_KINDS, load_yaml

    doc = load_yaml(CONTROL_SPEC_PATH)
    assert doc["components"]["schemas"]["ArmFault"]["properties"]["fault"]["enum"] == list(FAULT_KINDS)


def test_api_routes__serve_exactly_the_operations_of_the_spec(spec_index: SpecIndex, spec: Spec) -> None:
    """The routes the mock builds from its index are the operations the raw spec lists."""
    from mock_server.web import api_rules

    rules, _converters = api_rules(spec_index)
    routed = {}
    for rule, ops in rules.items():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
        for method, op_id in ops.items():
            routed[op_id] = (method, path)
    assert routed == {op.operation_id: (op.method, op.path) for op in spec.operations.values()}


@pytest.mark.parametrize("path", sorted(CLIENT.glob("*.py")), ids=lambda p: p.name)
def test_client__only_the_adapter_knows_the_generated_code(path: Path) -> None:
    """One module knows `_generated/`'s layout and its one private name (`_get_kwargs`)."""
    uses = any("_generated" in name for name in _imports(path)) or "_get_kwargs" in path.read_text()
    assert uses == (path.name == "_adapter.py"), path.name
