"""The dashboard's page in-process: its headers, the control plane's refusals, and the one
control operation it added (`GET /__mock/examples`). tests/server/test_dashboard_browser.py
drives the page itself in a real browser."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from mock_server.web import create_app
from tests._spec import Spec

CSP = "default-src 'self'; frame-ancestors 'none'"
FILES = {
    "/__mock/ui": "text/html",
    "/__mock/ui/app.js": "text/javascript",
    "/__mock/ui/app.css": "text/css",
    "/__mock/ui/favicon.svg": "image/svg+xml",
}


@pytest.mark.parametrize(("path", "kind"), FILES.items())
def test_dashboard__every_file_is_served_with_the_csp_header(client: FlaskClient, path: str, kind: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == kind
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_dashboard__page_loads_only_its_own_files_and_no_inline_script(client: FlaskClient) -> None:
    html = client.get("/__mock/ui").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sorted(urls) == ["/__mock/ui/app.css", "/__mock/ui/app.js", "/__mock/ui/favicon.svg"]
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None  # CSP would block it anyway
    assert " on" not in re.sub(r'"[^"]*"', '""', html).lower().replace(" one", "")  # no onclick= and kin


def test_dashboard__script_never_writes_markup(client: FlaskClient) -> None:
    script = client.get("/__mock/ui/app.js").get_data(as_text=True)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


def test_dashboard__an_unknown_file_is_the_control_planes_404(client: FlaskClient) -> None:
    for path in ("/__mock/ui/index.html", "/__mock/ui/ui", "/__mock/ui/../state", "/__mock/ui/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json is not None and response.json["code"] == "MOCK404"


def test_dashboard__is_get_only(client: FlaskClient) -> None:
    response = client.post("/__mock/ui", json={})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_dashboard__foreign_origin_gets_403(client: FlaskClient) -> None:
    for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
        response = client.get("/__mock/ui", headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert response.json is not None and response.json["code"] == "MOCK403"


def test_dashboard__foreign_host_gets_403_on_a_loopback_server() -> None:
    loopback = create_app(loopback_hosts_only=True).test_client()
    response = loopback.get("/__mock/ui", headers={"Host": "rebound.evil.example:8080"})
    assert response.status_code == 403
    assert loopback.get("/__mock/ui", headers={"Host": "127.0.0.1:8080"}).status_code == 200


def test_dashboard__its_own_same_origin_writes_are_accepted() -> None:
    """What Chromium sends with the page's fetch: its own loopback Origin, Sec-Fetch-Site: same-origin."""
    loopback = create_app(loopback_hosts_only=True).test_client()
    page = {"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}
    armed = loopback.post("/__mock/scenarios", json={"scenario": "gateway_error"}, headers=page)
    assert armed.status_code == 201
    assert loopback.post("/__mock/reset", headers=page).status_code == 200
    assert loopback.get("/__mock/scenarios", headers=page).json == []


def test_dashboard__absent_when_the_control_plane_is_disabled() -> None:
    disabled = create_app(control_plane=False).test_client()
    for path in FILES:
        response = disabled.get(path)
        assert response.status_code == 403, path
        assert response.json is not None and response.json["data"]["error"]["error_code"] == "CONTROL_PLANE_DISABLED"
        assert "Content-Security-Policy" not in response.headers


def test_examples__lists_every_name_arm_scenario_takes(client: FlaskClient, spec: Spec) -> None:
    examples = client.get("/__mock/examples").json
    assert examples is not None
    listed = {name for op in spec.operations for name in spec.examples(op)}
    assert sorted(x["name"] for x in examples) == sorted(listed)
    by_name = {x["name"]: x for x in examples}
    assert by_name["gateway_error"]["status"] == 500
    assert "getTestersByAgent" in by_name["gateway_error"]["operations"]
    for x in examples:
        armed = client.post(
            "/__mock/scenarios", json={"scenario": x["name"], "match": {"operation": x["operations"][0]}}
        )
        assert armed.status_code == 201, x["name"]
