"""The API Gateway WebSocket API as a Django row, and its additional routes.

Provisioning (creating and synchronising these in AWS) lives in ``aws_ws_async.provisioning``;
this module only holds data, validation and cheap queries.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from aws_ws_async.conf import get_settings
from aws_ws_async.validators import (
    validate_api_id,
    validate_api_name,
    validate_channel_name,
    validate_domain_name,
    validate_route_key,
    validate_stage_name,
)


def host_is_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``host`` matches one entry; ``*.example.com`` matches sub-domains only."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif host == entry:
            return True
    return False


class ProvisioningStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CREATING = "creating", _("Creating (claimed by a run)")
    API_CREATED = "api_created", _("API created")
    ROUTES_CREATED = "routes_created", _("Routes created")
    DEPLOYED = "deployed", _("Deployed")
    DOMAIN_CREATED = "domain_created", _("Custom domain created")
    MAPPED = "mapped", _("Custom domain mapped")
    FAILED = "failed", _("Failed (see last error)")


class ApiGateway(models.Model):
    """One API Gateway WebSocket API, its stage and optional custom domain."""

    api_name = models.CharField(max_length=128, unique=True, validators=[validate_api_name])
    api_description = models.CharField(max_length=255, blank=True, default="")
    default_channel_name = models.CharField(
        max_length=128,
        blank=True,
        default="",
        validators=[validate_channel_name],
        help_text=_("Channel a connection joins when it names none."),
    )
    domain_name = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_index=True,
        validators=[validate_domain_name],
        help_text=_("Optional custom domain, e.g. ws.example.com."),
    )
    target_base_endpoint = models.URLField(
        null=True,
        blank=True,
        help_text=_(
            "Base URL of the Django view, ending in '/'; integrations post to "
            "<base>connect, <base>disconnect and <base>default."
        ),
    )
    certificate_arn = models.CharField(max_length=255, blank=True, default="")
    hosted_zone_id = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text=_("Route 53 hosted zone in which to create an alias record for the custom domain."),
    )
    api_key_selection_expression = models.CharField(
        max_length=255, default="$request.header.x-api-key"
    )
    route_selection_expression = models.CharField(max_length=255, default="$request.body.action")
    route_key = models.CharField(
        max_length=255,
        default="$default",
        help_text=_("Kept for compatibility; WebSocket APIs take no route key at creation."),
    )
    stage_name = models.CharField(
        max_length=63, default="production", validators=[validate_stage_name]
    )
    stage_description = models.CharField(max_length=255, blank=True, default="")
    enable_route_responses = models.BooleanField(
        default=False,
        help_text=_(
            "Create $default route responses so a handler's return value is sent back to the "
            "sender (two-way routes)."
        ),
    )
    tags = models.JSONField(default=dict, blank=True)

    # --- state written by provisioning ---
    api_id = models.CharField(
        max_length=32, blank=True, default="", db_index=True, validators=[validate_api_id]
    )
    api_endpoint = models.CharField(max_length=255, blank=True, default="")
    deployment_id = models.CharField(max_length=32, blank=True, default="", editable=False)
    api_gateway_domain_name = models.CharField(max_length=255, blank=True, default="")
    api_gateway_hosted_zone_id = models.CharField(
        max_length=32, blank=True, default="", editable=False
    )
    api_mapping_id = models.CharField(max_length=128, blank=True, default="")
    api_created = models.BooleanField(default=False, editable=False, db_index=True)
    custom_domain_created = models.BooleanField(default=False, editable=False, db_index=True)
    provisioning_status = models.CharField(
        max_length=16,
        choices=ProvisioningStatus.choices,
        default=ProvisioningStatus.PENDING,
        editable=False,
    )
    last_error = models.TextField(blank=True, default="", editable=False)
    #: Token of the provisioning run that holds this row ("" = free); taken by conditional UPDATE.
    provisioning_claim = models.CharField(max_length=64, blank=True, default="", editable=False)
    provisioning_claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: Ids of the AWS resources provisioning created, recorded step by step so runs can resume.
    aws_resources = models.JSONField(default=dict, blank=True, editable=False)
    created_on = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_on = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("API Gateway")
        verbose_name_plural = _("API Gateways")
        constraints = [
            models.UniqueConstraint(
                fields=["api_id"],
                condition=~Q(api_id=""),
                name="aws_ws_async_unique_nonempty_api_id",
            ),
        ]

    def __str__(self) -> str:
        return self.api_name

    def clean(self) -> None:
        super().clean()
        if self.target_base_endpoint:
            if not self.target_base_endpoint.endswith("/"):
                self.target_base_endpoint += "/"
            allowed = get_settings().allowed_integration_hosts
            host = urlsplit(self.target_base_endpoint).hostname or ""
            if allowed and not host_is_allowed(host, allowed):
                raise ValidationError(
                    {"target_base_endpoint": _("This host is not in allowed_integration_hosts.")}
                )
        if self.domain_name and not self.certificate_arn:
            raise ValidationError(
                {"certificate_arn": _("A custom domain needs an ACM certificate ARN.")}
            )

    @property
    def is_deployed(self) -> bool:
        return bool(self.api_created and self.api_id and self.deployment_id)

    @property
    def websocket_url(self) -> str:
        """The ``wss://`` URL clients connect to (custom domain when mapped)."""
        if self.domain_name and self.custom_domain_created:
            return f"wss://{self.domain_name}"
        if self.api_endpoint:
            return f"{self.api_endpoint.rstrip('/')}/{self.stage_name}"
        return ""

    def integration_uri(self, route: str) -> str:
        """The URL API Gateway posts ``route`` (connect, disconnect, default) to."""
        return f"{self.target_base_endpoint or ''}{route}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.target_base_endpoint and not self.target_base_endpoint.endswith("/"):
            self.target_base_endpoint += "/"
        super().save(*args, **kwargs)


class ApiGatewayAdditionalRoute(models.Model):
    """A custom route key (e.g. ``sendmessage``) with its own integration URL."""

    api_gateway = models.ForeignKey(
        ApiGateway, on_delete=models.CASCADE, related_name="additional_routes"
    )
    name = models.CharField(max_length=63)
    route_key = models.CharField(max_length=64, db_index=True, validators=[validate_route_key])
    integration_url = models.URLField()
    deployed = models.BooleanField(default=False)
    route_id = models.CharField(max_length=32, blank=True, default="", editable=False)
    integration_id = models.CharField(max_length=32, blank=True, default="", editable=False)
    created_on = models.DateTimeField(auto_now_add=True)
    updated_on = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("additional route")
        constraints = [
            models.UniqueConstraint(
                fields=["api_gateway", "route_key"], name="aws_ws_async_unique_route_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.route_key})"

    def clean(self) -> None:
        super().clean()
        allowed = get_settings().allowed_integration_hosts
        if self.integration_url and allowed:
            host = urlsplit(self.integration_url).hostname or ""
            if not host_is_allowed(host, allowed):
                raise ValidationError(
                    {"integration_url": _("This host is not in allowed_integration_hosts.")}
                )
