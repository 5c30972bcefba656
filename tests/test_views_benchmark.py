"""``benchmarks.request_server`` runs end to end (a tiny run), and its profile arithmetic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import request_profile, request_server

ROOT = Path(__file__).resolve().parent.parent
HEAD = 'process 1:"python -m uvicorn"'


def test_a_sample_is_charged_to_its_innermost_component(tmp_path: Path) -> None:
    query = ";".join(
        [
            HEAD,
            "_worker (concurrent/futures/thread.py:81)",
            "load_session (aws_ws_async/views/session_loader.py:120)",
            "Cursor.execute (psycopg/cursor.py:97)",
        ]
    )
    hop = ";".join([HEAD, "SyncToAsync.__call__ (asgiref/sync.py:567)"])
    view = ";".join([HEAD, "WebSocketViewBase.post (aws_ws_async/views/base.py:260)"])
    unknown = ";".join([HEAD, "<module> (something_else.py:1)"])
    raw = tmp_path / "fast-message.txt"
    raw.write_text(f"{query} 6\n{hop} 2\n{view} 1\n{unknown} 1\nnot a sample line\n")
    shares = request_profile.breakdown(raw)
    assert shares == {
        "ORM + database driver": 60.0,
        "thread hops (asgiref, executor)": 20.0,
        "our view and checks": 10.0,
        request_profile.OTHER: 10.0,
    }
    assert request_profile.breakdown(tmp_path / "missing.txt") == {}


def test_the_summary_sets_the_fast_routes_against_targets_and_floors() -> None:
    def row(cpu: float) -> dict[str, float]:
        return {"cpu_ms_per_request": cpu}

    results = {
        "fast": {"message": row(1.2), "connect": row(5.0)},
        "sync": {"message": row(3.6), "baseline": row(0.6)},
        "bare": {"baseline": row(0.8)},
    }
    summary = request_server.summarize(results)
    assert set(summary) == {"message", "connect"}
    message = summary["message"]
    assert message["meets_target"] is True
    assert message["per_core_rate_vs_sync"] == pytest.approx(3.0)
    assert message["meets_rate_target"] is True
    assert message["x_async_floor_no_middleware"] == pytest.approx(1.5)
    assert message["x_sync_floor_middleware"] == pytest.approx(2.0)
    assert message["x_async_floor_middleware"] is None  # no full mode in this run
    assert summary["connect"]["meets_target"] is False
    assert summary["connect"]["per_core_rate_vs_sync"] is None


SCENARIOS = ("baseline", "message", "connect", "disconnect")


@pytest.mark.e2e
def test_request_server_smoke_run(tmp_path: Path) -> None:
    """uvicorn (fast entry point) and gunicorn (the sync baseline) on SQLite, a few requests of
    every route (uvloop and httptools when installed, else uvicorn's own loop and parser)."""
    out = tmp_path / "request_server.json"
    env = {**os.environ}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "benchmarks.request_server", "--db", "sqlite"]
    command += ["--modes", "fast", "sync", "--scenarios", *SCENARIOS]
    command += ["--requests", "20", "--warmup", "5", "--repeat", "1", "--concurrency", "2"]
    command += ["--json", str(out)]
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=110
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    data = json.loads(out.read_text())
    for mode in ("fast", "sync"):
        for scenario in SCENARIOS:
            measured = data["results"][mode][scenario]
            assert measured["non_200"] == 0
            assert measured["requests"] == 20
            assert measured["cpu_ms_per_request"] > 0
    assert data["summary"]["message"]["per_core_rate_vs_sync"] > 0
