"""The interactive docs in a real browser: headless Chromium (Debian's package) driven by
selenium through Debian's chromedriver. A student logs in, authorizes and subscribes to a
class through Swagger UI's own "Try it out" forms, and the page shows the 201.

The browser is installed by infra/ensure_browser.sh (also run by `make test`). Under CI the
test must run; elsewhere it skips, saying why, only when the browser cannot be installed."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.processes import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "docs-subscribe.png"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]
WAIT_SECONDS = 30


def _ensure_browser() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    installed = subprocess.run(
        ["bash", str(ROOT / "infra" / "ensure_browser.sh")], capture_output=True, text=True, timeout=900, check=False
    )
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    reason = f"headless Chromium could not be installed: {installed.stderr.strip() or installed.returncode}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    _ensure_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT_SECONDS)


def _replace_text(field: WebElement, text: str) -> None:
    """Type into a React-controlled field, as a person would (setting .value is not seen)."""
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(text)


def _click(driver: WebDriver, element: WebElement) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def _open_and_try(driver: WebDriver, operation_id: str) -> WebElement:
    """Expand one operation (Swagger UI's id: operations-{tag}-{operationId}) and press "Try it out"."""
    block = _wait(driver).until(ready.presence_of_element_located((By.ID, operation_id)))
    _click(driver, block.find_element(By.CSS_SELECTOR, ".opblock-summary-control"))
    _click(driver, _wait(driver).until(lambda _: block.find_element(By.CSS_SELECTOR, ".try-out__btn")))
    return block


def _execute(driver: WebDriver, block: WebElement) -> tuple[int, dict]:
    """Press Execute and read the status and JSON body the page shows."""
    _click(driver, block.find_element(By.CSS_SELECTOR, ".btn.execute"))
    status = _wait(driver).until(
        lambda _: block.find_element(By.CSS_SELECTOR, ".live-responses-table .response .response-col_status")
    )
    body = block.find_element(By.CSS_SELECTOR, ".live-responses-table .response .response-col_description pre")
    return int(status.text.split()[0]), json.loads(body.text)


def _fill_parameter(block: WebElement, name: str, value: str) -> None:
    _replace_text(block.find_element(By.CSS_SELECTOR, f'tr[data-param-name="{name}"] input'), value)


def _fill_body(block: WebElement, body: dict) -> None:
    _replace_text(block.find_element(By.CSS_SELECTOR, "textarea.body-param__text"), json.dumps(body))


def _authorize(driver: WebDriver, token: str) -> None:
    _click(driver, driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .btn.authorize"))
    field = _wait(driver).until(ready.visibility_of_element_located((By.ID, "auth-bearer-value")))
    _replace_text(field, token)
    dialog = driver.find_element(By.CSS_SELECTOR, ".modal-ux")
    dialog.find_element(By.CSS_SELECTOR, "button.modal-btn.auth.authorize").click()
    _wait(driver).until(lambda _: dialog.find_element(By.CSS_SELECTOR, "button[aria-label='Remove authorization']"))
    dialog.find_element(By.CSS_SELECTOR, "button.btn-done").click()
    _wait(driver).until(ready.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))


def test_a_student_subscribes_through_swagger_ui(fresh, browser: WebDriver) -> None:
    browser.get(f"{fresh.url}/docs")

    login = _open_and_try(browser, "operations-auth-login_post")
    _fill_body(login, {"username": "student79", "password": "titan"})
    status, body = _execute(browser, login)
    assert status == 200, body
    _click(browser, login.find_element(By.CSS_SELECTOR, ".opblock-summary-control"))

    _authorize(browser, body["access_token"])

    subscribe = _open_and_try(browser, "operations-students-subscribe_post")
    _fill_parameter(subscribe, "sid", "79")
    _fill_parameter(subscribe, "cid", "4")
    _fill_parameter(subscribe, "email", "student79@example.edu")
    # The body form is prefilled with an example; a body wins per field, so send an empty one.
    _fill_body(subscribe, {})
    try:
        status, body = _execute(browser, subscribe)
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        live = subscribe.find_elements(By.CSS_SELECTOR, ".live-responses-table")
        if live:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", live[0])
        browser.save_screenshot(str(SCREENSHOT))

    assert status == 201, body
    assert body["message"] == "Subscription successful"
    assert body["subscription"]["student_id"] == 79
    assert body["subscription"]["class_id"] == 4
    assert body["subscription"]["email"] == "student79@example.edu"
    request_url = subscribe.find_element(By.CSS_SELECTOR, ".request-url pre").text
    assert request_url.endswith("/students/79/subscribe/4?email=student79%40example.edu"), request_url
