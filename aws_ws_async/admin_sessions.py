"""The session admin as an operations console: close, message, and see who is connected.

* ``disconnect_selected``: server-side close through the sync twin ``queryset.disconnect()``;
  the report (closed / already gone / failed) becomes the admin message.
* ``send_message_selected``: an intermediate form (text or JSON, at most 128 KiB, checked
  before anything is sent) that replays the changelist's selection, then ``send_message()``.
* :func:`send_to_channel_view`: the same form with a channel field, sending to every connected
  session subscribed to that channel (``subscribed_to(name).send_message()``): a connection
  that subscribed to it after connecting elsewhere is reached, one that unsubscribed is not
  (``channel_name`` is only the connection's first channel, kept when it is left).
* :func:`connection_counts`: connected sessions per channel (subscribers) and per gateway, one
  aggregate query each, for the changelist header.

Admin views are sync; under uvicorn/daphne they run in asgiref's thread-sensitive executor and
the sync twins hand the posts to the portal loop (``aws_ws_async.sync``), which is what the
end-to-end tests drive. Each operation has a total deadline (``operation_timeout_seconds`` on
the model admin) so an unreachable ``@connections`` endpoint cannot hold a request forever.
Operating on sessions needs the ``change_websocketsession`` permission (the rows themselves stay
read-only in the admin). With a task backend configured the three bulk operations enqueue a
``Broadcast`` instead and return at once (:mod:`aws_ws_async.admin_tasks`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from aws_ws_async import admin_tasks
from aws_ws_async.admin_forms import ChannelMessageForm, MessageForm
from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.exceptions import BroadcastAborted
from aws_ws_async.models import ChannelSubscription, WebSocketSession
from aws_ws_async.models.sessions import DisconnectReason
from aws_ws_async.scaleout import store

logger = logging.getLogger("aws_ws_async.admin")

#: Total deadline of one admin operation when the model admin sets none.
DEFAULT_TIMEOUT_SECONDS = 20.0
#: Channels listed in the changelist header (the busiest first).
MAX_CHANNELS_SHOWN = 50
TEMPLATE_DIR = "admin/aws_ws_async/websocketsession"
CHANGELIST = "admin:aws_ws_async_websocketsession_changelist"
SEND_TO_CHANNEL = "admin:aws_ws_async_websocketsession_send_to_channel"


def can_operate(request: HttpRequest) -> bool:
    """Closing and messaging connections is a change of the session rows."""
    user = getattr(request, "user", None)
    opts = WebSocketSession._meta
    return bool(user is not None and user.has_perm(f"{opts.app_label}.change_{opts.model_name}"))


def _timeout(modeladmin: admin.ModelAdmin) -> float:
    return float(getattr(modeladmin, "operation_timeout_seconds", DEFAULT_TIMEOUT_SECONDS))


def _who(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    return "unknown user" if user is None else f"{user.get_username()} (pk={user.pk})"


def _failures(report: DeliveryReport) -> str:
    reasons: dict[str, int] = {}
    for failure in report.failed:
        reasons[str(failure.reason)] = reasons.get(str(failure.reason), 0) + 1
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items()))


def report_text(done: str, report: DeliveryReport) -> str:
    """``"3 session(s): 2 closed, 1 already gone, 0 failed"`` (+ failure reasons)."""
    text = (
        f"{report.total} session(s): {report.delivered_count} {done}, "
        f"{report.gone_count} already gone, {report.failed_count} failed"
    )
    reasons = _failures(report)
    return f"{text} ({reasons})" if reasons else text


def _level(report: DeliveryReport) -> int:
    if report.failed:
        return messages.ERROR if not report.delivered_count else messages.WARNING
    return messages.SUCCESS if report.total else messages.INFO


def _run(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    label: str,
    done: str,
    operation: Callable[[float], DeliveryReport],
) -> None:
    """Run one bulk operation with the admin's deadline and message its report."""
    try:
        report = operation(_timeout(modeladmin))
    except BroadcastAborted as exc:
        report = exc.report
        text = f"{label} stopped before the end ({exc.__class__.__name__}): " + report_text(
            done, report
        )
        level = messages.ERROR
    else:
        if not report.total:
            text, level = f"{label}: no connected session among those selected.", messages.INFO
        else:
            text, level = f"{label}: {report_text(done, report)}.", _level(report)
    logger.info(
        "admin %s by %s: %s",
        label,
        _who(request),
        report.summary(),
        extra={"operation": label, "user_pk": getattr(request.user, "pk", None)},
    )
    modeladmin.message_user(request, text, level)


@admin.action(description="Disconnect selected (close server-side)", permissions=["operate"])
def disconnect_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[WebSocketSession]
) -> None:
    if admin_tasks.tasks_configured():  # a Broadcast row run by the workers: returns at once
        broadcast = store.enqueue_disconnect(queryset, DisconnectReason.SERVER)
        admin_tasks.message_enqueued(modeladmin, request, "Disconnect", broadcast)
        return
    _run(
        modeladmin,
        request,
        "Disconnect",
        "closed",
        lambda timeout: queryset.disconnect(timeout=timeout),  # type: ignore[attr-defined]
    )


def _selection_fields(request: HttpRequest) -> list[tuple[str, str]]:
    """The changelist's selection as posted, replayed by the intermediate form."""
    posted = request.POST
    fields = [
        (helpers.ACTION_CHECKBOX_NAME, pk) for pk in posted.getlist(helpers.ACTION_CHECKBOX_NAME)
    ]
    return [*fields, ("select_across", posted.get("select_across", "0"))]


def _render_form(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    form: MessageForm,
    *,
    title: str,
    recipients: str,
    hidden: list[tuple[str, str]],
) -> TemplateResponse:
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": modeladmin.model._meta,
        "form": form,
        "recipients": recipients,
        "hidden_fields": hidden,
        "changelist_url": reverse(CHANGELIST, current_app=modeladmin.admin_site.name),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, f"{TEMPLATE_DIR}/send_message.html", context)


@admin.action(description="Send a message to the selected sessions", permissions=["operate"])
def send_message_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[WebSocketSession]
) -> TemplateResponse | None:
    form = MessageForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        payload = form.payload
        if admin_tasks.tasks_configured():
            broadcast = queryset.enqueue_message(payload)  # type: ignore[attr-defined]
            admin_tasks.message_enqueued(modeladmin, request, "Send", broadcast)
            return None
        _run(
            modeladmin,
            request,
            "Send",
            "delivered",
            lambda timeout: queryset.send_message(  # type: ignore[attr-defined]
                payload, timeout=timeout, collect_delivered=False
            ),
        )
        return None  # the admin redirects back to the changelist
    counts = queryset.aggregate(total=Count("pk"), connected=Count("pk", filter=Q(connected=True)))
    return _render_form(
        modeladmin,
        request,
        form,
        title="Send a message to the selected sessions",
        recipients=f"{counts['connected']} connected of the {counts['total']} selected session(s)",
        hidden=[("action", "send_message_selected"), ("apply", "1"), *_selection_fields(request)],
    )


@admin.action(
    description="Send a message to the channel of the selected sessions", permissions=["operate"]
)
def send_to_channel_of_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[WebSocketSession]
) -> HttpResponse:
    """Opens the channel form, filled in when the selected sessions share one channel."""
    channel = shared_channel(queryset)
    url = reverse(SEND_TO_CHANNEL, current_app=modeladmin.admin_site.name)
    if channel:
        url += "?" + urlencode({"channel": channel})
    else:
        modeladmin.message_user(
            request,
            "The selected sessions are not all on one channel: type the channel to send to.",
            messages.INFO,
        )
    return HttpResponseRedirect(url)


def shared_channel(queryset: QuerySet[WebSocketSession]) -> str:
    """The channel every selected session is subscribed to ("" when none or no single one).

    Several shared channels: their common first channel (``channel_name``) if it is one of
    them. A first channel the sessions have left is not theirs: sending to it would miss them.
    Three small queries, whatever the selection's size.
    """
    selected = queryset.order_by().values("pk")
    total = selected.count()
    shared = list(
        ChannelSubscription.objects.filter(session__in=selected)
        .order_by()
        .values("channel_name")
        .annotate(n=Count("session"))
        .filter(n=total)
        .values_list("channel_name", flat=True)[:MAX_CHANNELS_SHOWN]
    )
    if len(shared) == 1:
        return str(shared[0])
    firsts = list(selected.values_list("channel_name", flat=True).distinct()[:2])
    return str(firsts[0]) if len(firsts) == 1 and firsts[0] in shared else ""


def send_to_channel_view(modeladmin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """GET: the channel form (``?channel=`` fills it in); POST: validate, then broadcast."""
    if not can_operate(request):
        raise PermissionDenied
    if request.method == "POST":
        form = ChannelMessageForm(request.POST)
        if form.is_valid():
            channel, payload = form.cleaned_data["channel"], form.payload
            label = f"Send to channel {channel!r}"
            audience = WebSocketSession.objects.subscribed_to(channel)
            if admin_tasks.tasks_configured():
                broadcast = audience.enqueue_message(payload)
                admin_tasks.message_enqueued(modeladmin, request, label, broadcast)
            else:
                _run(
                    modeladmin,
                    request,
                    label,
                    "delivered",
                    lambda timeout: audience.send_message(
                        payload, timeout=timeout, collect_delivered=False
                    ),
                )
            changelist = reverse(CHANGELIST, current_app=modeladmin.admin_site.name)
            return HttpResponseRedirect(
                changelist + "?" + urlencode({"subscribed_to": channel, "connected__exact": "1"})
            )
    else:
        form = ChannelMessageForm(initial={"channel": request.GET.get("channel", "")})
    return _render_form(
        modeladmin,
        request,
        form,
        title="Send a message to a channel",
        recipients="every connected session subscribed to the channel",
        hidden=[],
    )


def connection_counts(queryset: QuerySet[WebSocketSession], changelist_url: str) -> dict[str, Any]:
    """Connected sessions per channel (the busiest first) and per gateway: one query each.

    A connection counts once in every channel it is subscribed to (a LEFT JOIN of its
    subscription rows), as ``subscribed_to`` selects a channel's audience and the changelist's
    "subscribed to" filter lists it. One without any subscription row is under "" (no channel),
    also when its ``channel_name`` names the first channel it has since left: a send to that
    channel does not reach it.
    """
    connected = queryset.filter(connected=True).order_by()
    channels = list(
        connected.values(channel=Coalesce("subscriptions__channel_name", Value("")))
        .annotate(n=Count("pk"))
        .order_by("-n", "channel")[: MAX_CHANNELS_SHOWN + 1]
    )
    gateways = list(
        connected.values("api_gateway", "api_gateway__api_name")
        .annotate(n=Count("pk"))
        .order_by("-n", "api_gateway__api_name")
    )

    def link(**params: Any) -> str:
        return changelist_url + "?" + urlencode({**params, "connected__exact": "1"})

    return {
        "channels": [
            {
                "name": row["channel"],
                "count": row["n"],
                "url": link(subscribed_to=row["channel"])
                if row["channel"]
                else link(subscriptions__isnull="True"),
            }
            for row in channels[:MAX_CHANNELS_SHOWN]
        ],
        "more_channels": len(channels) > MAX_CHANNELS_SHOWN,
        "gateways": [
            {
                "name": row["api_gateway__api_name"] or "(no gateway)",
                "count": row["n"],
                "url": link(api_gateway__id__exact=row["api_gateway"])
                if row["api_gateway"] is not None
                else link(api_gateway__isnull="True"),
            }
            for row in gateways
        ],
    }


SESSION_ACTIONS = [disconnect_selected, send_message_selected, send_to_channel_of_selected]
