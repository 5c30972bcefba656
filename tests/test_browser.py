"""The demo in a real browser: headless Debian Chromium driven by Selenium.

Starts ``example/run_demo.py`` exactly as a user would (on free ports, with a temporary SQLite
database), logs in, joins rooms in three windows, sends messages and checks that they arrive
in every window of the same room and in no other room; then stops the demo with Ctrl-C and
checks that it exits cleanly, and that the page then says the server is unreachable. Along
the way: a long word wraps, an oversized frame (1009) is explained in the page, a refused room
name gets a styled 400 page. Screenshots in ``test-artifacts/``: ``browser-demo.png`` (desktop),
``browser-demo-phone.png`` (390 px), ``browser-refused.png``, ``browser-unreachable-phone.png``.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "test-artifacts"
SCREENSHOT = SCREENSHOTS / "browser-demo.png"
#: True when element ``arguments[0]``'s content fits its width (long words wrap).
WRAPS = "const e = document.getElementById(arguments[0]); return e.scrollWidth <= e.clientWidth;"
WAIT = 20
FAKE_SIGV4 = "AWS4-HMAC-SHA256 Credential=t/x, SignedHeaders=host, Signature=00"


@dataclass
class Demo:
    url: str
    process: subprocess.Popen[str]
    output: list[str]
    reader: threading.Thread


def _pump(stream: Any, lines: queue.Queue[str], sink: list[str]) -> None:
    for line in stream:
        sink.append(line)
        lines.put(line)


@pytest.fixture
def demo() -> Iterator[Demo]:
    port, gateway_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "example" / "run_demo.py"),
                "--port",
                str(port),
                "--gateway-port",
                str(gateway_port),
                "--db",
                str(Path(tmp) / "demo.sqlite3"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output: list[str] = []
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(process.stdout, lines, output), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        try:
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    pytest.fail("the demo did not start:\n" + "".join(output))
                if "Demo running: open" in line:
                    break
                if process.poll() is not None and lines.empty():
                    pytest.fail("the demo exited:\n" + "".join(output))
            yield Demo(
                url=f"http://127.0.0.1:{port}/", process=process, output=output, reader=reader
            )
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,800",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            yield driver
        finally:
            driver.quit()


def wait_until(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition)


def open_room(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_until(
        driver,
        lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "open",
    )
    wait_until(driver, lambda d: "joined #" in d.find_element(By.ID, "messages").text)


def messages(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#messages li.message .text")]


def notices(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#messages li.notice"))


def send(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "message-input")
    box.send_keys(text)
    driver.find_element(By.ID, "send-button").click()


def test_demo_chat_in_a_real_browser(demo: Demo, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    # Logging in: the room page redirects to Django's LoginView.
    browser.get(demo.url)
    wait_until(browser, lambda d: "/accounts/login/" in d.current_url)
    browser.find_element(By.NAME, "username").send_keys("demo")
    browser.find_element(By.NAME, "password").send_keys("demo-password")
    browser.find_element(By.ID, "login-button").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "chat"))
    open_room(browser, demo.url + "?channel=lobby")
    lobby = browser.current_window_handle

    browser.switch_to.new_window("window")
    open_room(browser, demo.url + "?channel=lobby")
    lobby_too = browser.current_window_handle

    browser.switch_to.new_window("window")
    open_room(browser, demo.url + "?channel=random")
    random_room = browser.current_window_handle

    browser.switch_to.window(lobby)
    send(browser, "hello from the lobby")
    wait_until(browser, lambda d: "hello from the lobby" in messages(d))
    browser.switch_to.window(lobby_too)
    wait_until(browser, lambda d: "hello from the lobby" in messages(d))

    browser.switch_to.window(random_room)
    send(browser, "only for #random")
    wait_until(browser, lambda d: "only for #random" in messages(d))
    assert "hello from the lobby" not in messages(browser)

    browser.switch_to.window(lobby)
    send(browser, "second lobby message")
    wait_until(browser, lambda d: "second lobby message" in messages(d))
    assert messages(browser) == ["hello from the lobby", "second lobby message"]
    author = browser.find_element(By.CSS_SELECTOR, "#messages li.message .author").text
    assert author == "demo"
    browser.switch_to.window(random_room)
    assert messages(browser) == ["only for #random"]

    # The gateway closes every socket (DeleteConnection): each window reconnects by itself
    # with a fresh token and keeps chatting.
    output = "".join(demo.output)
    management = re.search(r"@connections: (http://\S+)", output)
    assert management is not None
    statuses = []
    for connection_id in set(re.findall(r"CONNECT (\S+) -> 200", output)):
        request = urllib.request.Request(
            f"{management.group(1)}/@connections/{quote(connection_id, safe='')}",
            method="DELETE",
            headers={"Authorization": FAKE_SIGV4},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    # Three open windows; the page left after logging in closed its socket on "pagehide".
    assert sorted(statuses) == [204, 204, 204, 410], output
    for handle in (lobby, lobby_too, random_room):
        browser.switch_to.window(handle)
        wait_until(browser, lambda d: d.find_element(By.ID, "messages").text.count("joined #") == 2)
        wait_until(
            browser, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "open"
        )
    browser.switch_to.window(lobby_too)
    send(browser, "after reconnecting")
    browser.switch_to.window(lobby)
    wait_until(browser, lambda d: "after reconnecting" in messages(d))

    # A word longer than the list is wide wraps inside it (no sideways scrolling).
    browser.switch_to.window(lobby)
    long_word = "supercalifragilistic" * 15
    send(browser, long_word)
    wait_until(browser, lambda d: long_word in messages(d))
    assert browser.execute_script(WRAPS, "messages")

    # A frame over the gateway's 32 KB: it closes the socket with 1009, the page says why and
    # reconnects (the input's maxlength is removed, as a modified page or a paste tool would).
    browser.execute_script(
        "const i = document.getElementById('message-input');"
        "i.removeAttribute('maxlength'); i.value = 'x'.repeat(40000);"
    )
    browser.find_element(By.ID, "send-button").click()
    wait_until(browser, lambda d: "too large" in notices(d))
    wait_until(
        browser, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "open"
    )

    # An invalid room name is a styled 400 page naming it, not plain text.
    browser.switch_to.window(random_room)
    browser.get(demo.url + "?channel=bad%20room")
    refused = browser.find_element(By.ID, "refused")
    assert "bad room" in refused.text
    assert "room name" in refused.text
    assert refused.value_of_css_property("background-color") == "rgba(255, 255, 255, 1)"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / "browser-refused.png"))

    browser.switch_to.window(lobby)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
    # A phone's width (390 px): one column, nothing wider than the screen.
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
    )
    wait_until(browser, lambda d: d.execute_script("return window.innerWidth") == 390)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    assert browser.execute_script(WRAPS, "messages")
    phone = SCREENSHOTS / "browser-demo-phone.png"
    assert browser.save_screenshot(str(phone))
    assert phone.stat().st_size > 10_000

    # Ctrl-C stops the demo cleanly: every socket closed, $disconnects delivered, exit 0.
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=30) == 0, "".join(demo.output)
    # The reader ends at EOF: joining it (not a fixed sleep) guarantees every last line is in.
    demo.reader.join(30)
    assert not demo.reader.is_alive()
    output = "".join(demo.output)
    assert "Demo stopped." in output
    assert "Traceback" not in output
    # The page says the server is gone instead of spinning silently.
    wait_until(browser, lambda d: "Cannot " in notices(d))
    assert browser.save_screenshot(str(SCREENSHOTS / "browser-unreachable-phone.png"))
