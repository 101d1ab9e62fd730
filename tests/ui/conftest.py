"""Fixtures for the UI tests: one real Airflow API server with the plugin per session, and a
headless Chromium driven by Selenium.

Without Chromium (or chromedriver, or selenium) the browser tests skip, saying what is missing
and that scripts/install-browser installs it; with CI=true they fail instead.
Screenshots go to $XCOMSTORE_UI_ARTIFACTS or a temporary folder, printed at the end of the run.
The README's screenshots are made with
    XCOMSTORE_README_SCREENSHOTS=docs/img XCOMSTORE_UI_HOME=/tmp/airflow-ui \
        .venv/bin/pytest tests/ui/test_browser.py -k run_page_and_dataframe_preview
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .airflow_site import Site, prepare, start, stop, tail

CHROMIUM = os.environ.get("XCOMSTORE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (
    os.environ.get("XCOMSTORE_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
)
WAIT = 60.0  # seconds for a page to show what a test waits for, on a busy machine
ARTIFACTS_KEY = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ui: starts a real Airflow API server with the xcomstore plugin (browser tests need Chromium)",
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    folder = config.stash.get(ARTIFACTS_KEY, None)
    if folder is not None:
        terminalreporter.write_line(f"xcomstore UI test screenshots: {folder}")


@pytest.fixture(scope="session")
def airflow_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The site; XCOMSTORE_UI_HOME picks its folder (a new one), e.g. for the README's pictures."""
    chosen = os.environ.get("XCOMSTORE_UI_HOME")
    home = Path(chosen) if chosen else tmp_path_factory.mktemp("airflow-ui")
    home.mkdir(parents=True, exist_ok=True)
    if any(home.iterdir()):
        pytest.fail(f"XCOMSTORE_UI_HOME={home} is not empty")
    site = prepare(home)
    start(site)
    try:
        yield site
    finally:
        stop(site)
        if os.environ.get("XCOMSTORE_UI_SHOW_LOG"):
            print(tail(site.log))


@pytest.fixture(scope="session")
def tokens(airflow_site: Site) -> dict[str, str]:
    return {user: airflow_site.token(user) for user in ("admin", "analyst")}


@pytest.fixture(scope="session")
def artifacts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("XCOMSTORE_UI_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("ui-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    request.config.stash[ARTIFACTS_KEY] = folder
    return folder


def _browser_missing() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return None
    return f"browser tests need Chromium, chromedriver and selenium; missing {', '.join(missing)} (scripts/install-browser installs them)"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    reason = _browser_missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"UI test cannot run in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="xcomstore-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
        "--window-size=1280,800",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def log_in(driver: Any, site: Site, user: str, next_path: str) -> None:
    """Sign in through the Simple auth manager's login page, which then opens `next_path`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from .airflow_site import USERS

    driver.delete_all_cookies()
    driver.get(f"{site.url}/auth/login?next={quote(site.url + next_path, safe='')}")
    wait = WebDriverWait(driver, WAIT)
    wait.until(lambda d: d.find_elements(By.NAME, "username"))
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(USERS[user][1])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    target = site.url + next_path.split("?")[0]
    wait.until(lambda d: d.current_url.startswith(target))


def screenshot(driver: Any, folder: Path, name: str) -> Path:
    path = folder / name
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    readme = os.environ.get("XCOMSTORE_README_SCREENSHOTS")
    if readme:
        Path(readme).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(readme) / name)
    return path
