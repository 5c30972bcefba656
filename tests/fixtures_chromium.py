"""Headless Debian Chromium under Selenium, for the tests that look at pages in a browser.

:func:`headless_chromium` starts one driver with the flags every browser test here needs (no
sandbox in containers, a throw-away profile, nothing phoning home) and quits it afterwards; it
skips the test when ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` is missing (``.ci/run``
installs them). Selenium is imported only when a driver is asked for.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@contextlib.contextmanager
def headless_chromium(window: str = "1100,800", extra: tuple[str, ...] = ()) -> Iterator[Any]:
    """A Selenium Chrome driver on headless Chromium with a ``window`` (``"width,height"``).

    ``extra`` adds flags a test needs beyond the common ones (e.g. background-timer ones).
    """
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run does it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, *extra, f"--window-size={window}", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            yield driver
        finally:
            driver.quit()
