"""Headless Chromium for the web UI's tests: Debian's ``chromium`` driven by its ``chromium-driver`` (Selenium).

Installed by scripts/install_test_servers.sh (``make test-servers``). Without
them the UI tests skip locally and fail with CI=true.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Optional

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver", "chromium-driver")
WINDOW = (1280, 800)


def find(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> Optional[str]:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in extra if os.access(p, os.X_OK)), None)


def start_chromium() -> Any:
    """A headless Chromium at 1280x800 (RuntimeError naming what is missing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = find(CHROMIUM_NAMES)
    driver = find(DRIVER_NAMES, ("/usr/lib/chromium/chromedriver",))
    if binary is None or driver is None:
        raise RuntimeError("Chromium or its driver is not installed (apt-get install chromium chromium-driver, "
                           "or `make test-servers`)")  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)
