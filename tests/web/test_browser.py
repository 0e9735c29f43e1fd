"""The console in headless Chromium (Debian's chromium and chromedriver, driven by selenium):
sign in, find an escalated task, resolve it and retry it through the page and see both in the
database; open a finished task and play its HLS rendition in the page. A screenshot of the
playing task is saved in the test's tmp dir (its path is printed)."""
from __future__ import annotations

import pytest

from sqlalchemy import update

from framepress.client import Client
from framepress.service.db import Task

from support.browser import chromium
from support.services import SETTLED, TINY_LADDER, make_test_clip, wait_for, worker_thread

from .conftest import SECRET, TOKEN, embedded_settings, start_console, task_row
from .receiver import Receiver

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def browser():
    with chromium() as driver:
        driver.set_window_size(1280, 1000)
        driver.implicitly_wait(5)
        yield driver


@pytest.fixture
def receiver():
    r = Receiver(SECRET)
    yield r
    r.stop()


@pytest.fixture
def finished_and_escalated(tmp_path, receiver):
    """A worker's real outcomes: one task transcoded to HLS, one escalated (its source is
    missing), each announced by a signed webhook. The worker is stopped, so what the page does
    shows as is in the database."""
    settings = embedded_settings(tmp_path, webhook_url=receiver.url)
    clip = make_test_clip(tmp_path / "clip.mp4", 3, "320x180")
    with Client(settings) as client, worker_thread(settings):
        ok = client.submit(clip.as_uri(), ladder=TINY_LADDER)
        bad = client.submit((tmp_path / "missing.mp4").as_uri(), ladder=TINY_LADDER)
        for task_id, outcome in ((ok, "succeeded"), (bad, "escalated")):
            st = wait_for(lambda: (s := client.status(task_id))["status"] in SETTLED and s, 90,
                          f"task {task_id} to settle")
            assert st["status"] == outcome, st
        wait_for(lambda: receiver.received() == {("task.succeeded", ok), ("task.escalated", bad)},
                 20, "the worker's webhooks")
    return settings, ok, bad


def test_resolve_retry_and_play_through_the_pages(browser, finished_and_escalated, receiver,
                                                  tmp_path):
    from selenium.webdriver.common.by import By
    settings, ok, bad = finished_and_escalated
    console = start_console(settings)               # with its own webhook dispatcher
    try:
        base = console.url
        browser.get(base + "/escalations")                  # not signed in: the login page
        assert "/login" in browser.current_url
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()
        wait_for(lambda: browser.current_url.endswith("/escalations"), 10, "the escalations page")

        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-task="{bad}"]')
        assert "does not exist" in row.text
        form = row.find_element(By.CSS_SELECTOR, 'form[data-action="resolve"]')
        form.find_element(By.NAME, "note").send_keys("the upload never arrived")
        form.find_element(By.CSS_SELECTOR, "button[name=resolve]").click()
        wait_for(lambda: "resolve: done" in browser.find_element(By.ID, "flash").text, 10,
                 "the resolve to be confirmed")
        st = task_row(console.db, bad)
        assert st["status"] == "failed"
        assert st["events"][-1]["kind"] == "resolved"
        assert st["events"][-1]["message"] == "the upload never arrived"
        assert not browser.find_elements(By.CSS_SELECTOR, f'tr[data-task="{bad}"]')
        wait_for(lambda: ("task.failed", bad) in receiver.received(), 20,
                 "the console's task.failed webhook")

        browser.get(f"{base}/tasks/{bad}")
        form = browser.find_element(By.CSS_SELECTOR, 'form[data-action="retry"]')
        form.find_element(By.NAME, "note").send_keys("uploaded again")
        form.find_element(By.CSS_SELECTOR, "button[name=retry]").click()
        wait_for(lambda: "retry: done" in browser.find_element(By.ID, "flash").text, 10,
                 "the retry to be confirmed")
        st = task_row(console.db, bad)
        assert st["status"] == "queued"
        assert st["events"][-1]["kind"] == "resumed"
        assert st["events"][-1]["data"]["note"] == "uploaded again"
        assert st["events"][-1]["worker_id"] == "console"

        browser.get(f"{base}/tasks/{ok}")
        timeline = browser.find_element(By.ID, "timeline").text
        for kind in ("taken", "pulled", "transcoded", "uploaded", "succeeded"):
            assert kind in timeline
        video = browser.find_element(By.ID, "player")

        def playing() -> bool:
            state = browser.execute_script(
                "const v = arguments[0]; return [v.currentTime, v.dataset.error || ''];", video)
            assert not state[1], f"the player failed: {state[1]}"
            return state[0] > 0.5
        wait_for(playing, 30, "the rendition to play in the page", interval=0.25)
        shot = tmp_path / "console-task-playing.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
        assert browser.execute_script("return arguments[0].videoHeight;", video) == 144

        # The charts draw the worker's real steps.
        browser.get(f"{base}/charts")
        bars = browser.find_elements(By.CSS_SELECTOR, "#chart-stages rect.bar.stage")
        assert len(bars) == 5 and float(bars[2].get_attribute("width")) > 0   # transcode

        # The task list follows progress without a reload.
        browser.get(f"{base}/")
        progress = browser.find_element(By.CSS_SELECTOR,
                                        f'tr[data-task="{bad}"] progress[data-field="progress"]')
        assert float(progress.get_attribute("value")) == 0
        with console.db.session() as s:
            s.execute(update(Task).where(Task.id == bad).values(status="running", progress=0.4))
        wait_for(lambda: float(progress.get_attribute("value")) == 0.4, 10, "live progress")
        assert browser.find_element(
            By.CSS_SELECTOR, f'tr[data-task="{bad}"] [data-field="status"]').text == "running"
    finally:
        console.server.stop()
