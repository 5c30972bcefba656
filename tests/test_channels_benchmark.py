"""The channel benchmark (history off vs on) runs end to end and writes its JSON (a tiny run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_channels_benchmark_smoke_run_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "channels.json"
    env = {**os.environ, "BENCH_SQLITE_PATH": str(tmp_path / "bench.sqlite3")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "benchmarks.channels", "--recipients", "60"]
    command += ["--repeat", "2", "--latency-ms", "1", "--replay", "5", "--json", str(out)]
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "history on vs off" in completed.stdout
    data = json.loads(out.read_text())
    assert set(data) >= {"params", "results", "ratios", "runs", "replay", "record_cpu_us"}
    assert data["replay"]["frames"] == 5
    assert set(data["results"]) == {
        "publish_history_off",
        "publish_history_on",
        "for_channel_asend_message",
    }
    assert all(len(runs) == 2 for runs in data["runs"].values())
    assert data["ratios"]["history_on_cpu_vs_off"] > 0
