"""The dashboard in a real headless Chromium (Debian's), driven by Selenium against a real `scanguard serve`."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import TOKEN, Api, ServerProcess
from tests.support.trees import build_tree

CHROMIUM = os.environ.get("SCANGUARD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SCANGUARD_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(150),
    pytest.mark.skipif(
        not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
        reason=f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): "
        "apt-get install chromium chromium-driver",
    ),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM) or CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which(CHROMEDRIVER) or CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """Waits and clicks that survive the dashboard re-rendering rows under the driver."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        def probe(_driver: Any) -> Any:
            try:
                return condition()
            except (NoSuchElementException, StaleElementReferenceException):
                return False

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
            probe, message=f"waiting for {what}"
        )

    def find(self, selector: str) -> Any:
        return self.driver.find_element("css selector", selector)

    def click(self, selector: str) -> None:
        self.wait(lambda: self.find(selector).click() is None, f"a click on {selector}")

    def attr(self, selector: str, name: str) -> str:
        return str(self.find(selector).get_attribute(name))

    def accept_confirm(self) -> str:
        from selenium.webdriver.support import expected_conditions

        alert = self.wait(lambda: expected_conditions.alert_is_present()(self.driver), "a confirm() dialog")
        text = str(alert.text)
        alert.accept()
        return text


def _login(page: Page, browser: Any, server: ServerProcess) -> None:
    browser.get(server.url + "/")
    page.find("#token-input").send_keys(TOKEN)
    page.click("#login-btn")
    page.wait(lambda: page.find("#app").is_displayed(), "the dashboard after login")


def test_an_operator_adds_a_library_and_starts_watches_pauses_resumes_and_deletes_its_scan(
    tmp_path: Path,
    sqlite_url: str,
    browser: Any,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    tree = tmp_path / "Music"
    build_tree(tree, 3000, 20)
    server = start_server(sqlite_url, env={"SCANGUARD_SCAN_BATCH_SIZE": "2"})
    api = api_for(server)
    page = Page(browser)
    OUTPUT.mkdir(exist_ok=True)

    _login(page, browser, server)
    assert browser.execute_script("return sessionStorage.getItem('scanguard.token')") == TOKEN
    assert browser.execute_script("return localStorage.length") == 0
    page.wait(lambda: page.find("#conn").text == "live", "the event stream to connect")

    page.find("#lib-path").send_keys(str(tree))
    page.find("#lib-name").send_keys("My Music")
    page.click("#add-lib-btn")
    row = page.wait(lambda: page.find("#libraries tr[data-library-id]"), "the new library row")
    library_id = int(row.get_attribute("data-library-id"))
    assert "My Music" in page.find(f'tr[data-library-id="{library_id}"]').text

    page.click(f'tr[data-library-id="{library_id}"] button[data-action="start"]')
    job_row = page.wait(lambda: page.find("#jobs tr[data-job-id]"), "the job row")
    job_id = int(job_row.get_attribute("data-job-id"))
    job = f'#jobs tr[data-job-id="{job_id}"]'
    first = page.wait(
        lambda: (
            float(page.attr(f"{job} .bar", "data-progress")) > 0
            and float(page.attr(f"{job} .bar", "data-progress"))
        ),
        "progress above 0",
    )
    moved = page.wait(
        lambda: (
            float(page.attr(f"{job} .bar", "data-progress")) > first
            and float(page.attr(f"{job} .bar", "data-progress"))
        ),
        "the progress bar to move",
    )
    assert first < moved < 100
    assert page.find(f"{job} .rate").text != "\N{EN DASH}"  # the placeholder before a rate is known
    browser.save_screenshot(str(OUTPUT / "dashboard-scanning.png"))

    page.click(f'{job} button[data-action="pause"]')
    page.wait(lambda: page.attr(job, "data-status") == "paused", "the job to show paused")
    assert api.get(f"/api/admin/scanner/jobs/{job_id}").json["job"]["pause_reason"] == "user"
    assert "user" in page.find(job).text

    page.click(f'{job} button[data-action="resume"]')
    page.wait(lambda: page.attr(job, "data-status") == "running", "the job to show running again")
    assert api.get(f"/api/admin/scanner/jobs/{job_id}").json["job"]["status"] == "running"
    page.wait(
        lambda: page.find("#events li code") and "job.resumed" in page.find("#events").text,
        "the resume event in recent events",
    )
    page.wait(lambda: page.find("#health-status").text == "healthy", "the health snapshot")
    page.wait(
        lambda: f"#{job_id}" in page.find('#instances tr[data-live="true"] .jobs').text,
        "this instance's row, live, running the job",
    )

    page.click(f'{job} button[data-action="delete"]')
    assert f"Delete job {job_id}" in page.accept_confirm()
    page.wait(lambda: not browser.find_elements("css selector", job), "the job row to go away")
    assert api.get(f"/api/admin/scanner/jobs/{job_id}").status == 404
    page.wait(lambda: "job.deleted" in page.find("#events").text, "the delete event in recent events")

    page.click("#cleanup-btn")
    assert "Emergency cleanup" in page.accept_confirm()
    page.wait(lambda: "Emergency cleanup done" in page.find("#toast").text, "the cleanup report toast")

    browser.save_screenshot(str(OUTPUT / "dashboard.png"))
    assert (OUTPUT / "dashboard.png").stat().st_size > 10_000
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_the_health_panel_shows_one_moment_live_scans_beside_live_job_counts(
    tmp_path: Path,
    sqlite_url: str,
    browser: Any,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    """Issue 11, item 3: while a scan runs, 'live scans' agrees with 'running' (both read now); the health
    snapshot, taken long before (its interval is an hour here), is shown with its age."""
    tree = tmp_path / "Music"
    build_tree(tree, 400, 5)
    server = start_server(
        sqlite_url,
        env={
            "SCANGUARD_SCAN_BATCH_SIZE": "2",
            "SCANGUARD_SAFEGUARDS_HEALTH_CHECK_INTERVAL": "3600",
            # the held write lock stalls the writer's mailbox: no validator or cleanup pass may queue behind
            # it, or the status answer (which reads their counters) would wait for them
            "SCANGUARD_SAFEGUARDS_STATE_VALIDATION_INTERVAL": "0",
            "SCANGUARD_SAFEGUARDS_CLEANUP_INTERVAL": "0",
        },
    )
    api = api_for(server)
    library_id = api.post("/api/admin/libraries", json={"path": str(tree)}).json["library"]["id"]
    page = Page(browser)
    _login(page, browser, server)
    page.wait(lambda: page.find("#health-live").text == "0 (db running: 0)", "the idle health panel")

    # hold the database's write lock: the scan stays running (its next batch waits), deterministically
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
    try:
        job_id = api.post(f"/api/admin/scanner/safe/start/{library_id}").json["job"]["id"]
        holder.execute("BEGIN IMMEDIATE")
        assert api.get(f"/api/admin/scanner/jobs/{job_id}").json["job"]["status"] == "running"
        page.wait(lambda: "running 1" in page.find("#health-jobs").text, "the running job in the panel")
        assert page.find("#health-live").text == "1 (db running: 1)"
        age = page.find("#health-age").text
        assert age == "just now" or age.endswith(" ago"), age
        browser.save_screenshot(str(OUTPUT.joinpath("dashboard-health.png")))
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
    assert api.wait_job(job_id, ("completed",))["files_processed"] == 400


INJECTED = "<img src=x onerror=\"window.__pwned='img'\"><script>window.__pwned='script'</script>"


def test_the_dashboard_runs_under_a_strict_csp_that_stops_injected_inline_script_and_framing(
    tmp_path: Path,
    sqlite_url: str,
    browser: Any,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    """Issue 11, item 5: the script is a file under `script-src 'self'`; markup injected through a library
    name — even if a rendering bug put it in as HTML — runs no inline script; no page may frame it."""
    server = start_server(sqlite_url)
    api = api_for(server)
    page_reply = api.get("/", token=None)
    csp = page_reply.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in page_reply.text, "no inline script in the page"
    assert api.get("/dashboard.js", token=None).headers["Content-Type"].startswith("text/javascript")
    (tmp_path / "Music").mkdir()

    page = Page(browser)
    _login(page, browser, server)
    page.wait(lambda: page.find("#conn").text == "live", "the script to run and the event stream to connect")
    page.find("#lib-path").send_keys(str(tmp_path / "Music"))
    page.find("#lib-name").send_keys(INJECTED)
    page.click("#add-lib-btn")
    cell = "#libraries tr[data-library-id] td:nth-child(2)"
    page.wait(lambda: page.find(cell).text == INJECTED, "the name shown as text")
    assert not browser.find_elements("css selector", "#libraries img, #libraries script")

    # a rendering bug that writes the name as HTML, and a script element built from it: the CSP stops both
    browser.execute_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));"
        "const cell = document.querySelector(arguments[0]);"
        "cell.innerHTML = arguments[1];"
        "const s = document.createElement('script'); s.textContent = cell.querySelector('script')?.textContent"
        " || \"window.__pwned='script'\"; document.body.append(s);",
        cell,
        INJECTED,
    )
    violations = page.wait(
        lambda: (v := browser.execute_script("return window.__violations")) and len(v) >= 2 and v,
        "the CSP to report the blocked inline handler and script",
    )
    assert all(v.startswith("script-src") for v in violations), violations
    assert browser.execute_script("return window.__pwned === undefined")

    # framed by another page: refused
    framer = tmp_path / "framer.html"
    framer.write_text(f'<!doctype html><iframe id="f" src="{server.url}/"></iframe>', encoding="utf-8")
    browser.get(framer.as_uri())
    page.wait(
        lambda: any("frame-ancestors" in e["message"] for e in browser.get_log("browser")),
        "Chromium to refuse the frame (frame-ancestors 'none')",
    )


def test_the_dashboard_shows_each_webhook_with_its_lag_and_dead_deliveries_but_never_its_secret(
    tmp_path: Path,
    sqlite_url: str,
    browser: Any,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    """Issue 10: a webhook at a closed port shows up, and its dead delivery appears once it is given up."""
    from tests.support.receiver import closed_port_url

    hooks = [
        {"name": "nobody-home", "url": closed_port_url(), "secret": "dash-secret-42", "kinds": ["library."]}
    ]
    server = start_server(
        sqlite_url,
        env={
            "SCANGUARD_WEBHOOKS": json.dumps(hooks),
            "SCANGUARD_WEBHOOK_DELIVERY_MAX_ATTEMPTS": "2",
            "SCANGUARD_WEBHOOK_DELIVERY_RETRY_INTERVAL": "0.05",
            "SCANGUARD_WEBHOOK_DELIVERY_POLL_INTERVAL": "0.2",
        },
    )
    page = Page(browser)
    _login(page, browser, server)
    page.wait(lambda: page.find('#webhooks tr[data-webhook="nobody-home"]'), "the webhook row")
    page.wait(lambda: page.find("#conn").text == "live", "the event stream to connect")

    (tmp_path / "lib").mkdir()
    api_for(server).post("/api/admin/libraries", json={"path": str(tmp_path / "lib")})
    row = '#webhooks tr[data-webhook="nobody-home"]'
    page.wait(lambda: page.find(row).find_elements("css selector", "td")[-1].text == "1", "one dead delivery")
    text = page.find(row).text
    assert "library." in text
    assert "Cannot connect" in text or "Connect" in text
    assert "dash-secret-42" not in browser.page_source
