"""
A real headless Chromium driven by selenium, for the web viewer's tests:
Debian's chromium and chromium-driver (installed when missing), never a
browser or driver downloaded by selenium itself.
"""

import os
import shutil

from tests.support.installing import installPrograms

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTEFACTS = os.environ.get("BWSCD_TEST_ARTEFACTS") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artefacts")
"""Where screenshots are copied for people to look at (tests/artefacts/,
ignored by git), or the folder C{BWSCD_TEST_ARTEFACTS} names."""


def startBrowser(downloads: str):
    """
    Headless Chromium that trusts any certificate: it only ever talks to the
    test's own server on loopback, whose certificate is self-signed.
    """
    installPrograms([CHROMIUM, CHROMEDRIVER], ["chromium", "chromium-driver"])
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--ignore-certificate-errors",
                     "--window-size=1000,900", "--autoplay-policy=no-user-gesture-required",
                     "--mute-audio", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": downloads})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


def screenshot(driver, directory: str, name: str) -> str:
    """Save a screenshot under C{directory} (the test's tmp path) and copy it to L{ARTEFACTS}."""
    path = os.path.join(directory, f"{name}.png")
    driver.save_screenshot(path)
    os.makedirs(ARTEFACTS, exist_ok=True)
    shutil.copy(path, os.path.join(ARTEFACTS, f"{name}.png"))
    return path
