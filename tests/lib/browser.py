"""Headless Chromium through Selenium, for the tests that look at the dashboard as a user does."""

import os
import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def missing():
    """Why no browser can be driven here, or None."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        return "chromium or chromium-driver not installed"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "python3-selenium not installed"
    return None


def chrome(width=1280, height=720):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opts = Options()
    opts.binary_location = CHROMIUM
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    return driver


def stage_of(driver, host):
    """The stage the dashboard's row for `host` shows, or None without such a row. One script: the
    page replaces its rows on each update, so an element found first may be gone a moment later."""
    return driver.execute_script(
        "const p = document.querySelector(`tr[data-host=\"${arguments[0]}\"] .pill`);"
        "return p ? p.dataset.stage : null;", host)


def text_of(driver, selector):
    """The rendered text of the first element matching the CSS `selector`, or None without one. Read in
    one script, for the reason given at stage_of: the page re-renders its parts on every update, and an
    element found by one WebDriver call may be replaced before the next call reads it."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", selector)
