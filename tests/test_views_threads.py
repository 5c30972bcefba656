"""The fast entry point's reused request threads (``views/threads.py``).

Every ``thread_sensitive`` call of one request runs in one thread that no other request uses
meanwhile (Django's contract, which keeps its per-thread connections request-private), but the
thread is kept for the next request instead of started and joined per request. Requests beyond
the pool get a thread of their own; a task that outlives its request never runs on the thread
lent to the next one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse

from aws_ws_async.views.asgi import GatewayASGIHandler
from aws_ws_async.views.background import spawn, wait_for_background_tasks
from aws_ws_async.views.threads import RequestThreads
from tests import fixtures_views
from tests.fixtures_views import (
    Browser,
    EchoView,
    connect,
    gateway_headers,
    new_connection_id,
    post,
)

pytestmark = pytest.mark.django_db(transaction=True)

#: Set by a test that wants its handlers to meet (three requests at once).
_barrier: threading.Barrier | None = None
#: Thread names seen by background tasks that outlived their request.
_late: list[str] = []
#: Logs that ``where`` appends ``("where", thread)`` to (see ``started_log``).
_events: list[list[tuple[str, str]]] = []


class ThreadView(EchoView):
    """Handlers that report the thread their sync work ran in."""

    def where(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        # A plain ``def`` handler: thread-sensitive, so it runs in the request's thread.
        if _barrier is not None:
            _barrier.wait()  # a thread shared by two requests at once would never get here
        for log in _events:
            log.append(("where", threading.current_thread().name))
        return JsonResponse({"thread": threading.current_thread().name})

    async def outlive(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        async def later() -> None:
            await asyncio.sleep(0.05)  # the request has answered and given its thread back
            _late.append(await sync_to_async(lambda: threading.current_thread().name)())

        spawn(later(), "test.outlive")
        here = await sync_to_async(lambda: threading.current_thread().name)()
        return JsonResponse({"thread": here})


@pytest.fixture
def app_with(
    ws_settings: Any, gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[int], GatewayASGIHandler]]:
    """``app_with(threads)``: the request helpers served by a fast handler with that pool
    (the settings and the gateway row in place; idle threads ended after the test)."""
    made: list[GatewayASGIHandler] = []

    def make(threads: int) -> GatewayASGIHandler:
        handler = GatewayASGIHandler({"/ws/": ThreadView.as_view()}, threads=threads)
        monkeypatch.setattr(fixtures_views, "_application", handler)
        made.append(handler)
        return handler

    yield make
    for handler in made:
        handler.threads.shutdown()


async def message(cid: str, handler: str) -> Any:
    response = await post("/ws/default", gateway_headers(cid), f'{{"handler": "{handler}"}}')
    assert response.status_code == 200, response.content
    return response.json()


async def test_one_thread_serves_request_after_request(
    browser: Browser,
    app_with: Callable[[int], GatewayASGIHandler],
) -> None:
    handler = app_with(4)
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    seen = {(await message(cid, "where"))["thread"] for _ in range(5)}
    assert len(seen) == 1, seen
    assert handler.threads.created == 1  # $connect's thread, lent again to every message


async def test_concurrent_requests_never_share_a_thread(
    browser: Browser,
    app_with: Callable[[int], GatewayASGIHandler],
) -> None:
    global _barrier
    handler = app_with(2)
    cids = [new_connection_id() for _ in range(3)]
    for cid in cids:
        assert (await connect(browser, cid)).status_code == 200
    _barrier = threading.Barrier(3, timeout=20)
    try:
        answers = await asyncio.gather(*(message(cid, "where") for cid in cids))
    finally:
        _barrier = None
    assert len({answer["thread"] for answer in answers}) == 3
    # Two kept, one made for the third request at once and ended after it.
    assert handler.threads.created == 3
    assert len(handler.threads._idle) == 2


async def test_without_a_pool_every_request_has_a_new_thread(
    browser: Browser,
    app_with: Callable[[int], GatewayASGIHandler],
) -> None:
    handler = app_with(0)
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    for _ in range(3):
        await message(cid, "where")
    assert handler.threads.created == 4
    assert not handler.threads._idle


async def test_a_task_that_outlives_its_request_gets_its_own_thread(
    browser: Browser,
    app_with: Callable[[int], GatewayASGIHandler],
) -> None:
    app_with(1)
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    _late.clear()
    lent = (await message(cid, "outlive"))["thread"]
    await wait_for_background_tasks()
    assert len(_late) == 1  # it ran (no "context has exited" error) ...
    assert _late[0] != lent  # ... and not on the thread the pool lends to the next request
    assert (await message(cid, "where"))["thread"] == lent


@pytest.fixture
def started_log() -> Iterator[list[tuple[str, str]]]:
    """``(event, thread)`` for every request_started (sync receiver) and ``where`` handler."""
    from django.core.signals import request_started

    log: list[tuple[str, str]] = []
    _events.append(log)

    def receiver(sender: Any, **kwargs: Any) -> None:
        assert "scope" in kwargs  # Django's own keyword arguments are passed through
        log.append(("started", threading.current_thread().name))

    request_started.connect(receiver, dispatch_uid="test_views_threads")
    yield log
    request_started.disconnect(dispatch_uid="test_views_threads")
    _events.remove(log)


async def test_request_started_runs_first_in_the_request_thread_without_a_hop(
    browser: Browser,
    app_with: Callable[[int], GatewayASGIHandler],
    started_log: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asgiref.sync import SyncToAsync

    app_with(2)
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    hops: list[str] = []
    original = SyncToAsync.__call__

    async def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(self.func, "__qualname__", type(self.func).__name__))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", spy)
    started_log.clear()
    thread = (await message(cid, "where"))["thread"]
    # Once, in the request's thread, before the handler (and the session lookup before it).
    assert started_log == [("started", thread), ("where", thread)]
    # The session lookup, the sync handler, response.close: no hop for request_started.
    assert len(hops) == 3, hops
    # A refusal with no sync work still runs the receivers once (in the close hop).
    started_log.clear()
    refused = await post("/ws/default", gateway_headers(cid, secret="wrong"), b"{}")
    assert refused.status_code == 403
    assert [event for event, _ in started_log] == ["started"]


async def test_async_request_started_receivers_keep_djangos_asend(
    browser: Browser,
    app_with: Callable[[int], GatewayASGIHandler],
    started_log: list[tuple[str, str]],
) -> None:
    from django.core.signals import request_started

    seen: list[str] = []

    async def areceiver(sender: Any, **kwargs: Any) -> None:
        seen.append("async")

    request_started.connect(areceiver, dispatch_uid="test_views_threads_async")
    try:
        app_with(2)
        cid = new_connection_id()
        assert (await connect(browser, cid)).status_code == 200
        started_log.clear()
        seen.clear()
        thread = (await message(cid, "where"))["thread"]
    finally:
        request_started.disconnect(dispatch_uid="test_views_threads_async")
    assert seen == ["async"]
    assert started_log == [("started", thread), ("where", thread)]


def test_size_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="size"):
        RequestThreads(-1)
