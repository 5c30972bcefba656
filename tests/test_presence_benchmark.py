"""Smoke run of ``python -m benchmarks.presence`` (tiny, SQLite): it runs and says one query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_presence_benchmark_smoke(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BENCH_SQLITE_PATH": str(tmp_path / "bench.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
    }
    args = ["--db", "sqlite", "--subscriptions", "60", "--users", "12", "--repeat", "2"]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.presence", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    results = json.loads(next(x for x in out.splitlines() if x.startswith("JSON {"))[5:])
    assert results["presence"]["queries"] == 1
    assert results["presence"]["result"] == {"users": 12, "connections": 60}
    assert results["user_presence"]["result"] == {"mine": 5, "users": 12}
    assert results["user_connections"]["result"] == 5
    assert 'presence("big")' in out
