"""The dashboard in a real browser: Debian's chromium, driven by Playwright, against the real
server. Playwright's own browsers are never downloaded; without chromium these tests fail and
say which package to install (`.ci/run` installs it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_server.testing import ServerProcess, start_server

pytestmark = pytest.mark.server

HEADERS = {"api-key": "k", "Content-Type": "application/json"}
WAIT_MS = 5000  # the page polls every second


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("the dashboard's browser tests need Debian's chromium: apt-get install chromium", pytrace=False)
    return path


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    server = start_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(server: ServerProcess, browser: Any) -> Iterator[Any]:
    """The dashboard of a freshly reset server; a script error on the page fails the test."""
    httpx.post(server.url + "/__mock/reset").raise_for_status()
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/__mock/ui")
    page.locator("#scenario option[value=gateway_error]").wait_for(state="attached", timeout=WAIT_MS)
    yield page
    context.close()
    assert errors == []


def _rows(page: Any, text: str) -> Any:
    return page.locator("#journal tbody tr", has_text=text)


def _testers(server: ServerProcess, sid: str, agent: str = "48900") -> httpx.Response:
    return httpx.get(
        f"{server.url}/in/v1/{sid}/rcs/agent/testersbyagent", params={"agent_number": agent}, headers=HEADERS
    )


def test_dashboard__a_request_to_the_api_shows_up_in_the_page(server: ServerProcess, page: Any) -> None:
    from playwright.sync_api import expect

    assert _testers(server, "SEENBYPAGE").status_code == 200
    row = _rows(page, "/in/v1/SEENBYPAGE/rcs/agent/testersbyagent")
    expect(row).to_have_count(1, timeout=WAIT_MS)
    expect(row).to_contain_text("getTestersByAgent")
    expect(row.locator("td.code")).to_have_text("200")
    expect(row).to_contain_text("state → testers")  # why: X-Mock-Source and X-Mock-Example
    assert "X-Mock-Source: state" in (row.locator("td").last.get_attribute("title") or "")


def test_dashboard__arming_a_scenario_changes_the_next_answer(server: ServerProcess, page: Any) -> None:
    from playwright.sync_api import expect

    page.select_option("#scenario", "gateway_error")
    page.click("#arm")
    expect(page.locator("#scenarios tbody")).to_contain_text("gateway_error", timeout=WAIT_MS)
    response = _testers(server, "ARMED")
    assert response.status_code == 500
    assert response.headers["X-Mock-Source"] == "armed"
    assert response.headers["X-Mock-Example"] == "gateway_error"
    expect(_rows(page, "/ARMED/")).to_contain_text("armed → gateway_error", timeout=WAIT_MS)
    expect(page.locator("#scenarios tbody")).to_contain_text("none armed", timeout=WAIT_MS)  # used up
    assert _testers(server, "ARMED").status_code == 200


def test_dashboard__reset_restores_a_deleted_agent(server: ServerProcess, page: Any) -> None:
    from playwright.sync_api import expect

    deleted = httpx.delete(f"{server.url}/na/v1/GONE/rcs/agent/48400", headers=HEADERS)
    assert deleted.status_code == 200
    expect(page.locator("#state")).to_contain_text("SID GONE", timeout=WAIT_MS)
    assert httpx.delete(f"{server.url}/na/v1/GONE/rcs/agent/48400", headers=HEADERS).status_code == 400
    page.click("#reset")
    expect(page.locator("#state")).not_to_contain_text("SID GONE", timeout=WAIT_MS)
    expect(page.locator("#journal tbody")).to_contain_text("no requests yet", timeout=WAIT_MS)
    testers = httpx.get(
        f"{server.url}/na/v1/GONE/rcs/agent/testersbyagent", params={"agent_number": "48400"}, headers=HEADERS
    )
    assert testers.status_code == 200


def test_dashboard__the_status_filter_hides_other_rows(server: ServerProcess, page: Any) -> None:
    from playwright.sync_api import expect

    assert _testers(server, "FILTERED").status_code == 200
    assert _testers(server, "FILTERED", agent="99404").status_code == 400
    expect(_rows(page, "/FILTERED/")).to_have_count(2, timeout=WAIT_MS)
    page.fill("#filter-status", "400")
    expect(page.locator("#journal tbody tr[data-status='200']")).to_have_count(0, timeout=WAIT_MS)
    expect(_rows(page, "/FILTERED/")).to_have_count(1)
    expect(_rows(page, "/FILTERED/")).to_contain_text("magic → agent_not_found")
    page.fill("#filter-status", "")
    expect(_rows(page, "/FILTERED/")).to_have_count(2, timeout=WAIT_MS)


def test_dashboard__a_journal_path_with_markup_is_shown_as_text(server: ServerProcess, page: Any) -> None:
    from playwright.sync_api import expect

    hostile = "<img src=x onerror=window.__pwned=1>"
    httpx.get(f"{server.url}/in/v1/S/rcs/agent/{hostile}", headers=HEADERS)
    expect(_rows(page, hostile)).to_have_count(1, timeout=WAIT_MS)
    assert page.locator("#journal img").count() == 0
    assert page.evaluate("window.__pwned") is None
