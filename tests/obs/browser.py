"""Headless Chromium driven by selenium, both from Debian (chromium, chromium-driver; make
system-packages installs them): selenium gets /usr/bin/chromedriver, so nothing is
downloaded. Chromium runs without the services that call out (the machine's network is
closed), in a fresh profile, logging the page's console for the tests to read.

Screenshots go to build/dashboard-screenshots/ in the repository (RMQSTORE_SCREENSHOTS
overrides it)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.prerequisites import missing

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("RMQSTORE_SCREENSHOTS", REPO / "build" / "dashboard-screenshots"))
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--window-size=1280,1000")


@contextmanager
def chromium() -> Iterator:
    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver_path is None:
        missing("chromium and chromedriver (Debian's chromium, chromium-driver: "
                "make system-packages)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="rmqstore-chromium-")
    options = Options()
    options.binary_location = browser
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[str]:
    """The page's console errors since the last call (the log is read once)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait_ready(driver, page: str, timeout_s: float = 15.0) -> None:
    """Until the dashboard has rendered ``page`` (app.js sets main[data-ready])."""
    deadline = time.monotonic() + timeout_s
    while True:
        ready = driver.execute_script("return document.getElementById('page').dataset.ready")
        if ready == page:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"page {page} not rendered in {timeout_s} s (ready={ready!r}):"
                                 f" {driver.find_element('id', 'page').text[:500]}")
        time.sleep(0.05)


def open_page(driver, base_url: str, hash_path: str, page: str) -> None:
    """Navigate to base_url/#/hash_path and wait for ``page`` to render."""
    url = f"{base_url}/#/{hash_path}"
    driver.execute_script("if (document.getElementById('page')) "
                          "document.getElementById('page').dataset.ready = ''")
    if driver.current_url == url:
        driver.refresh()
    else:
        driver.get(url)
    wait_ready(driver, page)


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(700, min(int(height) + 160, 4000)))  # + the browser's own
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    return path


def text_of(driver, element_id: str) -> str:
    """The element's text read in one script: a page that re-renders between a find and a
    read would leave a stale element."""
    return driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : ''",
        element_id)
