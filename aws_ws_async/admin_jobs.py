"""The task a worker runs for an enqueued gateway action of the admin (see :mod:`.admin_tasks`).

Arguments are JSON: the action's name (a key of ``admin_actions.OPERATIONS``), the gateway's
pk, the admin user's pk and the database alias. The worker runs exactly what the inline action
runs (:func:`aws_ws_async.admin_actions.perform`) and writes the same audit entry to Django's
admin log, under the user who chose the action. Imported only when a task backend is
configured (it needs the task framework at import time, as :mod:`.scaleout.tasks` does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry

from aws_ws_async.admin_actions import OPERATIONS, perform
from aws_ws_async.models import ApiGateway
from aws_ws_async.scaleout.framework import task_api

logger = logging.getLogger("aws_ws_async.admin_actions")

_task: Callable[..., Callable[[Callable[..., Any]], Any]] = task_api().task


def _log(user_id: int | None, gateway: ApiGateway, text: str) -> None:
    if user_id is None:
        return
    LogEntry.objects.log_actions(  # Django >= 5.1; the same entry as ModelAdmin.log_change
        user_id, [gateway], CHANGE, change_message=text, single_object=True
    )


@_task()
def run_gateway_action(name: str, gateway_id: int, user_id: int | None, using: str) -> str:
    """Run admin action ``name`` on one gateway; its outcome goes to the log and the history."""
    label, operation = OPERATIONS[name]
    gateway = ApiGateway.objects.using(using).filter(pk=gateway_id).first()
    if gateway is None:
        logger.warning("%s: gateway %s no longer exists", label, gateway_id)
        return "gone"
    level, text, audited = perform(label, operation, gateway)
    if audited:
        _log(user_id, gateway, text if level == messages.ERROR else f"{label}: {text}")
    logger.info("%s by user %s on gateway %s (task): %s", label, user_id, gateway_id, text)
    return text
