"""The admin's slow work on the task backend, when one is configured (issue 12.6).

Provisioning a gateway takes tens of seconds of AWS calls, and closing or messaging ten thousand
selected sessions longer than a request should last. With a ``TASKS`` backend that runs tasks
(see :func:`aws_ws_async.scaleout.framework.check_backend`) the admin actions enqueue and return
at once:

* **Gateway actions** (create API, custom domain, sync, drift, integrations): one task per
  gateway (:mod:`aws_ws_async.admin_jobs`). The row shows the progress as it does inline: its
  provisioning status moves step by step, a failure lands in ``last_error``, and the outcome is
  written to the gateway's history (Django's admin log, as the inline action does).
* **Bulk session actions** (disconnect selected, send to selected, send to a channel): an
  enqueued :class:`~aws_ws_async.models.broadcasts.Broadcast` whose admin page shows its status,
  totals and shards; the message links to it.

Without a task backend everything runs inline as before. Nothing here imports the task framework
at import time: the ``tasks`` extra stays optional.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from aws_ws_async.models import ApiGateway, Broadcast
from aws_ws_async.scaleout.framework import check_backend

logger = logging.getLogger("aws_ws_async.admin")


def tasks_configured() -> bool:
    """True when ``TASKS`` names a backend that runs tasks: the admin then enqueues."""
    try:
        check_backend()
    except ImproperlyConfigured:
        return False
    return True


def _user_id(request: HttpRequest) -> int | None:
    user = getattr(request, "user", None)
    return getattr(user, "pk", None)


def enqueue_gateway_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[ApiGateway],
    name: str,
    label: str,
) -> None:
    """One task per selected gateway, enqueued after this request's transaction commits."""
    from aws_ws_async import admin_jobs

    db = queryset.db
    gateways = list(queryset.order_by("pk").values_list("pk", flat=True))
    user_id = _user_id(request)

    def enqueue_all() -> None:
        for pk in gateways:
            admin_jobs.run_gateway_action.enqueue(name, pk, user_id, db)

    transaction.on_commit(enqueue_all, using=db)
    logger.info("admin %s enqueued for gateways %s by user %s", label, gateways, user_id)
    modeladmin.message_user(
        request,
        f"{label} enqueued for {len(gateways)} gateway(s): each row's provisioning status and "
        "last error show its progress, and the outcome is written to the gateway's history.",
        messages.INFO,
    )


def broadcast_link(modeladmin: admin.ModelAdmin, broadcast: Broadcast) -> str:
    """The admin URL of an enqueued broadcast's page (status, totals, shards)."""
    opts = broadcast._meta
    return reverse(
        f"admin:{opts.app_label}_{opts.model_name}_change",
        args=[broadcast.pk],
        current_app=modeladmin.admin_site.name,
    )


def message_enqueued(
    modeladmin: admin.ModelAdmin, request: HttpRequest, label: str, broadcast: Broadcast
) -> None:
    """``Send: enqueued as broadcast 12 (status, totals and shards on its page).``"""
    logger.info(
        "admin %s enqueued as broadcast %s by user %s", label, broadcast.pk, _user_id(request)
    )
    text: Any = format_html(
        '{}: enqueued as <a href="{}">broadcast {}</a> (its page shows the status, totals and '
        "shards as the workers go).",
        label,
        broadcast_link(modeladmin, broadcast),
        broadcast.pk,
    )
    modeladmin.message_user(request, text, messages.INFO)
