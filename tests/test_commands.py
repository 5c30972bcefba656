"""Housekeeping commands: what they delete, what they keep, and the counts they print."""

from __future__ import annotations

import time
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


# --- commands that send or provision tell the truth in their exit status ----------------------


@pytest.mark.parametrize("name", ["send_websocket_message", "sendWebSocketMessage"])
def test_send_exits_non_zero_naming_failed_recipients(
    name: str, threaded_fault_settings: Any, threaded_fault_endpoint: Any
) -> None:
    from tests.fixtures_delivery import make_gateway, make_sessions

    ids = make_sessions(make_gateway(), 6)
    plan = threaded_fault_endpoint.plan
    plan.status_for = {ids[0]: 403}
    plan.server_error_ids, plan.server_error_first, plan.server_error_status = {ids[1]}, 99, 500
    plan.gone = {ids[2]}
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError) as raised:
        call_command(name, "--channel", "room", '{"a": 1}', stdout=out, stderr=err)

    message = str(raised.value)
    assert message.startswith("2 of 6 recipient(s) failed: ")
    assert f"{ids[0]} (forbidden, HTTP 403)" in message
    assert f"{ids[1]} (server_error, HTTP 500)" in message
    assert ids[2] not in message  # gone is not a failure
    assert "3 delivered, 1 gone, 2 failed" in out.getvalue()  # the summary is still printed
    assert f"failed {ids[0]}: forbidden" in err.getvalue()
    assert all(threaded_fault_endpoint.received[cid] == [b'{"a":1}'] for cid in ids[3:])


def test_send_lists_only_the_first_few_failures_in_its_exit_message(
    threaded_fault_settings: Any, threaded_fault_endpoint: Any
) -> None:
    from tests.fixtures_delivery import make_gateway, make_sessions

    ids = make_sessions(make_gateway(), 8)
    threaded_fault_endpoint.plan.status_for = dict.fromkeys(ids, 403)
    with pytest.raises(CommandError, match=r"^8 of 8 recipient\(s\) failed: .*; and 3 more$"):
        run("send_websocket_message", "--all", "--text", "hi")


def test_send_exits_zero_when_every_recipient_got_it_or_is_gone(
    threaded_fault_settings: Any, threaded_fault_endpoint: Any
) -> None:
    from tests.fixtures_delivery import make_gateway, make_sessions

    ids = make_sessions(make_gateway(), 3)
    threaded_fault_endpoint.plan.gone = {ids[0]}
    out = run("send_websocket_message", "--all", "--text", "hi")
    assert "2 delivered, 1 gone, 0 failed" in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalServerError"), (403, "AccessDeniedException")]
)
def test_provisioning_commands_exit_non_zero_naming_the_failed_step(
    status: int, code: str, provisioning_settings: Any, new_gateway: Any, local_apigw: Any
) -> None:
    pk = str(new_gateway.pk)
    local_apigw.fail("POST", r"/v2/apis/[^/]+/stages", status=status, code=code, times=10)
    with pytest.raises(CommandError, match=rf"create gateway failed: {code} \(CreateStage\)"):
        run("create_api_gateway", "--pk", pk)
    new_gateway.refresh_from_db()
    assert new_gateway.last_error.startswith(f"{code} (CreateStage)")

    local_apigw.faults.clear()
    assert "deployed; clients connect to" in run("create_api_gateway", "--pk", pk)
    new_gateway.refresh_from_db()
    new_gateway.api_description = "changed"
    new_gateway.save(push_to_aws=False)
    local_apigw.fail("PATCH", rf"/v2/apis/{new_gateway.api_id}", status=status, code=code, times=10)
    with pytest.raises(CommandError, match=rf"sync to AWS failed: {code} \(UpdateApi\)"):
        run("sync_api_gateway", "--pk", pk, "--to-aws")

    provisioning_settings.AWS_WS_ASYNC = {
        **provisioning_settings.AWS_WS_ASYNC,
        "gateway_secret": ["a-rotated-secret-value-0123456789abcdef"],
    }
    local_apigw.faults.clear()
    local_apigw.fail(
        "PATCH", r"/v2/apis/[^/]+/integrations/[^/]+", status=status, code=code, times=10
    )
    with pytest.raises(CommandError, match=rf"1 gateway\(s\) failed:\n.*{code}"):
        run("update_api_gateway_integrations", "--pk", pk)


def test_send_with_a_deadline_stops_and_exits_non_zero_saying_how_far_it_got(
    threaded_fault_settings: Any, threaded_fault_endpoint: Any
) -> None:
    from tests.fixtures_delivery import make_gateway, make_sessions

    ids = make_sessions(make_gateway(), 3)
    threaded_fault_endpoint.plan.hang_ids = {ids[0]}
    # Well past the 0.5 s deadline (a command that waited would see the post delivered, not
    # cancelled), yet short: the endpoint's teardown waits out a hanging handler, up to 10 s.
    threaded_fault_endpoint.plan.hang_seconds = 3.0
    out = StringIO()
    started = time.monotonic()
    with pytest.raises(CommandError) as raised:
        call_command(
            "send_websocket_message", "--all", "--text", "hi", "--timeout", "0.5", stdout=out
        )
    assert time.monotonic() - started < 10
    assert f"{ids[0]} (cancelled" in str(raised.value)
    assert "2 delivered" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "0"], "--timeout must be a positive"),
        (["--timeout", "nan"], "--timeout must be a positive"),
        (["--show-failures", "-1"], "--show-failures must be 0 or more"),
    ],
)
def test_send_refuses_bad_numbers_before_sending(
    args: list[str], message: str, threaded_fault_settings: Any, threaded_fault_endpoint: Any
) -> None:
    from tests.fixtures_delivery import make_gateway, make_sessions

    make_sessions(make_gateway(), 1)
    with pytest.raises(CommandError, match=message):
        run("send_websocket_message", "--all", "--text", "hi", *args)
    assert threaded_fault_endpoint.received == {}
