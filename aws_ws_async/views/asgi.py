"""A fast ASGI entry point: API Gateway's callbacks go straight to the view, the rest to Django.

Every integration request (``$connect``, messages, ``$disconnect``) is an HTTP request from API
Gateway, without cookies (except ``$connect``'s) and never rendered by a browser. Behind the
usual seven middleware each such request pays about 13 ``sync_to_async`` thread hops for the
middleware hooks (docs/deployment.md has the profile), although none of them does anything a
``WebSocketView`` needs: sessions and auth (the view reads the user from its token or session
row), CSRF (the view is exempt), messages, clickjacking headers (nothing is rendered).

``GatewayASGIHandler`` is Django's own ``ASGIHandler`` (same request building, signals,
``request_finished`` closing connections, disconnect handling, response sending) that, for a
path under one of its prefixes, calls the view directly instead of resolving the URL and running
the middleware chain. What middleware would have checked and a gateway route still needs is
kept: the Host header is validated against ``ALLOWED_HOSTS`` like ``CommonMiddleware`` does (400,
reason ``host``), and every check of the view itself runs unchanged. Other paths (admin, token
view, pages) go through the full middleware stack as before::

    # asgi.py
    from aws_ws_async.views.asgi import GatewayASGIHandler
    from chat.views import ChatView

    django.setup()
    application = GatewayASGIHandler({"/ws/": ChatView.as_view()})

Gateway requests also run on reused threads (``views/threads.py``: Django starts and joins a
thread per request, which cost more than a message's query); ``threads=`` sets how many are
kept (0: a fresh thread per request, as Django does).

A view with ``USE_WS_TOKEN = False`` reads the user from the cookie session, which needs the
session and auth middleware: it is refused here (``ImproperlyConfigured``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import DisallowedHost, ImproperlyConfigured, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.core.handlers.exception import response_for_exception
from django.db import close_old_connections, reset_queries
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix

import aws_ws_async.views.reasons as reasons
from aws_ws_async.views.responses import error_response
from aws_ws_async.views.threads import DEFAULT_SIZE, RequestExecutor, RequestThreads

#: A route name after the prefix: what ``<slug:route>`` matches.
ROUTE_RE = re.compile(r"[-a-zA-Z0-9_]+")


#: Django's own ``request_finished`` receivers. The first two release what a request's *sync*
#: work opened in its thread (database connections, the query log): nothing, for a request
#: that ran nothing there. The other two run on the loop: ``reset_urlconf`` clears a
#: context-local value and ``close_caches`` closes cache clients (a no-op for the local-memory,
#: database and file caches; closing sockets, which never waits, for memcached and Redis).
_SYNC_HOUSEKEEPING = frozenset({close_old_connections, reset_queries})
_ON_THE_LOOP = frozenset({reset_urlconf, close_caches})


def finish_on_the_loop(sender: type) -> bool:
    """Do ``request_finished``'s work on the loop for a request that ran nothing in its
    thread (every statement on the async path, ``asyncdb``, or a refusal before any) when only
    Django's own receivers listen to ``request_started`` and ``request_finished``; True if
    done, False: send the signal (a hop). Any other receiver (a project's, an
    instrumentation's) keeps both signals, and the hop."""
    # request_started's sync receivers were put off until the first hop (``RequestExecutor
    # .first``): with a hop-less request they have not run, which only Django's own may skip.
    started, started_async = signals.request_started._live_receivers(sender)
    if started_async or not _SYNC_HOUSEKEEPING.issuperset(started):
        return False
    sync_receivers, async_receivers = signals.request_finished._live_receivers(sender)
    if async_receivers or not (_SYNC_HOUSEKEEPING | _ON_THE_LOOP).issuperset(sync_receivers):
        return False
    for receiver in sync_receivers:
        if receiver in _ON_THE_LOOP:
            receiver(signal=signals.request_finished, sender=sender)
    return True


def close_without_signal(response: HttpResponseBase) -> None:
    """``response.close()`` minus ``request_finished`` (see :func:`finish_on_the_loop`): the
    resource closers (the request's body file and uploads) run on the loop, as cheap as
    closing a file."""
    for closer in response._resource_closers:  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):  # what HttpResponseBase.close does
            closer()
    response._resource_closers.clear()  # type: ignore[attr-defined]
    response.closed = True


def _path_info(scope: Mapping[str, Any]) -> str:
    """The path below ``root_path``, as ``ASGIRequest.path_info`` computes it."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


class GatewayASGIHandler(ASGIHandler):
    """Django's ASGI handler with the gateway prefixes routed around the middleware."""

    def __init__(
        self, routes: Mapping[str, Callable[..., Any]], *, threads: int = DEFAULT_SIZE
    ) -> None:
        super().__init__()
        self.threads = RequestThreads(threads)
        self.routes: dict[str, Callable[..., Any]] = {}
        for prefix, view in routes.items():
            if not prefix.startswith("/") or not prefix.endswith("/"):
                raise ImproperlyConfigured(f"gateway prefix {prefix!r} must start and end with /")
            view_class = getattr(view, "view_class", None)
            if view_class is None or not hasattr(view_class, "route_request"):
                raise ImproperlyConfigured(
                    f"{prefix!r}: give a WebSocketView subclass's as_view(), not {view!r}"
                )
            if not getattr(view_class, "USE_WS_TOKEN", True):
                raise ImproperlyConfigured(
                    f"{view_class.__qualname__} has USE_WS_TOKEN = False: it reads the user "
                    "from the cookie session, which needs the middleware; mount it in urls.py"
                )
            self.routes[prefix] = view
        # Longest prefix first, so "/ws/admin/" would win over "/ws/".
        self._ordered = sorted(self.routes.items(), key=lambda item: -len(item[0]))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Gateway paths on a reused request thread; everything else exactly as Django."""
        if scope.get("type") == "http" and self.match(_path_info(scope)) is not None:
            async with self.threads.context() as executor:
                await self.handle_gateway(scope, receive, send, executor)
            return
        await super().__call__(scope, receive, send)

    async def handle_gateway(
        self, scope: Any, receive: Any, send: Any, executor: RequestExecutor | None
    ) -> None:
        """Django's ``ASGIHandler.handle`` with ``request_started``'s sync receivers moved into
        the request's first thread hop (``RequestExecutor.first``): they run in the request's
        thread before any of its sync work, as before, without a hop of their own. Async
        receivers, or no borrowed thread, keep Django's own ``asend``. The rest is Django's:
        body, request, disconnect listening, response, ``request_finished`` on close."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        started = signals.request_started
        if executor is not None and not started._live_receivers(self.__class__)[1]:
            executor.first = partial(started.send, sender=self.__class__, scope=scope)
        else:
            await started.asend(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None  # Django returns one or the other
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request() -> HttpResponseBase:
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # client gone while sending
                await self.send_response(response, send)
            return response

        listener = asyncio.create_task(self.listen_for_disconnect(receive))
        processor = asyncio.create_task(process_request())
        await asyncio.wait([listener, processor], return_when=asyncio.FIRST_COMPLETED)
        for task in (listener, processor):
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = processor.result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if executor is not None and not executor.used and finish_on_the_loop(self.__class__):
                close_without_signal(response)
            else:
                await sync_to_async(response.close)()
        body_file.close()

    def match(self, path: str) -> tuple[Callable[..., Any], str] | None:
        """``(view, route)`` when ``path`` is ``<prefix><route>`` of a gateway prefix."""
        for prefix, view in self._ordered:
            if path.startswith(prefix):
                route = path[len(prefix) :]
                if ROUTE_RE.fullmatch(route):
                    return view, route
                return None
        return None

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        matched = self.match(request.path_info)
        if matched is None:
            return await super().get_response_async(request)
        view, route = matched
        try:
            request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware would check it
        except DisallowedHost:
            refusal = error_response(400, "invalid_host", "Invalid Host header")
            reasons.report_refusal(
                refusal,
                route=route,
                connection_id="",
                reason=reasons.HOST,
                cause=f"Host {request.META.get('HTTP_HOST', '')!r} is not in ALLOWED_HOSTS",
            )
            return refusal
        try:
            response: HttpResponse = await view(request, route=route)
        except Exception as exc:  # what convert_exception_to_response does around a view
            response = await sync_to_async(response_for_exception, thread_sensitive=False)(
                request, exc
            )
        # No django.request line for a 4xx: the view's refusal WARNING names the reason.
        response._resource_closers.append(request.close)  # type: ignore[attr-defined]
        return response
