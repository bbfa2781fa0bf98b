"""What the browser scripts share: the step log, the failure report and a headless Chromium."""

import json
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

WAIT = 30
steps = []


def fail(message, driver=None):
    """Prints the JSON failure (with the page's URL, status line and text) and exits 1."""
    detail = {"ok": False, "error": message, "steps": steps}
    if driver is not None:
        detail["url"] = driver.current_url
        for key, locator in (("message", (By.ID, "message")), ("page", (By.TAG_NAME, "body"))):
            try:
                detail[key] = driver.find_element(*locator).text[:500]
            except Exception:
                pass
    print(json.dumps(detail))
    sys.exit(1)


def step(name):
    steps.append(name)


def chromium(*extra):
    """Headless Chromium with its console log kept (errors and CSP violations are read from it)."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     "--user-data-dir=" + tempfile.mkdtemp(prefix="moat-chromium-")) + extra:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)

