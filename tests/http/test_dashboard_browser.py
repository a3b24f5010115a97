"""The dashboard in a real headless Chromium (Debian's), driven by Selenium against a real `scanguard serve`."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import TOKEN, Api, ServerProcess
from tests.support.trees import build_tree

REPO = Path(__file__).resolve().parents[2]
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
    # each batch of two files takes 20 ms (a slow disk): the bar moves for ~30 s whatever this machine's speed
    paced = {
        "SCANGUARD_TEST_FAULT_HOOK": "tests.support.pace_hook:pace_batch",
        "SCANGUARD_TEST_PACE": "0.02",
        "PYTHONPATH": str(REPO),
    }
    server = start_server(sqlite_url, env={"SCANGUARD_SCAN_BATCH_SIZE": "2", **paced})
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


# no catch-up scan when a library is added (DESIGN §12, `[watch] default`): these tests start their scans
NO_WATCH = {"SCANGUARD_WATCH_DEFAULT": "false"}


def _job_family(kind: str) -> bool:
    return kind.startswith(("job.", "supervisor.", "watchdog.", "orphan.", "validator."))


def _panel(browser: Any) -> list[str]:
    """The kinds in the events panel, newest first."""
    return list(
        browser.execute_script(
            "return [...document.querySelectorAll('#events li')].map((li) => li.dataset.kind)"
        )
    )


def test_thousands_of_per_file_events_never_bury_the_job_events_in_the_panel(
    tmp_path: Path,
    sqlite_url: str,
    browser: Any,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> None:
    """Issue 15, item 3 (the 5k-file library that showed 4,664 quarantine rows and nothing else): a scan
    that quarantines every audio file records a file.quarantined event each, over 3,000 here; the panel's
    default family (jobs) still shows the job's start and end, live and after a reload, and the per-file
    events are one click away."""
    build_tree(tmp_path / "lib", 5000, 0, hidden=False, symlinks=False)  # fake audio: mutagen reads none
    server = start_server(
        sqlite_url,
        env={"SCANGUARD_SCAN_PROCESSORS": "audio_tags", "SCANGUARD_SCAN_WORKERS": "1", **NO_WATCH},
    )
    api = api_for(server)
    library = api.post("/api/admin/libraries", json={"path": str(tmp_path / "lib")}).json["library"]["id"]
    page = Page(browser)
    _login(page, browser, server)
    page.wait(lambda: page.find("#conn").text == "live", "the event stream to connect")
    assert page.attr('#event-families button[data-family="job"]', "aria-pressed") == "true"

    job_id = api.post(f"/api/admin/scanner/safe/start/{library}").json["job"]["id"]
    quarantined = api.wait_job(job_id, ("completed",), timeout=120)["errors"]
    assert quarantined >= 3000  # a file.quarantined event each, all newer than job.started
    page.wait(lambda: "job.completed" in _panel(browser), "job.completed in the panel, live", timeout=30)
    live = _panel(browser)
    assert "job.started" in live
    assert all(_job_family(kind) for kind in live), live

    browser.refresh()  # the list: the newest events of the family, then the stream from there
    page.wait(lambda: "job.completed" in _panel(browser), "job.completed in the panel after a reload")
    listed = _panel(browser)
    assert "job.started" in listed
    assert all(_job_family(kind) for kind in listed), listed

    page.click('#event-families button[data-family="file"]')
    page.wait(lambda: set(_panel(browser)) == {"file.quarantined"}, "the per-file events")
    assert len(_panel(browser)) == 50
    newest = api.get("/api/admin/events?family=file&limit=1&newest_first=true").json["events"][0]
    row = page.find(f'#events li[data-event-id="{newest["id"]}"]').text
    assert f"{newest['data']['path']}: error" in row, row
    assert page.attr('#event-families button[data-family="job"]', "aria-pressed") == "false"

    page.click('#event-families button[data-family=""]')
    page.wait(lambda: _panel(browser)[:1] == ["job.completed"], "every event, the newest first")
    page.click('#event-families button[data-family="job"]')
    page.wait(lambda: "job.started" in _panel(browser), "the job events again")
    browser.execute_script("document.querySelector('#events-section').scrollIntoView()")
    OUTPUT.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(OUTPUT / "dashboard-events-family.png"))
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


LONG = "A Rather Long Folder Name From A Music Collection That Nobody Ever Shortened"
HOST = "media-server-with-a-rather-long-host-name.storage.example.internal"

# What the API says once the other parts of issue 15 are in (DESIGN §12): jobs with scope, trigger and
# files_moved, libraries with their watch object; and what an older server says (the fields absent).
FIXTURE_JOBS = [
    {"id": 9001, "status": "running", "progress": 42.5, "files_processed": 1234, "files_skipped": 5,
     "files_moved": 17, "errors": 3, "files_per_second": 250.0, "eta_seconds": 75, "trigger": "watch",
     "scope": [f"{LONG}/{LONG} 1", f"{LONG}/{LONG} 2", "Singles"]},
    {"id": 9002, "status": "completed", "progress": 100, "files_processed": 20000, "files_skipped": 0,
     "files_moved": 0, "errors": 0, "trigger": "catch_up", "scope": []},
    {"id": 9003, "status": "paused", "progress": 3, "files_processed": 7, "files_skipped": 0, "errors": 0,
     "pause_reason": "stalled"},
    {"id": 9004, "status": "failed", "progress": 61, "files_processed": 50, "files_skipped": 0, "errors": 1,
     "trigger": "rescan", "scope": [], "last_error": f"OSError: [Errno 5] Input/output error: '/srv/{LONG}/{LONG}'"},
]  # fmt: skip
FIXTURE_WATCH = {
    901: {"enabled": True, "state": "polling", "reason": "watch_limit", "since": "2026-12-04T17:00:00Z",
          "pending": 12},
    902: {"enabled": True, "state": "watching", "reason": None, "since": "2026-12-04T16:00:00Z", "pending": 0},
    903: {"enabled": True, "state": "unavailable", "reason": "root_unavailable", "since": None, "pending": 0},
    904: None,
    905: {"enabled": False, "state": "off", "reason": None, "since": None, "pending": 0},
}  # fmt: skip
FIXTURE_EVENTS = [
    {"id": 9101, "at": "2026-12-04T17:00:00Z", "kind": "watch.degraded", "library_id": 901, "job_id": None,
     "data": {"reason": "watch_limit", "message": "raise fs.inotify.max_user_watches"}},
    {"id": 9102, "at": "2026-12-04T17:01:00Z", "kind": "watch.recovered", "library_id": 901, "job_id": None,
     "data": {"reason": "watch_limit", "message": None}},
    {"id": 9103, "at": "2026-12-04T17:02:00Z", "kind": "file.moved", "library_id": 901, "job_id": 9001,
     "data": {"from": f"{LONG}/{LONG} 1/01 - Track.flac", "to": f"{LONG}/Renamed/01 - Track.flac"}},
]  # fmt: skip

RENDER_FIXTURES = """
const [jobs, libs, instances, events] = arguments;
state.timers.forEach(clearInterval); state.timers = []; clearTimeout(refreshSoon.timer); stopStream();
for (const lib of libs) state.libraries.set(lib.id, lib);
for (const job of jobs) state.jobs.set(job.id, job);
renderLibraries(); renderJobs(); renderInstances(instances);
events.forEach(addEventRow);
"""
OVERFLOW = """
const d = document.documentElement;
const over = (n) => n.scrollWidth > n.clientWidth;
return {scroll: d.scrollWidth, client: d.clientWidth, inner: window.innerWidth,
        sections: [...document.querySelectorAll('section, .table-wrap')].filter(over).map((n) => n.id || n.className)};
"""


def _fits(browser: Any) -> None:
    """No horizontal overflow: not of the document, nor of a table past its section (or its scroll box)."""
    fit: dict[str, Any] = browser.execute_script(OVERFLOW)
    assert fit["inner"] <= 1400, fit
    assert fit["scroll"] <= fit["client"], f"the page overflows the window: {fit}"
    assert fit["sections"] == [], f"a table overflows its section: {fit}"


def _cell(page: Page, row: str, cls: str) -> Any:
    return page.find(f"{row} td.{cls}")


@dataclass
class Listed:
    """A served dashboard, logged in at 1400x900, listing three libraries with long paths and a finished job."""

    page: Page
    api: Api
    libraries: list[int]
    job_id: int


@pytest.fixture
def listed(
    tmp_path: Path,
    sqlite_url: str,
    browser: Any,
    start_server: Callable[..., ServerProcess],
    api_for: Callable[..., Api],
) -> Listed:
    server = start_server(sqlite_url, env=NO_WATCH)
    api = api_for(server)
    libraries = []
    for n in range(3):
        root = tmp_path / LONG / f"{LONG} {n}" / f"{LONG}-{'x' * 40}"
        build_tree(root, 3, 0, hidden=False, symlinks=False)
        body = {"path": str(root), "name": f"{LONG} {n}"}
        libraries.append(api.post("/api/admin/libraries", json=body).json["library"]["id"])
    job_id = api.post(f"/api/admin/scanner/safe/start/{libraries[0]}").json["job"]["id"]
    api.wait_job(job_id, ("completed",))
    browser.set_window_size(1400, 900)
    page = Page(browser)
    _login(page, browser, server)
    page.wait(lambda: len(browser.find_elements("css selector", "#libraries tr")) == 3, "the three libraries")
    page.wait(lambda: page.find(f'#jobs tr[data-job-id="{job_id}"]'), "the job")
    page.wait(lambda: page.find('#instances tr[data-live="true"]'), "this instance")
    return Listed(page, api, libraries, job_id)


def _render_fixtures(listed: Listed) -> list[dict[str, Any]]:
    """Freeze the page (no refresh, no stream) and render what the rest of issue 15 adds through the page's
    own render functions; the instances rendered are returned."""
    instances = [
        {"id": f"{HOST}:{40000 + i}:1764867000:{i:08x}", "host": HOST, "pid": 40000 + i, "version": "0.9.0",
         "heartbeat_at": "2026-12-04T17:00:00Z", "live": i != 2, "jobs": list(range(100 * i, 100 * i + 25))}
        for i in range(3)
    ]  # fmt: skip
    jobs = [{**j, "library_id": listed.libraries[0] if j["id"] != 9002 else 901} for j in FIXTURE_JOBS]
    libs = [
        {"id": lib_id, "name": f"{INJECTED} {LONG}", "path": f"/srv/{LONG}/{LONG}/{lib_id}", "kind": "music",
         "media_files": 123456, **({"watch": watch} if watch is not None else {})}
        for lib_id, watch in FIXTURE_WATCH.items()
    ]  # fmt: skip
    listed.page.driver.execute_script(RENDER_FIXTURES, jobs, libs, instances, FIXTURE_EVENTS)
    return instances


def test_the_page_fits_a_1400_px_window_with_long_paths_names_and_instance_ids(
    listed: Listed, browser: Any
) -> None:
    """Issue 15, item 3: with long library paths and names, several instances with long ids, jobs with long
    scopes and errors, the document is no wider than a 1400x900 window and no table overflows its section."""
    _fits(browser)  # what the server lists
    instances = _render_fixtures(listed)
    _fits(browser)
    instance = listed.page.find(f'#instances tr[data-instance-id="{instances[0]["id"]}"] td.instance')
    assert instance.get_attribute("title") == instances[0]["id"]
    assert instance.text == instances[0]["id"]  # wrapped, not cut
    OUTPUT.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(OUTPUT / "dashboard-1400.png"))
    for part in ("libraries", "instances"):
        browser.execute_script(f"document.querySelector('#{part}').scrollIntoView()")
        assert browser.save_screenshot(str(OUTPUT / f"dashboard-1400-{part}.png"))
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_jobs_show_trigger_and_scope_libraries_their_watch_state_and_new_events_read_as_sentences(
    listed: Listed, browser: Any
) -> None:
    """Issue 15, item 3: each job shows its trigger and scope (whole library, or the first path and +N more,
    all of them in the title), each library its watch state with the reason and pending paths (a warning
    when polling or unavailable); watch.degraded, watch.recovered and file.moved read as sentences. A field
    this server does not send is shown as unknown, so the page holds before and after the rest of issue 15."""
    page, api = listed.page, listed.api
    job = api.get(f"/api/admin/scanner/jobs/{listed.job_id}").json["job"]
    row = f'#jobs tr[data-job-id="{listed.job_id}"]'
    assert _cell(page, row, "trigger").text == job.get("trigger", "\N{EN DASH}")
    assert _cell(page, row, "scope").text == ("whole library" if job.get("scope") == [] else "\N{EN DASH}")

    def watch_agrees() -> bool:  # a watcher may move on (starting → watching): wait for the next refresh
        library = api.get(f"/api/admin/libraries/{listed.libraries[0]}").json["library"]
        watch = library.get("watch")
        expected = "unknown" if watch is None else ("off" if not watch["enabled"] else watch["state"])
        cell = _cell(page, f'#libraries tr[data-library-id="{listed.libraries[0]}"]', "watch")
        return bool(cell.get_attribute("data-watch-state") == expected)

    page.wait(watch_agrees, "the watch column to show what the API says", timeout=25)

    _render_fixtures(listed)
    scope = _cell(page, '#jobs tr[data-job-id="9001"]', "scope")
    assert scope.text.splitlines() == [f"{LONG}/{LONG} 1", "+2 more"]
    assert scope.get_attribute("title") == "\n".join(FIXTURE_JOBS[0]["scope"])  # type: ignore[arg-type]
    assert _cell(page, '#jobs tr[data-job-id="9001"]', "trigger").text == "watch"
    assert "17 moved" in _cell(page, '#jobs tr[data-job-id="9001"]', "files").text
    assert _cell(page, '#jobs tr[data-job-id="9002"]', "scope").text == "whole library"
    assert _cell(page, '#jobs tr[data-job-id="9002"]', "trigger").text == "catch_up"
    assert _cell(page, '#jobs tr[data-job-id="9003"]', "scope").text == "\N{EN DASH}"
    assert _cell(page, '#jobs tr[data-job-id="9003"]', "trigger").text == "\N{EN DASH}"

    def watch_cell(lib_id: int) -> tuple[str, str, bool]:
        cell = _cell(page, f'#libraries tr[data-library-id="{lib_id}"]', "watch")
        return cell.get_attribute("data-watch-state"), cell.text, "warn" in cell.get_attribute("class")

    assert watch_cell(901) == ("polling", "polling watch_limit 12 pending", True)
    assert watch_cell(902) == ("watching", "watching", False)
    assert watch_cell(903) == ("unavailable", "unavailable root_unavailable", True)
    assert watch_cell(904) == ("unknown", "\N{EN DASH}", False)
    assert watch_cell(905) == ("off", "off", False)
    assert "since 2026-12-04 17:00:00" in _cell(
        page, '#libraries tr[data-library-id="901"]', "watch"
    ).get_attribute("title")
    assert not browser.find_elements("css selector", "#libraries img, #libraries script")

    degraded = page.find('#events li[data-event-id="9101"]')
    assert "watching degraded: watch_limit \N{EM DASH} raise fs.inotify.max_user_watches" in degraded.text
    assert "warn" in degraded.get_attribute("class")
    assert "watching again (was watch_limit)" in page.find('#events li[data-event-id="9102"]').text
    moved = page.find('#events li[data-event-id="9103"]').text
    assert f"{LONG}/{LONG} 1/01 - Track.flac \N{RIGHTWARDS ARROW} {LONG}/Renamed/01 - Track.flac" in moved

    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
