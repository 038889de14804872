"""Headless Chromium through Selenium, offline: the playground's browser test and its screenshot.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``;
``.ci/run`` installs them) and ``pip install selenium``. The driver's path is given explicitly,
so Selenium Manager never tries to download one.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

INSTALL_HINT = (
    "install the browser: apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core"
)


class BrowserMissing(RuntimeError):
    pass


def chromium_driver(width: int = 1024, height: int = 768) -> Any:
    """A headless Chromium that records its network requests (see :func:`requested_urls`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise BrowserMissing(f"chromium or chromedriver is not on PATH: {INSTALL_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # needed as root, e.g. in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page asked for since the last call (from Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
