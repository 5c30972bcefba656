"""docs/tutorial.md, followed by a machine: every marked block of the page, in order, in a temp dir.

The page marks its blocks: ``<!-- tutorial-run -->`` (each line is a shell command; ``cd`` moves
on), ``<!-- tutorial-file: PATH -->`` / ``<!-- tutorial-append: PATH -->`` (the block's text is
written to / appended to PATH, relative to the current directory) and
``<!-- tutorial-background: TEXT -->`` (the command keeps running, like a terminal of its own;
the next step waits until it printed TEXT). Nothing else is run, so the page cannot drift from
what passes. The only liberty taken: the tutorial's ports 8000/8001 are replaced by free ones
(and ``runwsgateway`` gets ``--port``/``--target`` for them), so parallel runs do not clash.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "tutorial.md"
#: The whole tutorial must run in about a minute; each wait is bounded well inside it.
DEADLINE = 90.0
MARKER = re.compile(
    r"<!-- tutorial-(run|file|append|background)(?::\s*(.*?))?\s*-->\s*\n```[^\n]*\n(.*?)\n```",
    re.S,
)


@dataclass
class Step:
    kind: str
    argument: str
    text: str


def steps(markdown: str) -> list[Step]:
    return [
        Step(m.group(1), (m.group(2) or "").strip(), m.group(3)) for m in MARKER.finditer(markdown)
    ]


@dataclass
class Background:
    command: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def text(self) -> str:
        return "".join(self.output)

    def wait_for(self, needle: str, until: float) -> None:
        while needle not in self.text():
            if self.process.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"{self.command!r} exited:\n{self.text()}")
            if time.monotonic() > until:
                raise AssertionError(f"{self.command!r} never printed {needle!r}:\n{self.text()}")
            time.sleep(0.05)


@dataclass
class Terminal:
    """The reader's shell: a current directory, an environment, background processes."""

    cwd: Path
    env: dict[str, str]
    ports: dict[str, str]
    started: float = field(default_factory=time.monotonic)
    background: list[Background] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def until(self) -> float:
        return self.started + DEADLINE

    def localize(self, text: str) -> str:
        for old, new in self.ports.items():
            text = text.replace(old, new)
        return text

    def run(self, line: str) -> str:
        line = self.localize(line)
        if line.startswith("cd "):
            self.cwd = self.cwd / shlex.split(line)[1]
            return ""
        remaining = max(self.until() - time.monotonic(), 1.0)
        result = subprocess.run(
            line,
            shell=True,
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=remaining,
            check=False,
        )
        self.log.append(f"$ {line}\n{result.stdout}{result.stderr}")
        assert result.returncode == 0, self.log[-1]
        return result.stdout

    def start(self, line: str, ready: str) -> Background:
        line = self.localize(line)
        if "runwsgateway" in line and "--port" not in line:
            line += (
                f" --port {self.ports['8001']} --target http://127.0.0.1:{self.ports['8000']}/ws/"
            )
        process = subprocess.Popen(
            shlex.split(line),
            cwd=self.cwd,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        job = Background(line, process)
        self.background.append(job)
        job.wait_for(ready, self.until())
        return job

    def stop_all(self) -> None:
        for job in reversed(self.background):
            if job.process.poll() is None:
                os.killpg(job.process.pid, signal.SIGINT)
        for job in reversed(self.background):
            try:
                job.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(job.process.pid, signal.SIGKILL)
                job.process.wait()


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    venv_bin = Path(sys.executable).parent
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AWS_", "PYTEST", "AWS_WS_ASYNC"))
    }
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONUNBUFFERED="1",
    )
    ports = {"8000": str(free_port()), "8001": str(free_port())}
    shell = Terminal(cwd=tmp_path, env=env, ports=ports)
    yield shell
    shell.stop_all()


def http_get(opener: urllib.request.OpenerDirector, url: str) -> tuple[int, str, str]:
    with opener.open(url, timeout=10) as response:
        return response.status, response.geturl(), response.read().decode()


def test_the_tutorial_runs_from_startproject_to_a_broadcast(terminal: Terminal) -> None:
    page = steps(PAGE.read_text())
    kinds = [step.kind for step in page]
    assert kinds.count("background") == 3, kinds  # uvicorn, runwsgateway, the client
    outputs: list[str] = []
    first_message_at: float | None = None
    for step in page:
        if step.kind == "run":
            for line in step.text.splitlines():
                if line.strip():
                    outputs.append(terminal.run(line.strip()))
        elif step.kind in {"file", "append"}:
            target = terminal.cwd / step.argument
            target.parent.mkdir(parents=True, exist_ok=True)
            text = terminal.localize(step.text) + "\n"
            with target.open("a" if step.kind == "append" else "w") as handle:
                handle.write(text)
        else:
            job = terminal.start(step.text.strip(), step.argument)
            if "client.py" in job.command:
                first_message_at = time.monotonic() - terminal.started
    # Step 11: the client heard its own message, broadcast by the view through the emulator.
    client = next(job for job in terminal.background if "client.py" in job.command)
    assert 'received {"room":"lobby","message":"hello from Python"}' in client.text()
    # Step 12: the shell's broadcast reached the one open socket, and the client printed it.
    assert outputs[-1].split()[-1] == "1", terminal.log[-1]
    client.wait_for('received {"message":"hello from the shell"}', terminal.until())
    # Step 10: one log line per integration call (printed once).
    gateway = next(job for job in terminal.background if "runwsgateway" in job.command)
    connects = [line for line in gateway.text().splitlines() if "CONNECT" in line]
    assert len(connects) == 1, gateway.text()
    # Steps 7 and 13: the admin's CSS under uvicorn; the room page behind the admin login.
    base = f"http://127.0.0.1:{terminal.ports['8000']}"
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, _, css = http_get(opener, f"{base}/static/admin/css/base.css")
    assert status == 200
    assert "body" in css
    status, landed, login_page = http_get(opener, f"{base}/")
    assert landed.startswith(f"{base}/admin/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page)
    assert csrf is not None
    form = urllib.parse.urlencode(
        {
            "username": "alice",
            "password": "alice-password-1",
            "csrfmiddlewaretoken": csrf.group(1),
            "next": "/",
        }
    ).encode()
    request = urllib.request.Request(
        f"{base}/admin/login/?next=/", data=form, headers={"Referer": base}
    )
    with opener.open(request, timeout=10) as response:
        room = response.read().decode()
    assert f"ws://127.0.0.1:{terminal.ports['8001']}/local?channel=lobby" in room
    elapsed = time.monotonic() - terminal.started
    print(f"tutorial: first message after {first_message_at:.1f} s, all steps in {elapsed:.1f} s")
