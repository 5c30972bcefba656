"""The broadcast benchmark runs end to end and writes the documented JSON (a tiny run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_benchmark_smoke_run_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "BENCH_SQLITE_PATH": str(tmp_path / "bench.sqlite3")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.broadcast",
            "--recipients",
            "150",
            "--repeat",
            "1",
            "--latency-ms",
            "1",
            "--sample-threads",
            "20",
            "--sample-sequential",
            "3",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "sampled: 20 posts" in completed.stdout
    data = json.loads(out.read_text())
    assert set(data) == {"params", "results", "ratios"}
    assert set(data["results"]) == {
        "asend_message",
        "asend_message_telemetry",
        "asend_message_standard",
        "predecessor_sequential",
        "predecessor_threads",
        "aiobotocore_raw",
        "signed_aiohttp",
    }
    for result in data["results"].values():
        assert set(result) == {"msgs_per_s", "cpu_us_per_msg", "peak_rss_mb"}
        assert result["msgs_per_s"] > 0
        assert result["cpu_us_per_msg"] > 0
    assert set(data["ratios"]) == {
        "vs_predecessor_threads",
        "vs_aiobotocore_raw",
        "cpu_vs_signed_aiohttp",
        "telemetry_cpu_vs_off",
    }
    assert data["params"]["recipients"] == 150
