"""The session admin's view of subscriptions: every channel a connection listens to.

``WebSocketSession.channel_name`` is only a connection's *first* channel; since a connection
can subscribe to more (``docs/channels.md``), the session admin shows them all:

* :class:`SubscriptionInline`: the connection's subscription rows on its page (read-only, like
  the sessions themselves: only the application writes them);
* :func:`channels_column`: a "Channels" column, from one prefetch query per changelist page
  (:func:`with_channels`), never one query per row;
* :class:`SubscribedChannelFilter`: "Subscribed to" in the sidebar (the first channels by name;
  any other one by URL, ``?subscribed_to=<channel>``); selecting one keeps the sessions
  subscribed to it (an ``EXISTS``, so a session is listed once).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from aws_ws_async.models import ChannelSubscription, WebSocketSession

#: Channels offered by the filter (by name).
MAX_FILTER_CHANNELS = 50


class SubscriptionInline(admin.TabularInline):
    model = ChannelSubscription
    extra = 0
    fields = ("channel_name", "subscribed_at")
    readonly_fields = ("channel_name", "subscribed_at")
    ordering = ("channel_name",)
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def with_channels(queryset: QuerySet[WebSocketSession]) -> QuerySet[WebSocketSession]:
    """Prefetch each listed session's subscriptions (one query per page)."""
    rows = ChannelSubscription.objects.order_by("channel_name").only("session_id", "channel_name")
    return queryset.prefetch_related(Prefetch("subscriptions", queryset=rows))


@admin.display(description=_("channels"))
def channels_column(obj: WebSocketSession) -> str:
    """Every channel of the connection, from the prefetch (the first one is ``channel_name``)."""
    return ", ".join(s.channel_name for s in obj.subscriptions.all()) or "-"


class SubscribedChannelFilter(admin.SimpleListFilter):
    title = _("subscribed to")
    parameter_name = "subscribed_to"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = (
            ChannelSubscription.objects.order_by("channel_name")
            .values_list("channel_name", flat=True)
            .distinct()[:MAX_FILTER_CHANNELS]
        )
        return [(name, name) for name in names]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[WebSocketSession]
    ) -> QuerySet[WebSocketSession]:
        value = self.value()
        if not value:
            return queryset
        rows = ChannelSubscription.objects.filter(session_id=OuterRef("pk"), channel_name=value)
        return queryset.filter(Exists(rows))
