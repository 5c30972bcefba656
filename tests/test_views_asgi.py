"""The fast entry point (``GatewayASGIHandler``) and the compiled session lookup.

The gateway's routes skip the middleware but keep every check: the same requests as through
``urls.py`` give the same answers, refusals and query counts; other paths still run the full
middleware stack; and it serves under a real uvicorn. The compiled lookup returns what the ORM
query it replaces returns, field for field, with the related objects cached.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.utils import timezone

from aws_ws_async.models import WebSocketSession
from aws_ws_async.views import reasons, session_loader
from aws_ws_async.views.asgi import GatewayASGIHandler
from aws_ws_async.views.session_loader import _compile, load_session, session_queryset
from tests.fixtures_views import (
    API_ID,
    Browser,
    EchoView,
    NoTokenView,
    QueryLog,
    connect,
    gateway_headers,
    new_connection_id,
    post,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_gateway_routes_work_and_skip_the_middleware(
    ws_settings: Any, gateway: Any, browser: Browser, fast_app: Any, query_log: QueryLog
) -> None:
    cid = new_connection_id()
    connected = await connect(browser, cid)
    assert connected.status_code == 200, connected.content
    with query_log.recording() as queries:
        echoed = await post("/ws/default", gateway_headers(cid), b'{"handler": "echo", "x": 1}')
    assert echoed.status_code == 200, echoed.content
    assert echoed.json()["user"] == browser.user.pk
    assert echoed.json()["connection"] == cid
    assert len([q for q in queries if "aws_ws_async_websocketsession" in q]) == 1
    # SecurityMiddleware adds nosniff to every response it sees: not to the gateway's routes...
    assert "x-content-type-options" not in echoed.headers
    # ...but a path outside the prefixes still goes through the whole stack.
    other = await connect(browser, new_connection_id(), path="/ws-perm/connect")
    assert other.headers["x-content-type-options"] == "nosniff"
    gone = await post("/ws/disconnect", gateway_headers(cid), b"")
    assert gone.status_code == 200
    assert not (await WebSocketSession.objects.aget(connection_id=cid)).connected


async def test_every_check_still_applies(
    ws_settings: Any,
    gateway: Any,
    browser: Browser,
    fast_app: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aws_ws_async.views")
    ws_settings.DEBUG = True
    bad_secret = await connect(browser, new_connection_id(), secret="not-the-secret")
    assert bad_secret.status_code == 403
    no_origin = await connect(browser, new_connection_id(), origin=None)
    assert no_origin.headers[reasons.REASON_HEADER.lower()] == "missing_header:Origin"
    evil = await connect(browser, new_connection_id(), origin="https://evil.test")
    assert evil.status_code == 403
    unknown = await post("/ws/default", gateway_headers(new_connection_id()), b'{"action":"echo"}')
    assert unknown.status_code == 401
    junk = await post("/ws/default", gateway_headers(new_connection_id()), b"[]")
    assert junk.status_code == 400
    nested = await post("/ws/a/b", gateway_headers(new_connection_id()), b"{}")
    assert nested.status_code == 404  # not a route name: Django's resolver answers
    ws_settings.ALLOWED_HOSTS = ["only.example"]
    host = await post("/ws/default", gateway_headers(new_connection_id()), b"{}")
    assert host.status_code == 400
    assert host.headers[reasons.REASON_HEADER.lower()].startswith("host:")
    got = [r.reason for r in caplog.records if hasattr(r, "reason")]  # type: ignore[attr-defined]
    assert got == [
        reasons.INVALID_SECRET,
        reasons.MISSING_HEADER,
        reasons.ORIGIN,
        reasons.UNKNOWN_CONNECTION,
        reasons.INVALID_BODY,
        reasons.HOST,
    ]
    assert await WebSocketSession.objects.acount() == 0


def test_bad_mounts_are_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="start and end with /"):
        GatewayASGIHandler({"/ws": EchoView.as_view()})
    with pytest.raises(ImproperlyConfigured, match="USE_WS_TOKEN"):
        GatewayASGIHandler({"/ws/": NoTokenView.as_view()})
    with pytest.raises(ImproperlyConfigured, match="WebSocketView"):
        GatewayASGIHandler({"/ws/": lambda request: None})


@pytest.mark.e2e
async def test_serves_under_uvicorn(
    ws_settings: Any, gateway: Any, browser: Browser, asgi_server_factory: Any
) -> None:
    server = asgi_server_factory(
        GatewayASGIHandler({"/ws/": EchoView.as_view()}),
        before_stop=sync_to_async(connections.close_all),
    )
    cid = new_connection_id()
    token = await browser.anew_token()
    headers = gateway_headers(cid, connect=True)
    headers["Cookie"] = browser.cookie()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/ws/connect?ws_token={token}", headers=headers, data=b""
        ) as r:
            assert r.status == 200, await r.text()
        for i in range(5):
            async with http.post(
                f"{server.url}/ws/default",
                headers=gateway_headers(cid),
                data=b'{"handler": "echo", "i": %d}' % i,
            ) as r:
                assert r.status == 200
                assert (await r.json())["body"]["i"] == i


# --- the compiled session lookup ------------------------------------------------------------


def fields_of(obj: Any) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.mark.parametrize("pinned", [False, True])
async def test_compiled_lookup_equals_the_orm(
    gateway: Any, user: Any, pinned: bool, query_log: QueryLog
) -> None:
    await sync_to_async(query_log.install_here)()
    rows = [
        await WebSocketSession.objects.acreate(
            connection_id=new_connection_id(), channel_name="c", user=user, api_gateway=gateway
        ),
        await WebSocketSession.objects.acreate(
            connection_id=new_connection_id(), channel_name="c", user=None, api_gateway=None
        ),
        await WebSocketSession.objects.acreate(
            connection_id=new_connection_id(), channel_name="c", user=user, api_gateway=gateway,
            connected=False,
        ),
    ]  # fmt: skip
    using = router.db_for_read(WebSocketSession)
    plan = await sync_to_async(_compile)(WebSocketSession, using, pinned)
    # On Django 6.1 (fetch modes) the loader deliberately leaves instances to the ORM.
    assert (plan is None) is session_loader._FETCH_MODES

    def both(cid: str, api_id: str) -> tuple[Any, Any, list[str]]:
        expected = session_queryset(WebSocketSession, api_id, cid, pinned).first()
        with query_log.recording() as queries:
            got = load_session(WebSocketSession, api_id, cid, pinned)
            if got is not None:  # related objects come with it: no more queries
                _ = (got.user, got.api_gateway)
        return expected, got, queries

    for row in rows:
        for api_id in (API_ID, "otherapi01"):
            expected, got, queries = await sync_to_async(both)(row.connection_id, api_id)
            assert len(queries) == 1
            if expected is None:
                assert got is None
                continue
            assert got is not None
            assert fields_of(got) == fields_of(expected)
            assert got._state.db == expected._state.db == using
            assert not got._state.adding
            for name in ("user", "api_gateway"):
                mine, theirs = getattr(got, name), getattr(expected, name)
                assert (mine is None) == (theirs is None)
                if mine is not None:
                    assert fields_of(mine) == fields_of(theirs)
                    assert mine._state.db == using


async def test_compiled_disconnect_update_equals_the_orm(
    gateway: Any, user: Any, query_log: QueryLog
) -> None:
    """The compiled UPDATE writes what the ORM's ``update()`` wrote (one statement), changes a
    connected row once and a closed row never."""
    from datetime import UTC, datetime

    from aws_ws_async.models import DisconnectReason

    await sync_to_async(query_log.install_here)()
    mine, theirs = [
        await WebSocketSession.objects.acreate(
            connection_id=new_connection_id(), channel_name="c", user=user, api_gateway=gateway
        )
        for _ in range(2)
    ]
    using = router.db_for_write(WebSocketSession)
    plan = await sync_to_async(session_loader._compile_disconnect)(WebSocketSession, using)
    assert (plan is None) is session_loader._FETCH_MODES
    when = datetime(2026, 12, 1, 15, 30, 1, 234567, tzinfo=UTC)

    def run() -> tuple[int, int, list[str]]:
        with query_log.recording() as queries:
            first = session_loader.mark_disconnected(WebSocketSession, mine.pk, when)
        again = session_loader.mark_disconnected(WebSocketSession, mine.pk, when)
        WebSocketSession.objects.filter(pk=theirs.pk, connected=True).update(
            connected=False,
            disconnected_at=when,
            disconnect_reason=DisconnectReason.CLIENT,
            updated_on=when,
        )
        return first, again, queries

    first, again, queries = await sync_to_async(run)()
    assert (first, again) == (1, 0)
    assert len(queries) == 1
    got = await WebSocketSession.objects.aget(pk=mine.pk)
    expected = await WebSocketSession.objects.aget(pk=theirs.pk)
    assert not got.connected
    assert got.disconnected_at == got.updated_on == when
    assert got.disconnect_reason == DisconnectReason.CLIENT
    ignore = {"id", "connection_id", "connected_at", "last_seen_at", "created_on"}  # at creation
    assert {k: v for k, v in fields_of(got).items() if k not in ignore} == {
        k: v for k, v in fields_of(expected).items() if k not in ignore
    }


# --- thread-hop budgets (like the query budgets: a hop costs about what a query does) -------


async def test_hop_budgets(
    ws_settings: Any, gateway: Any, browser: Browser, fast_app: Any, hops: list[str]
) -> None:
    """Through the fast entry point: a message costs 2 hops (the session lookup, with the
    request_started receivers run first in it; request_finished), ``$connect`` 3 (the token
    with its browser session and the rate limit's INSERT and COUNT; the spend with the session
    INSERT; request_finished), with the gateway cached (a cold cache adds its one lookup),
    ``$disconnect`` 2 (its read and UPDATE share one). Before: 3, 8 and 4."""
    assert (await connect(browser, new_connection_id())).status_code == 200  # gateway cached
    cid = new_connection_id()
    token = await browser.anew_token()
    hops.clear()
    assert (await connect(browser, cid, token=token)).status_code == 200
    connect_hops = list(hops)
    hops.clear()
    assert (
        await post("/ws/default", gateway_headers(cid), b'{"handler": "echo"}')
    ).status_code == 200
    message_hops = list(hops)
    hops.clear()
    assert (await post("/ws/disconnect", gateway_headers(cid), b"")).status_code == 200
    disconnect_hops = list(hops)
    assert len(message_hops) <= 2, message_hops
    assert len(connect_hops) <= 2, connect_hops  # the default checks fused into one hop
    assert len(disconnect_hops) <= 2, disconnect_hops


async def test_no_hops_on_the_async_database_path(
    ws_settings: Any,
    gateway: Any,
    browser: Browser,
    fast_app: Any,
    hops: list[str],
    skip_unless_postgres: None,
) -> None:
    """With ``async_database`` on PostgreSQL, a message and ``$disconnect`` run their compiled
    statements on the loop (``asyncdb``) and, having run nothing in their thread, skip the
    ``request_finished`` hop too: 0 hops each, with the same answers as the sync path."""
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "async_database": True}
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    # last_seen_at due for its refresh: the conditional UPDATE runs on the loop too.
    stale = timezone.now() - timedelta(hours=1)
    await WebSocketSession.objects.filter(connection_id=cid).aupdate(last_seen_at=stale)
    hops.clear()
    echoed = await post("/ws/default", gateway_headers(cid), b'{"handler": "echo"}')
    assert echoed.status_code == 200, echoed.content
    assert (echoed.json()["user"], echoed.json()["connection"]) == (browser.user.pk, cid)
    assert hops == []
    seen = (await WebSocketSession.objects.aget(connection_id=cid)).last_seen_at
    assert timezone.now() - seen < timedelta(minutes=1)
    hops.clear()  # that read was the test's
    unknown = await post(
        "/ws/default", gateway_headers(new_connection_id()), b'{"handler": "echo"}'
    )
    assert unknown.status_code == 401
    assert hops == []
    # Two $disconnects racing: the conditional UPDATE's row count lets exactly one win.
    first, second = await asyncio.gather(
        post("/ws/disconnect", gateway_headers(cid), b""),
        post("/ws/disconnect", gateway_headers(cid), b""),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 401]
    assert hops == []
    session = await WebSocketSession.objects.aget(connection_id=cid)
    assert not session.connected
    assert session.disconnect_reason == "client"


async def test_a_projects_request_finished_receiver_still_runs_without_sync_work(
    ws_settings: Any, fast_app: Any, hops: list[str]
) -> None:
    """A refusal before any database work runs nothing in its thread, so Django's own
    ``request_finished`` work is done on the loop (no hop); a receiver of the project's keeps
    the signal, sent in the hop as before."""
    from django.core.signals import request_finished

    refused = await post("/ws/default", gateway_headers(new_connection_id(), secret="x"), b"{}")
    assert refused.status_code == 403
    assert hops == []
    finished: list[str] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        finished.append(threading.current_thread().name)

    request_finished.connect(receiver, dispatch_uid="test_views_asgi_finished")
    try:
        again = await post("/ws/default", gateway_headers(new_connection_id(), secret="x"), b"{}")
    finally:
        request_finished.disconnect(dispatch_uid="test_views_asgi_finished")
    assert again.status_code == 403
    assert hops == ["HttpResponseBase.close"]
    [thread] = finished
    assert thread.startswith("aws-ws-request-")
