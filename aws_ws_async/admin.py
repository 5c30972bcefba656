"""Django admin for every aws_ws_async model.

Connection, token and rate-limit rows are written by the views only, so their admins are
read-only (view and delete, never add or change) and hide every hash. User searches are built
from the user model's ``USERNAME_FIELD`` and email field at run time, so a custom user model
without ``username`` works (the predecessor hard-coded ``user__username``).

Provisioning actions for gateways live in ``aws_ws_async.admin_actions`` and are wired in via
``ApiGatewayAdmin.actions``; the session operations (disconnect, send a message, send to a
channel, connected counts) live in ``aws_ws_async.admin_sessions``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import Count, ManyToManyField, Q, QuerySet
from django.forms import ModelMultipleChoiceField
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from aws_ws_async import (
    admin_broadcasts,  # noqa: F401 (registers the Broadcast pages)
    admin_channels,  # noqa: F401 (registers the channel history pages)
    admin_dashboard,
    admin_sessions,
    admin_subscriptions,
)
from aws_ws_async.admin_actions import GATEWAY_ACTIONS
from aws_ws_async.models import (
    ApiGateway,
    ApiGatewayAdditionalRoute,
    ChannelPermission,
    ChannelPermissionRule,
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)

#: Integration URLs are always HTTPS in practice; also silences Django 5.x's scheme warning.
URL_FIELD_OVERRIDES: dict[Any, dict[str, Any]] = {models.URLField: {"assume_scheme": "https"}}


def user_search_fields(prefix: str = "user__") -> list[str]:
    """Search lookups for the user's login name and email, whatever the user model calls them."""
    user_model = get_user_model()
    names: list[str] = []
    for name in (user_model.USERNAME_FIELD, user_model.get_email_field_name()):
        try:
            user_model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        lookup = f"{prefix}{name}"
        if lookup not in names:
            names.append(lookup)
    return names


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only the application writes: viewable and deletable, never added or edited."""

    show_full_result_count = False  # these tables grow large; skip the second COUNT(*)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [*super().get_search_fields(request), *user_search_fields()]


# --- gateways ------------------------------------------------------------------------------


class ApiGatewayAdditionalRouteInline(admin.TabularInline):
    model = ApiGatewayAdditionalRoute
    extra = 0
    formfield_overrides = URL_FIELD_OVERRIDES
    fields = ("name", "route_key", "integration_url", "deployed", "route_id")
    readonly_fields = ("deployed", "route_id")


#: Fields only provisioning writes; editing them by hand would desynchronise the row from AWS.
PROVISIONING_FIELDS = (
    "provisioning_status",
    "api_created",
    "custom_domain_created",
    "api_endpoint",
    "deployment_id",
    "api_gateway_domain_name",
    "api_gateway_hosted_zone_id",
    "api_mapping_id",
    "last_error",
    "created_on",
    "updated_on",
)


@admin.register(ApiGateway)
class ApiGatewayAdmin(admin.ModelAdmin):
    list_display = (
        "api_name",
        "api_id",
        "stage_name",
        "connected_sessions",  # early: the live count is what operators look for
        "domain_name",
        "provisioning_status",
        "api_created",
        "custom_domain_created",
        "updated_on",
    )
    list_filter = ("provisioning_status", "api_created", "custom_domain_created")
    search_fields = ("domain_name", "api_name", "api_id")
    ordering = ("api_name",)
    formfield_overrides = URL_FIELD_OVERRIDES
    inlines = (ApiGatewayAdditionalRouteInline,)
    # Provisioning actions live in aws_ws_async.admin_actions.
    actions: list[Any] = list(GATEWAY_ACTIONS)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "api_name",
                    "api_description",
                    "default_channel_name",
                    "target_base_endpoint",
                    "stage_name",
                    "stage_description",
                    "enable_route_responses",
                )
            },
        ),
        (
            "Custom domain",
            {"fields": ("domain_name", "certificate_arn", "hosted_zone_id")},
        ),
        (
            "Advanced",
            {
                "classes": ("collapse",),
                "fields": (
                    "api_key_selection_expression",
                    "route_selection_expression",
                    "route_key",
                    "tags",
                    "management_endpoint_url",
                ),
            },
        ),
        ("Provisioning state", {"fields": ("api_id", *PROVISIONING_FIELDS)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiGateway]:
        # The live count is part of the changelist's own query (no query per row).
        queryset: QuerySet[ApiGateway] = super().get_queryset(request)
        return queryset.annotate(
            live_connections=Count("sessions", filter=Q(sessions__connected=True))
        )

    @admin.display(description="Connected", ordering="live_connections")
    def connected_sessions(self, obj: ApiGateway) -> str:
        """The gateway's live connections, linked to its sessions in the session changelist."""
        count = getattr(obj, "live_connections", None)
        if count is None:  # an object not loaded through get_queryset
            count = obj.sessions.filter(connected=True).count()
        url = reverse(
            "admin:aws_ws_async_websocketsession_changelist", current_app=self.admin_site.name
        )
        query = urlencode({"api_gateway__id__exact": str(obj.pk), "connected__exact": "1"})
        return format_html('<a href="{}?{}">{}</a>', url, query, count)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # ``api_id`` may be typed in to adopt an existing API, but not once we created it.
        if obj is not None and obj.api_created:
            return ("api_id", *PROVISIONING_FIELDS)
        return PROVISIONING_FIELDS


@admin.register(ApiGatewayAdditionalRoute)
class ApiGatewayAdditionalRouteAdmin(admin.ModelAdmin):
    list_display = ("name", "route_key", "api_gateway", "integration_url", "deployed")
    list_filter = ("deployed",)
    search_fields = ("name", "route_key", "api_gateway__api_name")
    autocomplete_fields = ("api_gateway",)
    ordering = ("api_gateway__api_name", "route_key")
    formfield_overrides = URL_FIELD_OVERRIDES
    list_select_related = ("api_gateway",)
    readonly_fields = ("route_id", "integration_id", "created_on", "updated_on")


# --- connections, tokens, rate limits (read-only) ------------------------------------------


@admin.register(WebSocketSession)
class WebSocketSessionAdmin(ReadOnlyAdmin):
    list_display = (
        "connection_id",
        "channel_name",
        admin_subscriptions.channels_column,
        "user",
        "api_gateway",
        "connected",
        "connected_at",
        "last_seen_at",
        "disconnect_reason",
    )
    list_filter = (
        "connected",
        "disconnect_reason",
        "api_gateway",
        admin_subscriptions.SubscribedChannelFilter,
    )
    inlines = (admin_subscriptions.SubscriptionInline,)
    search_fields = ("connection_id", "channel_name")
    list_select_related = ("user", "api_gateway")
    # request_count is kept for compatibility but no longer maintained (no write per message).
    exclude = ("session_key_hash", "auth_hash", "request_count")
    date_hierarchy = "connected_at"
    ordering = ("-id",)
    actions: list[Any] = list(admin_sessions.SESSION_ACTIONS)
    #: Total deadline (seconds) of one disconnect or send started from the admin.
    operation_timeout_seconds = admin_sessions.DEFAULT_TIMEOUT_SECONDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebSocketSession]:
        """Every channel of each listed row comes from one prefetch query per page."""
        return admin_subscriptions.with_channels(super().get_queryset(request))

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Closing and messaging connections needs ``change_websocketsession``."""
        return admin_sessions.can_operate(request)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.send_to_channel_view)
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}_send_to_channel"
        dashboard = self.admin_site.admin_view(self.dashboard_view)
        return [
            path("send-to-channel/", view, name=name),
            path("dashboard/", dashboard, name=f"{opts.app_label}_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """Connections, recent broadcasts, refusals and outcomes (``admin_dashboard``)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return admin_dashboard.dashboard_view(self, request)

    def send_to_channel_view(self, request: HttpRequest) -> HttpResponse:
        return admin_sessions.send_to_channel_view(self, request)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = dict(extra_context or {})
        if request.method == "GET":  # an action's POST never renders the header
            changelist = reverse(
                "admin:aws_ws_async_websocketsession_changelist", current_app=self.admin_site.name
            )
            context["connection_counts"] = admin_sessions.connection_counts(
                self.get_queryset(request), changelist
            )
            context["can_operate"] = admin_sessions.can_operate(request)
            context["send_to_channel_url"] = reverse(
                admin_sessions.SEND_TO_CHANNEL, current_app=self.admin_site.name
            )
        return super().changelist_view(request, context)


@admin.register(WebSocketToken)
class WebSocketTokenAdmin(ReadOnlyAdmin):
    list_display = ("pk", "user", "created_at", "expires_at", "used", "used_at")
    list_filter = ("used",)
    ordering = ("-id",)
    list_select_related = ("user",)
    exclude = ("token", "session_key_hash")


@admin.register(ConnectionRateLimit)
class ConnectionRateLimitAdmin(ReadOnlyAdmin):
    list_display = ("ip_address", "user", "attempt_time", "successful", "reason")
    list_filter = ("successful", "reason")
    search_fields = ("ip_address",)
    ordering = ("-id",)
    list_select_related = ("user",)


# --- channel permissions -------------------------------------------------------------------


class ChannelPermissionRuleInline(admin.TabularInline):
    model = ChannelPermissionRule
    extra = 0
    fields = ("description", "permissions")
    filter_horizontal = ("permissions",)

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField[Any] | None:
        if db_field.name == "permissions":
            # Permission.__str__ reads its content type: fetch them in the same query.
            kwargs["queryset"] = Permission.objects.select_related("content_type")
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(ChannelPermission)
class ChannelPermissionAdmin(admin.ModelAdmin):
    list_display = ("channel_name", "access", "description", "updated_on")
    list_filter = ("access",)
    search_fields = ("channel_name", "description")
    ordering = ("channel_name",)
    inlines = (ChannelPermissionRuleInline,)
