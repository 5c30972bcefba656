"""Views that call every sync twin the way a project would, so real servers exercise the bridge.

Sync ``def`` views run under ASGI through ``sync_to_async(thread_sensitive=True)`` on a
per-request executor (the setting that deadlocked the old bridge); the async views hand a sync
twin to ``sync_to_async`` themselves, with ``thread_sensitive`` True and False.
Connection ids come in the ``ids`` form field (comma separated), a user in ``username``.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model, login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.models import ApiGateway, WebSocketSession

API_ID = "e2eapi0001"


def _result(report: DeliveryReport, started: float) -> JsonResponse:
    return JsonResponse(
        {
            "delivered": report.delivered_count,
            "gone": report.gone_count,
            "failed": [f.reason for f in report.failed],
            "seconds": time.monotonic() - started,
        }
    )


def _ids(request: HttpRequest) -> list[str]:
    return [cid for cid in request.POST.get("ids", "").split(",") if cid]


def _gateway() -> ApiGateway:
    gateway, _ = ApiGateway.objects.get_or_create(
        api_id=API_ID,
        defaults={
            "api_name": "e2e",
            "stage_name": "test",
            "target_base_endpoint": "http://127.0.0.1/ws/",
            "api_created": True,
            "deployment_id": "d1",
        },
    )
    return gateway


def _user(username: str) -> Any:
    model = get_user_model()
    user, _ = model._default_manager.get_or_create(username=username)
    return user


@csrf_exempt
def make_sessions(request: HttpRequest) -> JsonResponse:
    """Create ``count`` connected sessions (for ``username`` if given); returns their ids.

    With ``login=1`` the request's client is also logged in as that user (for logout tests).
    """
    count = int(request.POST.get("count", "1"))
    username = request.POST.get("username", "")
    user = _user(username) if username else None
    gateway = _gateway()
    # What API Gateway connection ids look like (``Jx1bEcl3IAMCJ_A=``).
    ids = [base64.urlsafe_b64encode(os.urandom(10)).decode()[:-1] + "=" for _ in range(count)]
    WebSocketSession.objects.bulk_create(
        [
            WebSocketSession(connection_id=cid, user=user, api_gateway=gateway, channel_name="e2e")
            for cid in ids
        ]
    )
    if user is not None and request.POST.get("login") == "1":
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"ids": ids})


def _selected(request: HttpRequest) -> Any:
    return WebSocketSession.objects.filter(connection_id__in=_ids(request))


@csrf_exempt
def qs_send(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    return _result(_selected(request).send_message({"via": "qs_send"}), started)


@csrf_exempt
def qs_disconnect(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    return _result(_selected(request).disconnect(), started)


@csrf_exempt
def send_to_user(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    user = _user(request.POST["username"])
    return _result(WebSocketSession.objects.send_to_user(user, {"via": "send_to_user"}), started)


@csrf_exempt
def session_send(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    session = WebSocketSession.objects.get(connection_id=_ids(request)[0])
    return _result(session.send_message({"via": "session_send"}, timeout=15), started)


@csrf_exempt
def session_disconnect(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    session = WebSocketSession.objects.get(connection_id=_ids(request)[0])
    return _result(session.disconnect(timeout=15), started)


@csrf_exempt
async def async_qs_send(request: HttpRequest) -> JsonResponse:
    """An async view handing the sync twin to ``sync_to_async`` (what the docs call supported)."""
    started = time.monotonic()
    thread_sensitive = request.GET.get("thread_sensitive", "1") == "1"
    body = await sync_to_async(lambda: request.POST.get("ids", ""))()
    qs = WebSocketSession.objects.filter(connection_id__in=[c for c in body.split(",") if c])
    report = await sync_to_async(
        lambda: qs.send_message({"via": f"async_ts{int(thread_sensitive)}"}),
        thread_sensitive=thread_sensitive,
    )()
    return _result(report, started)


@csrf_exempt
def bridge_async_orm(request: HttpRequest) -> JsonResponse:
    """``sync.run`` of a coroutine that uses the async ORM (``sync_to_async`` on the portal).

    Under ASGI this view runs on the request's thread-sensitive executor; if the portal work
    inherited that context, its ``sync_to_async`` would queue on this blocked thread.
    """
    from aws_ws_async import sync

    ids = _ids(request)
    started = time.monotonic()
    count = sync.run(lambda: WebSocketSession.objects.filter(connection_id__in=ids).acount())
    return JsonResponse({"delivered": count, "seconds": time.monotonic() - started})


@csrf_exempt
def logout_view(request: HttpRequest) -> HttpResponse:
    """``django.contrib.auth.logout``: its receiver closes the user's connections."""
    started = time.monotonic()
    logout(request)
    return JsonResponse({"seconds": time.monotonic() - started})
