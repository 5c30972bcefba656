"""Housekeeping commands: what they delete, what they keep, and the counts they print."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aws_ws_async.models import ConnectionRateLimit, WebSocketSession, WebSocketToken

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def make_session(
    cid: str, *, connected: bool = True, age: timedelta = timedelta(0), **kw: Any
) -> WebSocketSession:
    at = timezone.now() - age
    return WebSocketSession.objects.create(
        connection_id=cid,
        connected=connected,
        connected_at=at,
        last_seen_at=at,
        disconnected_at=None if connected else at,
        **kw,
    )


@pytest.fixture
def sessions() -> dict[str, WebSocketSession]:
    return {
        "live": make_session("live="),
        "old_live": make_session("oldlive=", age=timedelta(hours=3)),  # past the 2 h cap
        "idle": make_session("idle=", age=timedelta(minutes=30)),  # idle past 10 min
        "gone_recent": make_session("gone1=", connected=False, age=timedelta(hours=1)),
        "gone_old": make_session("gone2=", connected=False, age=timedelta(days=10)),
    }


def remaining() -> set[str]:
    return set(WebSocketSession.objects.values_list("connection_id", flat=True))


def test_clear_deletes_only_disconnected(sessions: dict[str, WebSocketSession]) -> None:
    out = run("clearWebSocketSessions")
    assert "Deleted 2 disconnected session(s)." in out
    assert remaining() == {"live=", "oldlive=", "idle="}


def test_clear_with_stale_marks_then_deletes(sessions: dict[str, WebSocketSession]) -> None:
    out = run("clearWebSocketSessions", "--stale")
    assert "Marked 2 stale session(s) disconnected." in out
    assert "Deleted 4 disconnected session(s)." in out
    assert remaining() == {"live="}


def test_stale_rows_get_reason_and_survive_with_age_limit(
    sessions: dict[str, WebSocketSession],
) -> None:
    out = run("clearWebSocketSessions", "--stale", "--older-than-days", "7")
    assert "Marked 2 stale session(s) disconnected." in out
    assert "Deleted 1 disconnected session(s) disconnected more than 7 day(s) ago." in out
    assert remaining() == {"live=", "oldlive=", "idle=", "gone1="}
    stale = WebSocketSession.objects.get(connection_id="idle=")
    assert (stale.connected, stale.disconnect_reason) == (False, "stale")
    assert stale.disconnected_at is not None
    assert WebSocketSession.objects.get(connection_id="live=").connected


def test_older_than_days_counts_rows_without_disconnected_at(
    sessions: dict[str, WebSocketSession],
) -> None:
    legacy = make_session("legacy=", connected=False)
    WebSocketSession.objects.filter(pk=legacy.pk).update(
        disconnected_at=None, updated_on=timezone.now() - timedelta(days=30)
    )
    out = run("clearWebSocketSessions", "--older-than-days", "7")
    assert "Deleted 2 disconnected session(s)" in out
    assert "legacy=" not in remaining()


def test_dry_run_changes_nothing(sessions: dict[str, WebSocketSession]) -> None:
    before = list(WebSocketSession.objects.order_by("pk").values_list("connection_id", "connected"))
    out = run("clearWebSocketSessions", "--stale", "--dry-run")
    assert "Would mark 2 stale session(s) disconnected." in out
    assert "Would delete 4 disconnected session(s)." in out
    out = run("clearWebSocketSessions", "--stale", "--dry-run", "--older-than-days", "7")
    assert "Would delete 1 disconnected session(s)." in out
    assert (
        list(WebSocketSession.objects.order_by("pk").values_list("connection_id", "connected"))
        == before
    )


def test_small_batches_delete_everything(sessions: dict[str, WebSocketSession]) -> None:
    WebSocketSession.objects.bulk_create(
        WebSocketSession(connection_id=f"bulk{i}=", connected=False) for i in range(7)
    )
    out = run("clearWebSocketSessions", "--stale", "--batch-size", "2")
    assert "Marked 2 stale" in out
    assert "Deleted 11 disconnected session(s)." in out
    assert remaining() == {"live="}


@pytest.mark.parametrize("args", [["--older-than-days", "-1"], ["--batch-size", "0"]])
def test_clear_rejects_bad_numbers(args: list[str]) -> None:
    # Matched on the option's own message: an unknown option is a CommandError too.
    with pytest.raises(CommandError, match=f"^{args[0]} must be "):
        run("clearWebSocketSessions", *args)


# --- cleanupWebSocketTokens -------------------------------------------------------------------


def make_token(user: Any, n: int, age: timedelta, used: bool = False) -> WebSocketToken:
    created = timezone.now() - age
    return WebSocketToken.objects.create(
        token=f"{n:064x}",
        user=user,
        session_key_hash="0" * 64,
        created_at=created,
        expires_at=created + timedelta(seconds=60),
        used=used,
    )


def make_attempt(age: timedelta) -> ConnectionRateLimit:
    return ConnectionRateLimit.objects.create(
        ip_address="198.51.100.1", attempt_time=timezone.now() - age
    )


@pytest.fixture
def tokens_and_attempts(user: Any) -> None:
    make_token(user, 1, timedelta(seconds=10))
    make_token(user, 2, timedelta(seconds=200), used=True)
    make_token(user, 3, timedelta(seconds=400))
    make_token(user, 4, timedelta(hours=5), used=True)
    make_attempt(timedelta(minutes=1))
    make_attempt(timedelta(days=3))
    make_attempt(timedelta(days=8))


def test_cleanup_defaults(tokens_and_attempts: None) -> None:
    out = run("cleanupWebSocketTokens")
    # Default token age max(300, token_expiry_seconds=60) = 300 s; retention 7 days.
    assert "Deleted 2 token(s) older than 300 second(s)." in out
    assert "Deleted 1 connection attempt(s) older than 7 day(s)." in out
    assert WebSocketToken.objects.count() == 2
    assert ConnectionRateLimit.objects.count() == 2


def test_cleanup_defaults_follow_settings(tokens_and_attempts: None, settings: Any) -> None:
    settings.AWS_WS_ASYNC = {"token_expiry_seconds": 3600, "rate_limit_retention_days": 2}
    out = run("cleanupWebSocketTokens")
    assert "Deleted 1 token(s) older than 3600 second(s)." in out
    assert "Deleted 2 connection attempt(s) older than 2 day(s)." in out


def test_cleanup_explicit_ages(tokens_and_attempts: None) -> None:
    out = run(
        "cleanupWebSocketTokens", "--token-age", "5", "--rate-limit-age", "0", "--batch-size", "1"
    )
    assert "Deleted 4 token(s) older than 5 second(s)." in out
    assert "Deleted 3 connection attempt(s) older than 0 day(s)." in out
    assert not WebSocketToken.objects.exists()
    assert not ConnectionRateLimit.objects.exists()


def test_cleanup_dry_run(tokens_and_attempts: None) -> None:
    out = run("cleanupWebSocketTokens", "--dry-run")
    assert "Would delete 2 token(s)" in out
    assert "Would delete 1 connection attempt(s)" in out
    assert WebSocketToken.objects.count() == 4
    assert ConnectionRateLimit.objects.count() == 3


@pytest.mark.parametrize(
    "args", [["--token-age", "-5"], ["--rate-limit-age", "-1"], ["--batch-size", "0"]]
)
def test_cleanup_rejects_bad_numbers(args: list[str]) -> None:
    with pytest.raises(CommandError, match=f"^{args[0]} must be "):
        run("cleanupWebSocketTokens", *args)


def test_batches_issue_bounded_statements() -> None:
    """Batch deletes: the number of statements follows rows / batch size, and no batch is
    ever larger than asked (a huge table is never loaded at once)."""
    from aws_ws_async.management.commands._batching import delete_in_batches

    ConnectionRateLimit.objects.bulk_create(
        ConnectionRateLimit(
            ip_address="192.0.2.1", attempt_time=timezone.now() - timedelta(days=30)
        )
        for _ in range(25)
    )
    with CaptureQueriesContext(connection) as captured:
        assert delete_in_batches(ConnectionRateLimit.objects.all(), batch_size=10) == 25
    deletes = [q["sql"] for q in captured if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 10 + 10 + 5: a short batch ends the loop
    # Each statement touches at most one batch (LIMIT in a subquery, or at most 10 ids).
    assert all("LIMIT 10" in d or d.count(",") < 10 for d in deletes)
