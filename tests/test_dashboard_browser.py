"""The dashboard in a real headless browser (the system's chromium, driven by playwright),
served by a real ``tinyq dashboard`` process over a real redis-server, with a real worker:
the overview with jobs in every state, a dead letter requeued from the page and watched to
success, a ``<script>`` in a job's arguments shown as text and never run, and the first page
of a 10,000-job queue served in under a second.

Skipped without chromium or playwright, except with CI=true (.ci/run installs chromium),
where a missing browser fails. With ``TINYQ_SCREENSHOTS=docs/images`` the test saves the
screenshots docs/dashboard.md shows."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from redis_server import RedisServer, free_port
from support.project import AppProject
from support.waiting import wait_until

CHROMIUM = os.environ.get("TINYQ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
EVIL = "<script>window.__pwned=1</script>"
BIG = 10_000

APP = '''
import os, time
from tinyq_core import Application

app = Application()  # $TINYQ_URL: the test's Redis

@app.task()
def add(m, n):
    return m + n

@app.task()
def flaky(path):
    if not os.path.exists(path):
        raise RuntimeError("not yet: " + path)
    return "ok"

@app.task()
def nap(seconds):
    time.sleep(seconds)
    return seconds

@app.task(queue="big")
def bulk(n):
    return n
'''


def need_browser() -> Any:
    """playwright's sync API, or a skip (a failure under CI) when it or chromium is missing."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed"
    if missing is None and not Path(CHROMIUM).exists():
        missing = f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if missing is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(missing + "; CI must not skip the browser tests", pytrace=False)
        pytest.skip(missing)
    return sync_playwright


@pytest.fixture
def project(tmp_path: Path, redis_server: RedisServer) -> Iterator[AppProject]:
    p = AppProject(tmp_path, APP, url=redis_server.url, visibility_timeout=30)
    yield p
    p.close()


@pytest.fixture
def page(project: AppProject) -> Iterator[Any]:
    sync_playwright = need_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             chromium_sandbox=False)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def start_dashboard(project: AppProject) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = project.start("dashboard", "--allow-actions", "--port", str(port))
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, project.output(proc)
        try:
            return httpx.get(url + "/", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, 30, interval=0.2, message="tinyq dashboard to serve its overview")
    return proc, url


def shoot(page: Any, name: str) -> None:
    folder = os.environ.get("TINYQ_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"dashboard-{name}.png"), full_page=True)


def server_time(page: Any) -> float:
    """Seconds from the request of the page to its last byte, as the browser measured it."""
    ms = page.evaluate("() => { const t = performance.getEntriesByType('navigation')[0];"
                       " return t.responseEnd - t.requestStart; }")
    return float(ms) / 1000


def queue_row(page: Any, queue: str) -> list[str]:
    row = page.locator("table.queues tr", has=page.locator(f"td:first-child >> text='{queue}'"))
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def test_the_dashboard_in_a_browser(project: AppProject, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    app: Any = project.module
    for n in range(3):
        app.add.apply_async((n, n), queue="emails")  # ready: no worker reads emails
    app.add.apply_async((1, 1), queue="emails", countdown=3600)  # scheduled
    evil = app.add.apply_async((EVIL, {"html": EVIL}), queue="emails")
    marker = tmp_path / "fixed"
    doomed = app.flaky.delay(str(marker))
    running = app.nap.delay(120)
    app.bulk.map(range(BIG))
    worker = project.worker("-q", "default", "-w", "2", "--heartbeat-interval", "1")
    wait_until(lambda: project.app.job(doomed.id).status() == "failed", 30,
               message="the flaky job to fail and become a dead letter")
    _, url = start_dashboard(project)

    # The overview: every state, the worker and its running job, the recent failure.
    page.goto(url + "/")
    workers = page.locator("section", has_text="Workers")
    expect(workers).to_contain_text("app.nap", timeout=15000)
    expect(workers.locator(f"a[href*='{running.id}']")).to_have_count(1)
    page.goto(url + "/job?" + str(httpx.QueryParams({"id": running.id})))
    expect(page.locator("td.status")).to_have_text("started")
    expect(page.locator("td.running")).to_contain_text("on worker ")
    page.goto(url + "/")
    assert queue_row(page, "emails")[:5] == ["emails", "4", "1", "0", "0"]
    assert queue_row(page, "default")[:5] == ["default", "0", "0", "1", "1"]
    assert queue_row(page, "big")[:2] == ["big", str(BIG)]
    expect(page.locator("section", has_text="Recent failures")).to_contain_text("not yet")
    shoot(page, "overview")

    # The first page of a 10,000-job queue, timed by the browser: the server's part only.
    page.goto(url + "/queue?name=big")
    assert page.locator("table.jobs tbody tr").count() == 50
    elapsed = server_time(page)
    print(f"first page of a {BIG}-job queue served in {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0

    # A <script> in the arguments is shown as text and never runs.
    page.goto(url + "/queue?name=emails")
    expect(page.locator("td.args", has_text=EVIL)).to_have_count(1)
    shoot(page, "queue")
    page.goto(url + "/job?" + str(httpx.QueryParams({"id": evil.id})))
    expect(page.locator("td.args")).to_contain_text(EVIL)
    assert page.evaluate("typeof window.__pwned") == "undefined"

    # Click through to the dead letter, requeue it, watch the worker run it to success.
    page.goto(url + "/")
    page.locator("table.queues tr", has_text="default").locator("td.n a").click()
    expect(page.locator("h1")).to_contain_text("Dead letters of default")
    shoot(page, "dead")
    page.get_by_role("link", name=doomed.id).click()
    expect(page.locator("td.status")).to_have_text("failed")
    marker.write_text("now it works")
    page.get_by_role("button", name="Requeue this job").click()
    expect(page.locator(".notice")).to_contain_text("Requeued 1 dead letter")
    expect(page.locator("td.status")).to_have_text("succeeded", timeout=20000)  # live update
    expect(page.locator("td.result")).to_have_text('"ok"')
    shoot(page, "job")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert worker.poll() is None
