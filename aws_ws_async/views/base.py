"""The skeleton of ``WebSocketView``: dispatch, the checks every route shares, handler calls.

The route-specific flows (``connect``, messages, ``disconnect``) live in ``connect.py`` and
``messages.py``; this module holds what runs before them on every request, in this order:

1. method (POST only, 405 otherwise; before anything else, it costs nothing),
2. settings: a bad security setting refuses every request (503, logged once at ERROR), because
   a fallback would mean "no secret" or "no limit" (``docs/security.md``),
3. gateway secret (403, constant time, before any database work),
4. headers API Gateway always sends (400),
5. body size (413) and, for messages, JSON object (400).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.http.request import RawPostDataException
from django.views import View
from django.views.decorators.csrf import csrf_exempt

import aws_ws_async.views.reasons as reasons
from aws_ws_async.conf import get_settings, log_insecure_once
from aws_ws_async.models import ApiGateway, WebSocketSession
from aws_ws_async.security import secret_matches
from aws_ws_async.views.handlers import discover_handlers, explicit_handlers, is_plain_method
from aws_ws_async.views.responses import ResponsesMixin

logger = logging.getLogger("aws_ws_async.views")

#: API Gateway's payload limit; larger bodies are refused with 413 before they are parsed.
MAX_MESSAGE_BYTES = 128 * 1024
#: Longest debug-log entry kept.
DEBUG_TRUNCATE = 500


class BodyError(Exception):
    """The message body is not acceptable; ``status`` says why (400 or 413), ``cause`` how."""

    def __init__(self, status: int, cause: str = "") -> None:
        super().__init__(status, cause)
        self.status = status
        self.cause = cause


class WebSocketViewBase(ResponsesMixin, View):
    """Shared machinery; subclass :class:`aws_ws_async.views.WebSocketView`, not this."""

    http_method_names: ClassVar[list[str]] = ["post"]  # type: ignore[misc]

    # --- options (names kept from the predecessor where it had them) ---
    debug: bool = False
    MAX_BODY_SIZE: int = MAX_MESSAGE_BYTES
    ALLOWED_HANDLERS: ClassVar[set[str]] = set()
    ADDITIONAL_ALLOWED_HANDLERS: ClassVar[set[str] | list[str]] = []
    #: Base-class methods that may be exposed as handlers (can only be narrowed).
    BASE_HANDLERS: ClassVar[frozenset[str] | set[str]] = frozenset({"default", "change_channel"})
    #: Run ``default`` for an unknown handler name (the predecessor's silent fallback).
    FALLBACK_TO_DEFAULT_HANDLER: bool = False
    handler_selection_key: str = "handler"
    route_selection_key: str = "action"
    #: Headers every route must carry (the connection-id header from settings is added).
    #: API Gateway's HTTP_PROXY integration sends all of them on ``$connect``, messages and
    #: ``$disconnect``; a request without one did not come from it (docs/security.md). The
    #: predecessor required the same set. Narrow it only if a proxy of yours strips one.
    required_headers: ClassVar[list[str]] = [
        "Host",
        "Content-Length",
        "User-Agent",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "X-Amzn-Trace-Id",
        "X-Amzn-Apigateway-Api-Id",
    ]
    #: More headers to require, e.g. ones your own proxy adds (none by default: ``X-Real-Ip``,
    #: which the predecessor required, is nginx's, not API Gateway's).
    additional_required_headers: ClassVar[list[str]] = []
    #: If set, the ``X-Amzn-Apigateway-Api-Id`` header must equal it.
    aws_api_gateway_id: str | None = None
    model: ClassVar[type[WebSocketSession]] = WebSocketSession

    # --- per-request state ---
    api_gateway: ApiGateway | None = None
    websocket_session: WebSocketSession | None = None
    body: dict[str, Any]
    debug_log: list[str]
    #: ``(reason code, cause)`` of this request's refusal, reported once by ``post``.
    _refusal: tuple[str, str] | None = None

    _handler_cache: ClassVar[dict[type, frozenset[str]]] = {}
    #: Set to True in the body of the class whose own methods (and everything it inherits) are
    #: the framework, never handlers: ``WebSocketView``. Found through the MRO, so this module
    #: needs no import of its subclass.
    _handler_boundary: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        self.body = {}
        self.debug_log = []
        self._after_connect: list[Any] = []
        super().__init__(**kwargs)

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        """The view function: CSRF-exempt (API Gateway has no cookie token) and never wrapped
        in ``ATOMIC_REQUESTS`` (Django refuses that for async views; every write here is a
        single statement that must commit at once for the rate limit and token to be atomic).
        """
        view = super().as_view(**initkwargs)
        view._non_atomic_requests = set(connections)  # type: ignore[attr-defined]
        return csrf_exempt(view)

    # --- handler allow-list --------------------------------------------------------------

    @classmethod
    def get_allowed_handlers(cls) -> frozenset[str]:
        """Names a message may call (cached per class)."""
        cached = cls._handler_cache.get(cls)
        if cached is None:
            boundary = cls.handler_boundary()
            if cls.ALLOWED_HANDLERS:
                cached = explicit_handlers(
                    set(cls.ALLOWED_HANDLERS), boundary, frozenset(cls.BASE_HANDLERS)
                )
            else:
                extra = {"default", *cls.ADDITIONAL_ALLOWED_HANDLERS}
                cached = discover_handlers(cls, boundary, extra, frozenset(cls.BASE_HANDLERS))
            # Only plain methods: a listed static/class method or property is never a handler.
            cached = frozenset(name for name in cached if is_plain_method(cls, name))
            cls._handler_cache[cls] = cached
        return cached

    @classmethod
    def handler_boundary(cls) -> type:
        """The framework class: the nearest class in the MRO that declares ``_handler_boundary``."""
        for klass in cls.__mro__:
            if vars(klass).get("_handler_boundary") is True:
                return klass
        return WebSocketViewBase

    # --- debugging -----------------------------------------------------------------------

    def debug_message(self, message: str) -> None:
        """In debug mode, keep an escaped, truncated note and log it at DEBUG level."""
        if not self.debug:
            return
        text = html.escape(str(message))[:DEBUG_TRUNCATE]
        self.debug_log.append(text)
        logger.debug("%s: %s", type(self).__name__, text)

    def refuse_because(self, reason: str, cause: str = "") -> None:
        """Record why this request is refused (a code of ``reasons``); ``post`` reports it.

        Call it next to the refusal response; a later call replaces an earlier one, so the
        report names the check that decided. Logged at WARNING, in DEBUG also a header.
        """
        self._refusal = (reason, cause)

    # --- request helpers -----------------------------------------------------------------

    @property
    def connection_id(self) -> str:
        return str(self.request.headers.get(get_settings().connection_id_header, ""))

    @property
    def api_id(self) -> str:
        return str(self.request.headers.get("X-Amzn-Apigateway-Api-Id", ""))

    def get_required_headers(self) -> list[str]:
        return [
            *self.required_headers,
            get_settings().connection_id_header,
            *self.additional_required_headers,
        ]

    def find_missing_headers(self, names: list[str]) -> list[str]:
        headers = self.request.headers
        return [name for name in names if not headers.get(name)]

    def read_body(self) -> bytes:
        """The raw body, refusing (413) anything larger than ``MAX_BODY_SIZE``."""
        request = self.request
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except (TypeError, ValueError):
            raise BodyError(400, "Content-Length is not a number") from None
        if declared > self.MAX_BODY_SIZE or declared < 0:
            raise BodyError(
                413, f"Content-Length {declared} over MAX_BODY_SIZE {self.MAX_BODY_SIZE}"
            )
        try:
            raw = request.body
        except RequestDataTooBig:
            raise BodyError(413, "body over DATA_UPLOAD_MAX_MEMORY_SIZE") from None
        except (RawPostDataException, OSError):
            raise BodyError(400, "the body could not be read") from None
        if len(raw) > self.MAX_BODY_SIZE:
            raise BodyError(
                413, f"body of {len(raw)} bytes over MAX_BODY_SIZE {self.MAX_BODY_SIZE}"
            )
        return raw

    def parse_message(self, raw: bytes) -> dict[str, Any]:
        """The body as a JSON object; anything else is a 400 (never a 500)."""
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise BodyError(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise BodyError(400, f"the body is a JSON {type(data).__name__}, not an object")
        return data

    # --- dispatch ------------------------------------------------------------------------

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        if request.method is None or request.method.lower() not in self.http_method_names:
            response = HttpResponseNotAllowed(["POST"])
            reasons.report_refusal(
                response,
                route=str(kwargs.get("route", "")),
                connection_id=self.connection_id,
                reason=reasons.METHOD_NOT_ALLOWED,
                cause=f"method {request.method}",
            )
            return response
        return await self.post(request, *args, **kwargs)

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Run the checks and the route, then report a refusal (one WARNING, see ``reasons``)."""
        route = str(kwargs.get("route", ""))
        response = await self.checked_post(request, *args, **kwargs)
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            reason, cause = refusal
            reasons.report_refusal(
                response,
                route=route,
                connection_id=self.connection_id,
                reason=reason,
                cause=cause,
            )
        return response

    async def checked_post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """The checks every route shares (module docstring), then ``route_request``."""
        route = str(kwargs.get("route", ""))
        conf = get_settings()
        if conf.insecure:
            log_insecure_once(conf)
            self.refuse_because(reasons.MISCONFIGURED, "a security setting is invalid (see ERROR)")
            response = await self.misconfigured(request)
            response._has_been_logged = True  # type: ignore[attr-defined]  # logged once above
            return response
        if conf.gateway_secrets:
            presented = request.headers.get(conf.gateway_secret_header)
            if not secret_matches(presented, conf.gateway_secrets):
                state = "does not match" if presented else "is missing"
                self.refuse_because(
                    reasons.INVALID_SECRET, f"header {conf.gateway_secret_header} {state}"
                )
                return await self.invalid_gateway_secret(request)
        missing = self.find_missing_headers(self.get_required_headers())
        if missing:
            self.debug_message(f"missing headers: {', '.join(missing)}")
            self.refuse_because(reasons.MISSING_HEADER, ",".join(missing))
            return await self.missing_headers(request, missing)
        if self.aws_api_gateway_id and self.api_id != self.aws_api_gateway_id:
            self.refuse_because(
                reasons.UNKNOWN_GATEWAY,
                f"api id {self.api_id!r} is not the view's aws_api_gateway_id",
            )
            return await self.unknown_gateway(request)
        try:
            raw = self.read_body()
        except BodyError as error:
            if error.status == 413:
                self.refuse_because(reasons.PAYLOAD_TOO_LARGE, error.cause)
                return await self.payload_too_large(request)
            self.refuse_because(reasons.INVALID_BODY, error.cause)
            return await self.invalid_body(request)
        try:
            response = await self.route_request(request, route, raw, *args, **kwargs)
        except Exception:
            logger.exception(
                "WebSocket %s failed (connection %s, route %s)",
                type(self).__name__,
                self.connection_id,
                route,
            )
            response = await self.handler_error(request)
            # Logged above with the connection id; stop Django's django.request logger from
            # logging it again (its default AdminEmailHandler would mail from the request).
            response._has_been_logged = True  # type: ignore[attr-defined]
            return response
        if route == "connect" and 200 <= response.status_code < 300 and self._after_connect:
            self.start_after_connect_delivery()
        return response

    async def route_request(
        self, request: HttpRequest, route_name: str, raw: bytes, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        raise NotImplementedError

    def start_after_connect_delivery(self) -> None:
        raise NotImplementedError

    async def call_handler(
        self, handler: Callable[..., Any], request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Run an ``async def`` handler on the loop or a plain ``def`` one in a thread."""
        if asyncio.iscoroutinefunction(handler):
            result = await handler(request, *args, **kwargs)
        else:
            result = await sync_to_async(handler)(request, *args, **kwargs)
        return self.to_response(result)

    @staticmethod
    def set_user(request: HttpRequest, user: Any) -> None:
        """Make ``request.user`` and ``await request.auser()`` the WebSocket's user.

        API Gateway's message and ``$disconnect`` requests carry no cookies, so the user comes
        from the session row (or the token on ``$connect``), never from the middleware.
        """
        resolved = user if user is not None else AnonymousUser()
        request.user = resolved

        async def auser() -> Any:
            return resolved

        request.auser = auser

    @staticmethod
    def to_response(result: Any) -> HttpResponse:
        """A handler may return a response, a JSON-able dict/list, or nothing (200 ``{}``)."""
        if isinstance(result, HttpResponse):
            return result
        if not result:
            return JsonResponse({})
        return JsonResponse(result, safe=False)

    @staticmethod
    def allowed_hosts() -> list[str]:
        hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not hosts:
            hosts = [".localhost", "127.0.0.1", "[::1]"]
        return hosts
