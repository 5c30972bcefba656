"""``$connect``'s compiled statements run the very SQL the ORM runs, with the same params, and
give the same results; the ORM still runs where the compiled form would differ (receivers of
``pre_save``/``post_save``, a session engine other than ``db``).

Each test runs the compiled form and the ORM form at one frozen instant and compares what
reached Django's cursor (an execute wrapper, so it is what the database saw).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.db import SessionStore
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save
from django.utils import timezone
from freezegun import freeze_time

from aws_ws_async.hashing import session_key_hashes
from aws_ws_async.models import (
    ChannelAccess,
    ChannelPermission,
    ChannelSubscription,
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)
from aws_ws_async.models.tokens import digest_token
from aws_ws_async.views import connect_plans
from aws_ws_async.views.connect_db import insert_in_savepoint
from aws_ws_async.views.connect_sql import FETCH_MODES, insert_plan
from tests.fixtures_views import Browser, connect, login_browser, new_connection_id

Log = list[tuple[str, list[Any]]]


@contextmanager
def statements() -> Iterator[Log]:
    """Every statement (SQL and params) sent through the default connection in the block."""
    log: Log = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        log.append((sql, list(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield log


def both(compiled: Callable[[], Any], orm: Callable[[], Any]) -> tuple[Any, Any, Log, Log]:
    """Each form at the same frozen instant: same time-dependent params, same rows."""
    instant = timezone.now()
    with freeze_time(instant), statements() as mine:
        ours = compiled()
    with freeze_time(instant), statements() as theirs:
        reference = orm()
    return ours, reference, mine, theirs


@pytest.fixture
def browser(db: None, user: Any) -> Browser:
    return login_browser(user)


@pytest.fixture
def raw_token(browser: Browser) -> str:
    return browser.new_token()


@pytest.mark.parametrize("channel", ["", "room", "listed"])
def test_token_read(browser: Browser, raw_token: str, channel: str) -> None:
    ChannelPermission.objects.create(channel_name="listed", access=ChannelAccess.STAFF_ONLY)
    key = browser.session_key
    hashes = session_key_hashes(key)
    token, reference, mine, theirs = both(
        lambda: connect_plans.load_token(raw_token, key, channel),
        lambda: connect_plans.token_queryset(
            digest_token(raw_token), hashes, timezone.now(), channel
        ).first(),
    )
    assert mine == theirs
    assert len(mine) == 1
    assert token is not None
    assert reference is not None
    assert (token.pk, token.user.pk, token.user.get_username()) == (
        reference.pk,
        reference.user.pk,
        reference.user.get_username(),
    )
    for name in ("_channel_access", "_channel_permission_id"):
        assert getattr(token, name, "unset") == getattr(reference, name, "unset")
    if channel == "listed":
        assert token._channel_access == ChannelAccess.STAFF_ONLY  # type: ignore[attr-defined]
    plan = connect_plans._tokens[(connection.alias, bool(channel), len(hashes))]
    assert (plan is None) is FETCH_MODES  # Django 6.1's fetch modes: the ORM builds rows
    # Another browser session's key, or a spent token: no row, on both paths.
    assert connect_plans.load_token(raw_token, "x" * 32, channel) is None
    assert connect_plans.load_token(raw_token, "x" * 257, channel) is None


def test_browser_session_read(browser: Browser, raw_token: str) -> None:
    token = WebSocketToken.objects.select_related("user").get()
    key = browser.session_key
    data, reference, mine, theirs = both(
        lambda: connect_plans.session_data(token, key),
        lambda: SessionStore(key).load(),
    )
    assert mine == theirs
    assert len(mine) == 1
    assert data == reference
    assert token.session_matches(data)
    assert (connect_plans._sessions[connection.alias] is None) is FETCH_MODES
    SessionStore(key).delete()
    assert connect_plans.session_data(token, key) == {} == SessionStore(key).load()
    assert connect_plans.session_data(token, "short") == {}


@pytest.mark.parametrize("who", ["ip and user", "ip", "user"])
def test_window_count(user: Any, django_user_model: Any, who: str) -> None:
    other = django_user_model.objects.create_user(email="other@example.com", password="pw-other-1")
    for ip, by in [("198.51.100.7", user), ("198.51.100.7", other), ("198.51.100.8", user)]:
        ConnectionRateLimit.objects.create(ip_address=ip, user=by, successful=True)
    old = ConnectionRateLimit.objects.create(ip_address="198.51.100.7", user=user)
    ConnectionRateLimit.objects.filter(pk=old.pk).update(
        attempt_time=timezone.now() - timedelta(hours=2)
    )
    ip = "198.51.100.7" if "ip" in who else None
    by = user if "user" in who else None
    window = timedelta(minutes=10)
    counts, reference, mine, theirs = both(
        lambda: connect_plans.window_counts(ip, getattr(by, "pk", None), window),
        lambda: ConnectionRateLimit.window_counts(ip, by, window),
    )
    assert mine == theirs
    assert len(mine) == 1
    assert counts == reference == {"ip and user": (2, 2), "ip": (2, 0), "user": (0, 2)}[who]
    key = (connection.alias, ip is not None, by is not None)
    assert connect_plans._counts[key] is not None


def test_attempt_insert(user: Any) -> None:
    window = timedelta(minutes=10)
    (allowed, attempt), (ref_allowed, ref_attempt), mine, theirs = both(
        lambda: connect_plans.record_and_check("2001:db8::1", user, max_attempts=1, window=window),
        lambda: ConnectionRateLimit.record_and_check(
            "2001:db8::1", user, max_attempts=1, window=window
        ),
    )
    assert mine == theirs
    assert len(mine) == 2
    assert (allowed, ref_allowed) == (True, False)  # the second is over the limit of one
    assert attempt.pk is not None
    assert attempt.pk != ref_attempt.pk
    assert not attempt._state.adding
    assert attempt._state.db == connection.alias
    stored = ConnectionRateLimit.objects.get(pk=attempt.pk)
    reference = ConnectionRateLimit.objects.get(pk=ref_attempt.pk)
    fields = ("ip_address", "user_id", "attempt_time", "successful", "reason")
    assert [getattr(stored, f) for f in fields] == [getattr(reference, f) for f in fields]
    assert (insert_plan(ConnectionRateLimit, connection.alias) is None) is FETCH_MODES


def test_spend_and_unspend(browser: Browser, raw_token: str) -> None:
    token = WebSocketToken.objects.get()
    same = WebSocketToken.objects.get()
    spent, ref_spent, mine, theirs = both(
        lambda: (connect_plans.spend(token), connect_plans.unspend(token)),
        lambda: (same.spend(), same.unspend()),
    )
    assert mine == theirs
    assert len(mine) == 2
    assert spent == ref_spent == (True, True)
    assert connect_plans.spend(token)
    assert not connect_plans.spend(same)
    assert token.used
    assert not WebSocketToken.objects.filter(used=False).exists()
    same.used, same.used_at = True, token.used_at
    assert connect_plans.unspend(token)
    assert not connect_plans.unspend(same)
    assert not WebSocketToken.objects.get().used
    for which in ("spend", "unspend"):
        assert (connect_plans._updates[(connection.alias, which)] is None) is FETCH_MODES


def session_row(user: Any) -> WebSocketSession:
    return WebSocketSession(
        connection_id="cid-1=", channel_name="room", user=user, session_key_hash="a" * 64
    )


def inserts(log: Log, row: WebSocketSession) -> Log:
    """The INSERTs; the subscription's session id (a new primary key each run) masked."""
    found = []
    for sql, params in log:
        if sql.startswith("INSERT") and "channelsubscription" in sql:
            assert params[0] == row.pk
            params = ["<session>", *params[1:]]
        if sql.startswith("INSERT"):
            found.append((sql, params))
    return found


@pytest.mark.django_db(transaction=True)
def test_session_and_subscription_insert(user: Any) -> None:
    instant = timezone.now()
    with freeze_time(instant), statements() as mine:
        ours = session_row(user)
        insert_in_savepoint(ours)  # in autocommit: atomic() for the pair
    assert ours.pk is not None
    assert not ours._state.adding
    assert ChannelSubscription.objects.get(session=ours).channel_name == "room"
    WebSocketSession.objects.all().delete()
    with freeze_time(instant), statements() as theirs, transaction.atomic():
        reference = session_row(user)
        reference.save(force_insert=True)
        ChannelSubscription.objects.create(
            session=reference, channel_name="room", subscribed_at=reference.connected_at
        )
    assert len(inserts(mine, ours)) == 2
    assert inserts(mine, ours) == inserts(theirs, reference)
    for model in (WebSocketSession, ChannelSubscription):
        assert (insert_plan(model, connection.alias) is None) is FETCH_MODES
    with pytest.raises(IntegrityError):  # a duplicate connection id: nothing half-written
        insert_in_savepoint(session_row(user))
    assert ChannelSubscription.objects.count() == 1


@pytest.mark.django_db(transaction=True)
async def test_post_save_receivers_still_see_the_rows(
    ws_settings: Any, gateway: Any, user: Any
) -> None:
    seen: list[tuple[type, bool]] = []

    def receiver(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
        seen.append((sender, created))

    browser = await _alogin(user)
    post_save.connect(receiver, sender=WebSocketSession, weak=False)
    post_save.connect(receiver, sender=ConnectionRateLimit, weak=False)
    try:
        response = await connect(browser, new_connection_id(), channel="room")
    finally:
        post_save.disconnect(receiver, sender=WebSocketSession)
        post_save.disconnect(receiver, sender=ConnectionRateLimit)
    assert response.status_code == 200
    assert seen == [(ConnectionRateLimit, True), (WebSocketSession, True)]


async def _alogin(user: Any) -> Browser:
    return await sync_to_async(login_browser)(user)


@pytest.mark.django_db(transaction=True)
async def test_other_session_engines_keep_their_store(
    ws_settings: Any, gateway: Any, user: Any
) -> None:
    """A cache session: no row for the compiled read to find, so only its store can say."""
    ws_settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    browser = await _alogin(user)
    assert (await connect(browser, new_connection_id())).status_code == 200
    store = import_module(ws_settings.SESSION_ENGINE).SessionStore
    await sync_to_async(lambda: store(browser.session_key).delete())()
    assert (await connect(browser, new_connection_id())).status_code == 401
