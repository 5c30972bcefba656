"""The browser client's logic under ``node --test`` (tests/js/*.test.mjs), with fakes of the
WebSocket, the token endpoint and the clock: backoff bounds, dedupe, hold + re-subscribe + gap,
rotation overlap, ping. Skipped when node (>= 18, for ``node --test``) is absent."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JS_TESTS = sorted((ROOT / "tests" / "js").glob("*.test.mjs"))
CLIENT = ROOT / "aws_ws_async" / "static" / "aws_ws_async" / "client.js"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    match = re.match(r"v(\d+)", version.stdout)
    if match is None or int(match[1]) < 18:
        pytest.skip(f"node {version.stdout.strip()} has no --test runner")
    return node


def test_client_unit_tests_pass_under_node() -> None:
    node = _node()
    assert JS_TESTS, "tests/js/*.test.mjs are missing"
    result = subprocess.run(
        [node, "--test", *map(str, JS_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.search(r"^# pass (\d+)", result.stdout, re.M)
    failed = re.search(r"^# fail (\d+)", result.stdout, re.M)
    assert passed is not None, result.stdout
    assert int(passed[1]) >= 10, result.stdout
    assert failed is not None, result.stdout
    assert int(failed[1]) == 0, result.stdout


def test_client_is_a_plain_module_without_imports_or_globals() -> None:
    """No build step and no dependency: nothing imported, nothing assigned to window."""
    source = CLIENT.read_text()
    assert not re.search(r"^\s*import\s", source, re.M)
    assert "require(" not in source
    assert not re.search(r"\bwindow\.\w+\s*=", source)
    assert "export class ChannelsClient" in source
    node = _node()
    subprocess.run([node, "--check", str(CLIENT)], check=True, timeout=30)


def test_client_ships_as_package_data_with_its_declarations() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"static/**/*"' in pyproject
    declarations = CLIENT.with_suffix(".d.ts").read_text()
    for name in ("ChannelsClient", "ChannelsClientOptions", "MessageDetail", "GapDetail"):
        assert name in declarations
