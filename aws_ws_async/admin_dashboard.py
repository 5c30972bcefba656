"""The admin's observability page: who is connected, what was sent, what was refused.

One server-rendered page (``admin/aws_ws_async/dashboard.html``, no JavaScript, no CDN), mounted
by ``WebSocketSessionAdmin`` at ``<admin>/aws_ws_async/websocketsession/dashboard/`` for users who
may view sessions. It shows

* connections online by gateway and channel (every subscribed channel; two grouped COUNTs);
* broadcasts of the last hour: the persisted enqueued :class:`~aws_ws_async.models.Broadcast`
  rows when there are any, else the bulk operations this process finished (kept in memory by
  :mod:`aws_ws_async.telemetry.recent`: per process, lost on restart; single sends are charted
  but not listed);
* refusals by route and reason code since this process started (also per process);
* an SVG chart of delivered / gone / failed per five minutes over the last hour (persisted
  broadcasts and every report in memory).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import Count
from django.template.response import TemplateResponse
from django.utils import timezone

from aws_ws_async.models import Broadcast, ChannelSubscription, WebSocketSession
from aws_ws_async.telemetry import recent_refusals, recent_reports

WINDOW_SECONDS = 3600
BUCKETS = 12
MAX_GROUPS = 50
MAX_BROADCASTS = 50
#: Persisted broadcasts of the window the chart adds up (the memory keeps 1,000 reports).
MAX_CHARTED = 1000
#: Chart geometry (SVG user units).
WIDTH, HEIGHT, PAD = 600, 160, 24
COLOURS = {"delivered": "#2e7d32", "gone": "#f9a825", "failed": "#c62828"}


@dataclass(frozen=True, slots=True)
class Row:
    """One finished broadcast, whatever it came from (a Broadcast row or a report in memory)."""

    when: datetime.datetime
    operation: str
    recipients: int
    delivered: int
    gone: int
    failed: int
    duration: float | None
    status: str


def connection_groups(limit: int = MAX_GROUPS) -> list[dict[str, Any]]:
    """``{"gateway", "channel", "count"}`` of connected sessions, the largest groups first.

    A connection counts once in every channel it is subscribed to (``ChannelSubscription``
    rows); one without any subscription row counts under its first channel (``channel_name``).
    Two grouped COUNTs, whatever the number of connections.
    """
    subscribed = (
        ChannelSubscription.objects.filter(session__connected=True)
        .order_by()
        .values_list("session__api_gateway__api_name", "channel_name")
        .annotate(count=Count("id"))
    )
    bare = (
        WebSocketSession.objects.filter(connected=True, subscriptions__isnull=True)
        .order_by()
        .values_list("api_gateway__api_name", "channel_name")
        .annotate(count=Count("id"))
    )
    counts: dict[tuple[str, str], int] = {}
    for gateway, channel, n in [*subscribed, *bare]:
        key = (gateway or "(no gateway)", channel or "(no channel)")
        counts[key] = counts.get(key, 0) + n
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"gateway": g, "channel": c, "count": n} for (g, c), n in ranked]


def recent_broadcasts(now: datetime.datetime) -> tuple[str, list[Row], list[Row]]:
    """``(source, table, everything)`` of the last hour, newest first.

    The table lists the persisted enqueued broadcasts when there are any, else the bulk
    operations this process finished (its single sends, one row each in a chat, are left out
    of the table). ``everything`` feeds the chart: the persisted rows and every report in
    memory, single sends included (enqueued shards never enter the memory, so nothing counts
    twice).
    """
    since = now - datetime.timedelta(seconds=WINDOW_SECONDS)
    persisted = [
        _from_row(b)
        for b in Broadcast.objects.filter(created__gte=since).order_by("-created")[:MAX_CHARTED]
    ]
    memory = sorted(
        (_from_report(r) for r in recent_reports(WINDOW_SECONDS)),
        key=lambda r: r.when,
        reverse=True,
    )
    everything = persisted + memory
    if persisted:
        return "persisted", persisted[:MAX_BROADCASTS], everything
    # Single sends and broadcasts that found nobody (presence hints to a room of one) would
    # crowd the table out; the chart still counts them.
    bulk = [r for r in memory if not r.operation.startswith("session_") and r.recipients]
    return "memory", bulk[:MAX_BROADCASTS], everything


def _from_row(b: Broadcast) -> Row:
    end = b.finished_at
    duration = (end - b.started_at).total_seconds() if end and b.started_at else None
    return Row(
        end or b.created,
        "enqueued",
        b.recipients,
        b.delivered,
        b.gone,
        b.failed,
        duration,
        b.status,
    )


def _from_report(r: dict[str, Any]) -> Row:
    when = datetime.datetime.fromtimestamp(r["ws_finished_at"], tz=datetime.UTC)
    return Row(
        when,
        r["ws_operation"],
        r["ws_recipients"],
        r["ws_delivered"],
        r["ws_gone"],
        r["ws_failed"],
        r["ws_duration"],
        "failed" if r["ws_failed"] else "finished",
    )


def refusal_rows() -> list[dict[str, Any]]:
    counts = recent_refusals()
    return [
        {"route": route, "reason": reason, "count": n}
        for (route, reason), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def chart(rows: list[Row], now: datetime.datetime) -> dict[str, Any]:
    """Stacked bars (delivered, gone, failed) per bucket of the window, as SVG rectangles."""
    span = WINDOW_SECONDS / BUCKETS
    totals = [dict.fromkeys(COLOURS, 0) for _ in range(BUCKETS)]
    for row in rows:
        age = (now - row.when).total_seconds()
        if 0 <= age < WINDOW_SECONDS:
            bucket = totals[BUCKETS - 1 - int(age // span)]
            bucket["delivered"] += row.delivered
            bucket["gone"] += row.gone
            bucket["failed"] += row.failed
    peak = max((sum(b.values()) for b in totals), default=0) or 1
    slot = (WIDTH - 2 * PAD) / BUCKETS
    bars: list[dict[str, Any]] = []
    for i, bucket in enumerate(totals):
        y = float(HEIGHT - PAD)
        for outcome, colour in COLOURS.items():
            h = (HEIGHT - 2 * PAD) * bucket[outcome] / peak
            if h > 0:
                y -= h
                bars.append(
                    {
                        "x": round(PAD + i * slot + 2, 1),
                        "y": round(y, 1),
                        "w": round(slot - 4, 1),
                        "h": round(h, 1),
                        "fill": colour,
                        "title": f"{bucket[outcome]} {outcome}",
                    }
                )
    labels = [
        {"x": round(PAD + i * slot + slot / 2, 1), "text": f"-{int((BUCKETS - i) * span // 60)}m"}
        for i in range(0, BUCKETS, 2)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "base": HEIGHT - PAD,
        "pad": PAD,
        "right": WIDTH - PAD,
        "bars": bars,
        "labels": labels,
        "peak": peak if any(sum(b.values()) for b in totals) else 0,
        "legend": [
            {"name": name, "fill": c, "x": PAD + 110 * i}
            for i, (name, c) in enumerate(COLOURS.items())
        ],
    }


def dashboard_view(model_admin: Any, request: Any) -> TemplateResponse:
    """Render the page (``model_admin`` supplies the admin site's context)."""
    now = timezone.now()
    source, rows, everything = recent_broadcasts(now)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "WebSocket dashboard",
        "opts": model_admin.model._meta,
        "groups": connection_groups(),
        "online": WebSocketSession.objects.filter(connected=True).count(),
        "source": source,
        "broadcasts": rows,
        "refusals": refusal_rows(),
        "chart": chart(everything, now),
    }
    return TemplateResponse(request, "admin/aws_ws_async/dashboard.html", context)
