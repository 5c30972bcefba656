"""What aws_ws_async does when Django's signals fire; connected in ``AppConfig.ready()``.

* ``user_logged_out``: the user's open connections are closed server-side (``DELETE
  @connections``) and marked disconnected with reason ``logout``. The rows are marked at once,
  in the caller's thread and transaction; the DELETEs run on the portal loop in the background
  and the request does not wait for them (a slow or unreachable AWS never slows a logout).
* ``user_logged_out`` and a password change (``post_save`` of the user model after
  ``set_password()``): the user's unspent connect tokens are revoked (``$connect`` also checks
  the token's session itself, so this is belt and braces for sessions Django keeps alive).
* ``pre_delete`` of an ``ApiGateway``: its sessions are marked disconnected
  (``gateway_deleted``) before the foreign key is nulled, on the gateway's database.

To add a receiver: write it here and list it in :data:`RECEIVERS`; :func:`connect` (called by
``ready()``) connects each once, with its own ``dispatch_uid``.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.core.signals import setting_changed
from django.db.models.signals import post_save, pre_delete
from django.dispatch import Signal

from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.models.gateways import ApiGateway
from aws_ws_async.models.operations import close_operation
from aws_ws_async.models.sending import submit_close
from aws_ws_async.models.sessions import DisconnectReason, WebSocketSession
from aws_ws_async.models.tokens import WebSocketToken

logger = logging.getLogger("aws_ws_async.receivers")


def close_user_connections(
    user: Any, reason: str = DisconnectReason.LOGOUT, *, using: str | None = None
) -> concurrent.futures.Future[DeliveryReport]:
    """Mark ``user``'s connected sessions disconnected now; close them on the portal loop.

    Returns the future of the DELETEs (already running) so callers may wait if they like.
    """
    rows = WebSocketSession.objects.db_manager(using).for_user(user)
    future = submit_close(rows, close_operation(WebSocketSession, reason))
    future.add_done_callback(_log_close_outcome)
    return future


def _log_close_outcome(future: concurrent.futures.Future[DeliveryReport]) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        logger.error("logout: closing the user's WebSocket connections failed", exc_info=error)
        return
    report = future.result()
    if report.failed:
        logger.warning(
            "logout: %d connection(s) could not be closed: %s",
            len(report.failed),
            ", ".join(f"{f.connection_id} ({f.reason})" for f in report.failed[:5]),
        )


def close_on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_out``: close the user's connections without making the request wait."""
    if user is None or getattr(user, "pk", None) is None:
        return
    try:
        close_user_connections(user, DisconnectReason.LOGOUT, using=user._state.db)
    except Exception:
        # Logging out must never fail because AWS could not be reached or is misconfigured.
        logger.exception("logout: closing the user's WebSocket connections failed")


def revoke_tokens_on_logout(
    sender: Any, request: Any = None, user: Any = None, **kwargs: Any
) -> None:
    """``user_logged_out``: a token fetched before logout must not open a socket after it."""
    if user is not None and getattr(user, "pk", None) is not None:
        WebSocketToken.revoke_for_user(user)


def revoke_tokens_on_password_change(
    sender: Any, instance: Any, created: bool = False, **kwargs: Any
) -> None:
    """``post_save`` of the user model right after ``set_password()`` (Django keeps the new raw
    password in ``_password`` until ``save()`` returns): revoke the user's unspent tokens."""
    if not created and getattr(instance, "_password", None) is not None:
        WebSocketToken.revoke_for_user(instance)


def mark_gateway_sessions(sender: Any, instance: ApiGateway, **kwargs: Any) -> None:
    """``pre_delete`` of a gateway: its sessions end ``gateway_deleted`` (same database)."""
    using = kwargs.get("using") or instance._state.db
    WebSocketSession.objects.db_manager(using).filter(api_gateway=instance).mark_disconnected(
        DisconnectReason.GATEWAY_DELETED
    )


def forget_async_databases(sender: Any, *, setting: str, **kwargs: Any) -> None:
    """``DATABASES`` changed (``override_settings``): the async path re-checks each alias."""
    if setting == "DATABASES":
        from aws_ws_async import asyncdb

        asyncdb.forget_settings()


#: (signal, receiver, sender or None, dispatch_uid): everything :func:`connect` wires.
RECEIVERS: list[tuple[Signal, Callable[..., None], Any, str]] = [
    (user_logged_out, close_on_logout, None, "aws_ws_async.close_on_logout"),
    (user_logged_out, revoke_tokens_on_logout, None, "aws_ws_async.revoke_tokens_on_logout"),
    (
        post_save,
        revoke_tokens_on_password_change,
        settings.AUTH_USER_MODEL,
        "aws_ws_async.revoke_tokens_on_password_change",
    ),
    (pre_delete, mark_gateway_sessions, ApiGateway, "aws_ws_async.gateway_deleted"),
    (setting_changed, forget_async_databases, None, "aws_ws_async.forget_async_databases"),
]


def connect() -> None:
    """Connect every receiver of :data:`RECEIVERS` (idempotent: each has a dispatch_uid)."""
    for signal, receiver, sender, uid in RECEIVERS:
        signal.connect(receiver, sender=sender, dispatch_uid=uid, weak=False)
