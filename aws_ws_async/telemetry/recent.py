"""Recent reports and refusals kept in this process's memory, for the admin dashboard.

Bounded (``MAX_REPORTS`` reports, refusal counts by reason), guarded by one lock because sync
broadcasts finish in callers' threads while async ones finish on loops.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

MAX_REPORTS = 1000

_lock = threading.Lock()
_reports: deque[dict[str, Any]] = deque(maxlen=MAX_REPORTS)
_refusals: Counter[tuple[str, str]] = Counter()


def add_report(fields: dict[str, Any]) -> None:
    with _lock:
        _reports.append({**fields, "ws_finished_at": time.time()})


def add_refusal(route: str, reason: str) -> None:
    with _lock:
        _refusals[(route, reason)] += 1


def recent_reports(since_seconds: float = 3600.0) -> list[dict[str, Any]]:
    """Fields of the reports finished in the last ``since_seconds`` (oldest first)."""
    cutoff = time.time() - since_seconds
    with _lock:
        return [r for r in _reports if r["ws_finished_at"] >= cutoff]


def recent_refusals() -> dict[tuple[str, str], int]:
    """Refusals since the process started, by ``(route, reason code)``."""
    with _lock:
        return dict(_refusals)


def clear() -> None:
    """Forget everything (tests)."""
    with _lock:
        _reports.clear()
        _refusals.clear()
