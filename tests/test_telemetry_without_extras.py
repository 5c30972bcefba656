"""Without the extras: the telemetry, dashboard and sending tests in a pytest run where
``opentelemetry`` and ``prometheus_client`` cannot be imported (``tests/no_extras_plugin.py``).

The tests that need an extra skip themselves (``importorskip``); everything else must pass:
QuerySet broadcasts and single sends (the engine's per-post hook is None), the dashboard, the scrape
view's 503 naming the extra. The run is in a subprocess so that the block cannot leak into
this process, where the extras are installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/test_telemetry_metrics_view.py",
    "tests/test_dashboard.py",
    "tests/test_telemetry.py",
    "tests/test_telemetry_posts.py",
    "tests/test_telemetry_shards.py",
    "tests/test_sending.py",
]


def test_telemetry_dashboard_and_delivery_tests_pass_without_the_extras() -> None:
    probe = "import tests.no_extras_plugin, importlib; importlib.import_module('{}')"
    for extra in ("opentelemetry.trace", "prometheus_client"):
        blocked = subprocess.run(
            [sys.executable, "-c", probe.format(extra)], cwd=ROOT, capture_output=True, text=True
        )
        assert "ModuleNotFoundError" in blocked.stderr, blocked.stderr  # really unimportable
    env = {**os.environ}
    env.pop("PYTEST_ADDOPTS", None)
    # A test database of its own: inheriting this run's id, the child would create, flush and
    # finally drop *this* run's test database (tests/settings.py names it after the run id).
    env["AWS_WS_ASYNC_TEST_RUN_ID"] = f"{os.getpid()}-no-extras"
    env.pop("AWS_WS_ASYNC_PG_TEST_NAME", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.no_extras_plugin", "-rs"]
    command += ["-p", "no:cacheprovider", *TESTS]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    tail = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    summary = done.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    skipped = int(re.search(r"(\d+) skipped", summary).group(1))  # type: ignore[union-attr]
    assert passed >= 10, summary  # the sending, dashboard and no-extras tests ran
    assert skipped >= 4, summary  # the OpenTelemetry/Prometheus modules skipped themselves
    assert "could not import 'opentelemetry" in done.stdout, done.stdout[-3000:]
    assert "could not import 'prometheus_client" in done.stdout  # the scrape test skipped
