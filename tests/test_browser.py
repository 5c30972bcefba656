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

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_chromium import headless_chromium
from tests.fixtures_demo import Demo, running_demo

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts"
SCREENSHOT = SCREENSHOTS / "browser-demo.png"
#: True when element ``arguments[0]``'s content fits its width (long words wrap).
WRAPS = "const e = document.getElementById(arguments[0]); return e.scrollWidth <= e.clientWidth;"
WAIT = 20


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with running_demo(tmp_path / "demo.sqlite3") as started:
        yield started


@pytest.fixture
def browser() -> Iterator[Any]:
    with headless_chromium("1100,800") as driver:
        yield driver


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
    statuses = demo.delete_connections(set(re.findall(r"CONNECT (\S+) -> 200", output)))
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
