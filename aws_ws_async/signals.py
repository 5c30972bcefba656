"""Signals we send, and the receivers that keep sessions honest when users or gateways go.

* ``broadcast_finished`` is sent after every QuerySet-level send or close with ``report`` (a
  :class:`~aws_ws_async.delivery.DeliveryReport`), ``operation`` (``"send"`` or
  ``"disconnect"``) and ``queryset``; connect a receiver to export metrics or alert on failures.
* ``user_logged_out``: the user's open connections are closed server-side (``DELETE
  @connections``) and marked disconnected with reason ``logout``. The rows are marked at once
  in the caller's thread and transaction; the DELETEs go to the portal loop and the request
  waits for them at most :data:`LOGOUT_CLOSE_WAIT_SECONDS` (they finish in the background).
* ``pre_delete`` of an ``ApiGateway``: its sessions are marked disconnected
  (``gateway_deleted``) before the foreign key is nulled.
"""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import pre_delete
from django.dispatch import Signal, receiver

from aws_ws_async.models.gateways import ApiGateway

logger = logging.getLogger("aws_ws_async.signals")

#: Sent after each broadcast / bulk close with ``report``, ``operation`` and ``queryset``.
broadcast_finished = Signal()

#: How long a logout request waits for the server-side closes before moving on.
LOGOUT_CLOSE_WAIT_SECONDS = 2.0


def close_user_connections(user: Any, reason: str = "logout") -> concurrent.futures.Future[Any]:
    """Mark the user's connected sessions disconnected now; close them on the portal loop.

    Returns the future of the DELETEs (already running) so callers may wait if they like.
    """
    from aws_ws_async import sync
    from aws_ws_async.models.sending import (
        _close_op,
        _fan_out_groups,
        delivery_policy,
        endpoints_for,
    )
    from aws_ws_async.models.sessions import WebSocketSession

    rows = list(
        WebSocketSession.objects.for_user(user).values_list("connection_id", "api_gateway_id")
    )
    groups: dict[int | None, list[str]] = {}
    for connection_id, gateway_id in rows:
        groups.setdefault(gateway_id, []).append(connection_id)
    if rows:
        ids = [cid for cid, _ in rows]
        WebSocketSession.objects.get_queryset().filter(connection_id__in=ids).mark_disconnected(
            reason
        )
    endpoints = endpoints_for(groups)
    policy = delivery_policy()

    async def close() -> Any:
        from aws_ws_async.delivery import AdaptiveLimiter

        limiter = AdaptiveLimiter(policy.max_concurrency)
        report = await _fan_out_groups(_close_op(reason), groups, endpoints, policy, limiter)
        if report.failed:
            logger.warning(
                "logout: %d connection(s) could not be closed: %s",
                len(report.failed),
                ", ".join(f"{f.connection_id} ({f.reason})" for f in report.failed[:5]),
            )
        return report

    return sync.portal().submit(close)


@receiver(user_logged_out, dispatch_uid="aws_ws_async.close_on_logout")
def _on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    if user is None or getattr(user, "pk", None) is None:
        return
    try:
        future = close_user_connections(user, "logout")
    except Exception:
        # Logging out must never fail because AWS could not be reached or is misconfigured.
        logger.exception("logout: closing the user's WebSocket connections failed")
        return
    try:
        future.result(timeout=LOGOUT_CLOSE_WAIT_SECONDS)
    except concurrent.futures.TimeoutError:
        logger.info("logout: connection closes continue in the background")
    except Exception:
        logger.exception("logout: closing the user's WebSocket connections failed")


@receiver(pre_delete, sender=ApiGateway, dispatch_uid="aws_ws_async.gateway_deleted")
def _on_gateway_delete(sender: Any, instance: ApiGateway, **kwargs: Any) -> None:
    from aws_ws_async.models.sessions import DisconnectReason, WebSocketSession

    WebSocketSession.objects.get_queryset().filter(api_gateway=instance).mark_disconnected(
        DisconnectReason.GATEWAY_DELETED
    )
