"""/docs and /redoc in a real headless Chromium, with the internet made unreachable.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and the
``selenium`` package (dev dependency); skipped with the reason when they are missing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kit.testing import mint_token
from tests.kit.openapi.server import FEATURE_APP, Server, serve, service_apps

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)",
    ),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs the selenium package")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Tall enough that an operation below the Authorize bar is on screen when clicked.
    "--window-size=1280,2000",
    # Offline: every host but loopback fails to resolve, so a CDN request would show as failed.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
TIMEOUT = 30
SECURED_APP = "tests.kit.openapi.secured_app:app"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


class Network:
    """What the page asked for, read from Chromium's DevTools events."""

    def __init__(self, driver: Any, origin: str) -> None:
        self.driver = driver
        self.origin = origin
        self.urls: dict[str, str] = {}
        self.problems: list[str] = []
        self.responses: list[tuple[str, int]] = []
        self.read()  # forget what earlier pages did

    def read(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message["method"], message.get("params", {})
            if method == "Network.requestWillBeSent":
                # Only what our pages asked for, not the browser's own new-tab page.
                if params.get("documentURL", "").startswith(self.origin):
                    self.urls[params["requestId"]] = params["request"]["url"]
            elif params.get("requestId") not in self.urls:
                continue
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                url = self.urls[params["requestId"]]
                self.problems.append(f"{url}: {params.get('errorText')}")
            elif method == "Network.responseReceived":
                response = params["response"]
                self.responses.append((response["url"], response["status"]))
                if response["status"] >= 400:
                    self.problems.append(f"{response['url']}: HTTP {response['status']}")


def operations(server: Server) -> list[tuple[str, str, dict[str, Any]]]:
    document = httpx.get(server.url + "/openapi.json").json()
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def simple_get(ops: list[tuple[str, str, dict[str, Any]]]) -> str:
    """The path of a GET that needs no input and documents a 200: the one to try out."""
    for method, path, operation in sorted(ops, key=lambda op: op[1]):
        required = any(p["required"] for p in operation.get("parameters", []))
        if method == "get" and "200" in operation["responses"] and not required:
            return path
    raise AssertionError("no GET operation without required input")


def wait(driver: Any, until: Callable[[Any], Any]) -> Any:
    return WebDriverWait(driver, TIMEOUT).until(until)


APPS = [FEATURE_APP, *service_apps()]


@pytest.mark.parametrize("app", APPS)
def test_swagger_ui_lists_every_operation_and_tries_one_out(
    app: str, browser: Any, running: Callable[[str], Server]
) -> None:
    server = running(app)
    ops = operations(server)
    network = Network(browser, server.url)
    browser.get(server.url + "/docs")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(ops))
    blocks = browser.find_elements(By.CSS_SELECTOR, ".opblock")
    listed = {
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.lower(),
            block.find_element(By.CSS_SELECTOR, ".opblock-summary [data-path]").get_attribute(
                "data-path"
            ),
        )
        for block in blocks
    }
    assert listed == {(method, path) for method, path, _ in ops}

    path = simple_get(ops)
    block = next(
        b
        for b in blocks
        if b.find_element(By.CSS_SELECTOR, ".opblock-summary [data-path]").get_attribute(
            "data-path"
        )
        == path
        and "opblock-get" in (b.get_attribute("class") or "")
    )
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    status = try_out(browser, block)
    assert status.startswith("200"), status
    network.read()
    called = [url for url, status in network.responses if status == 200]
    assert any(url.split("?")[0] == server.url + path for url in called)  # really called it
    assert network.problems == []
    assert all(
        url.startswith(server.url) for url in network.urls.values() if url.startswith("http")
    )


@pytest.mark.parametrize("app", APPS)
def test_redoc_lists_every_operation(
    app: str, browser: Any, running: Callable[[str], Server]
) -> None:
    server = running(app)
    ops = operations(server)
    network = Network(browser, server.url)
    browser.get(server.url + "/redoc")
    selector = '[data-section-id*="operation/"]'
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, selector)) >= len(ops))
    sections = {
        element.get_attribute("data-section-id").rsplit("operation/", 1)[1]
        for element in browser.find_elements(By.CSS_SELECTOR, selector)
    }
    assert sections == {operation["operationId"] for _, _, operation in ops}
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-role='redoc-error'], .redoc-error")
    network.read()
    assert network.problems == []
    assert all(
        url.startswith(server.url) for url in network.urls.values() if url.startswith("http")
    )


def test_cdn_pages_fail_offline_which_the_check_sees(browser: Any, tmp_path: Path) -> None:
    """The same check on KIT_DOCS_CDN=1 pages: the CDN is unreachable here, so it must fail."""
    server = serve(FEATURE_APP, tmp_path, KIT_DOCS_CDN="1")
    try:
        for page in ("/docs", "/redoc"):
            network = Network(browser, server.url)
            browser.get(server.url + page)
            wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
            network.read()
            assert any("cdn.jsdelivr.net" in problem for problem in network.problems), page
    finally:
        server.stop()


def try_out(browser: Any, block: Any) -> str:
    """Press "Try it out" (once) and "Execute" on an expanded operation; its status text."""
    button = wait(browser, lambda d: block.find_element(By.CSS_SELECTOR, ".try-out__btn"))
    if "cancel" not in (button.get_attribute("class") or ""):
        button.click()
    for old in block.find_elements(By.CSS_SELECTOR, ".btn-clear"):
        old.click()  # forget the previous response, so the wait below sees the new one
    wait(browser, lambda d: block.find_element(By.CSS_SELECTOR, ".execute")).click()
    status = wait(
        browser,
        lambda d: [
            cell.text
            for cell in block.find_elements(
                By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
            )
            if cell.text.strip()
        ],
    )
    return str(status[0]).strip()


def test_swagger_ui_authorize_then_try_it_out(browser: Any, tmp_path: Path) -> None:
    """Unauthorized "Try it out" gets 401; after "Authorize" with a token, the same gets 200."""
    server = serve(SECURED_APP, tmp_path)  # the session's KIT_AUTH_JWT_SECRET, inherited
    try:
        browser.get(server.url + "/docs")
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
        block = next(
            b
            for b in browser.find_elements(By.CSS_SELECTOR, ".opblock")
            if b.find_element(By.CSS_SELECTOR, ".opblock-summary [data-path]").get_attribute(
                "data-path"
            )
            == "/me"
        )
        block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        assert try_out(browser, block).startswith("401")

        browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
        field = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".modal-ux input"))
        field.send_keys(mint_token(scopes=["profile"], subject="ann"))
        browser.find_element(By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper .authorize").click()
        browser.find_element(By.CSS_SELECTOR, ".modal-ux .btn-done").click()

        assert try_out(browser, block).startswith("200")
        table = block.find_element(By.CSS_SELECTOR, ".live-responses-table")
        assert '"sub": "ann"' in table.text
    finally:
        server.stop()
