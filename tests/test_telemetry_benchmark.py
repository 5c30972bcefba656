"""``benchmarks.broadcast --telemetry`` runs end to end and writes its JSON (a tiny run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_telemetry_benchmark_smoke_run(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("prometheus_client")
    out = tmp_path / "telemetry.json"
    env = {**os.environ, "BENCH_SQLITE_PATH": str(tmp_path / "bench.sqlite3")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "benchmarks.broadcast", "--telemetry"]
    command += ["--recipients", "120", "--repeat", "1", "--latency-ms", "1"]
    command += ["--loop-sessions", "20", "--alt-blocks", "4", "--alt-block", "5"]
    command += ["--json", str(out)]
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data["results"]) == {
        "asend_message",
        "asend_message_telemetry",
        "asend_message_every_span",
        "session_loop",
        "session_loop_telemetry",
    }
    pairs = {"asend_message", "asend_message_every_span", "session_loop"}
    assert set(data["ratios"]) == set(data["paired_ratios"]) == pairs
    assert all(ratio > 0 for ratio in data["ratios"].values())
    assert all(len(runs) == 1 for runs in data["runs"].values())
    assert "on/off, paired" in completed.stdout
    assert "(target <= 1.05)" in completed.stdout
    for name in ("session_loop", "asend_message", "session_loop_sampled_10pct"):
        alt = data["alternating"][name]
        assert alt["messages"]["off"] == alt["messages"]["on"] > 0
        assert len(alt["per_block_us"]["on"]) == 2
        assert alt["ratio"] > 0
    assert "toggled every block" in completed.stdout
    costs = data["hook_costs_us"]
    assert costs["single_send_on_us"] > costs["single_send_off_us"] > 0
    assert costs["attempt_on_us"] > costs["attempt_off_us"]
