"""Debian's headless Chromium for the admin's browser tests: one way to start it.

`chromium(profile=, width=, height=, extra_flags=(), downloads=None)` -> a Selenium driver
with a throwaway profile directory (the caller removes it), downloads allowed into `downloads`.
"""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium(*, profile: str, width: int, height: int, extra_flags=(), downloads: str | None = None):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, *extra_flags, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": downloads})
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    if downloads is not None:
        browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    browser.implicitly_wait(5)
    return browser
