"""The API Gateway WebSocket API as a Django row (the gateway aggregate's root).

Data, validation, change tracking and the provisioning methods. The methods are thin: the
orchestration (claim, spec, recorder, pull) is in ``models/gateway_provisioning.py``, the AWS
side in the Django-free ``aws_ws_async.provisioning`` engine, pushes after commit in
``models/gateway_hooks.py``; additional routes live in ``models/gateway_routes.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from aws_ws_async.conf import get_settings
from aws_ws_async.models import gateway_provisioning as provisioning
from aws_ws_async.models.endpoints import ApiGatewayManager, endpoint_url
from aws_ws_async.models.gateway_hooks import push_after_commit
from aws_ws_async.models.gateway_routes import ApiGatewayAdditionalRoute
from aws_ws_async.models.gateway_state import ProvisioningStatus
from aws_ws_async.provisioning import Difference
from aws_ws_async.provisioning.rules import (
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_TAGS,
    host_is_allowed,
    tags_problem,
)
from aws_ws_async.sync import call_outside_transaction
from aws_ws_async.validators import (
    validate_api_id,
    validate_api_name,
    validate_channel_name,
    validate_domain_name,
    validate_stage_name,
)

#: Kept importable from here (their homes: ``aws_ws_async.provisioning.rules``,
#: ``models/gateway_state.py`` and ``models/gateway_routes.py``).
__all__ = [
    "MAX_TAGS",
    "MAX_TAG_KEY",
    "MAX_TAG_VALUE",
    "SYNCED_FIELDS",
    "ApiGateway",
    "ApiGatewayAdditionalRoute",
    "ProvisioningStatus",
    "host_is_allowed",
    "tags_problem",
]


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
        help_text=_(
            "Route 53 hosted zone in which to create an alias record for the custom domain."
        ),
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
    management_endpoint_url = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text=_(
            "This gateway's own @connections URL (custom domain, other region, emulator); may "
            "use {api_id}, {region} and {stage}. Empty: the management_endpoint_url setting."
        ),
    )
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

    objects = ApiGatewayManager()

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

    def save(self, *args: Any, push_to_aws: bool | None = None, **kwargs: Any) -> None:
        """Save; if synced fields changed on a deployed gateway, push them after commit.

        ``push_to_aws=None`` follows the ``push_changes_to_aws`` setting; saves with
        ``update_fields`` never push (provisioning itself writes that way). The push runs in
        ``transaction.on_commit``, so no AWS call happens inside the caller's transaction and
        nothing is pushed if it rolls back.
        """
        if self.target_base_endpoint and not self.target_base_endpoint.endswith("/"):
            self.target_base_endpoint += "/"
        changed = self.changed_synced_fields()
        super().save(*args, **kwargs)
        self._aws_snapshot = self._synced_values()
        if push_to_aws is None:
            push_to_aws = get_settings().push_changes_to_aws
        if push_to_aws and changed and self.is_deployed and kwargs.get("update_fields") is None:
            push_after_commit(type(self), self.pk, fields=changed, using=self._state.db)

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
        tags_error = tags_problem(self.tags)
        if tags_error:
            raise ValidationError({"tags": tags_error})
        if self.domain_name and not self.certificate_arn:
            raise ValidationError(
                {"certificate_arn": _("A custom domain needs an ACM certificate ARN.")}
            )

    @property
    def is_deployed(self) -> bool:
        return bool(self.api_created and self.api_id and self.deployment_id)

    @property
    def management_endpoint(self) -> str | None:
        """The ``@connections`` URL posts go to (None: not provisioned, nothing to post to)."""
        return endpoint_url(self.api_id, self.stage_name, self.management_endpoint_url)

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

    # --- change tracking for pushes -------------------------------------------------------

    @classmethod
    def from_db(
        cls, db: str | None, field_names: Any, values: Any, *args: Any, **kwargs: Any
    ) -> ApiGateway:
        instance = super().from_db(db, field_names, values, *args, **kwargs)
        instance._aws_snapshot = instance._synced_values()
        return instance

    def _synced_values(self) -> dict[str, Any]:
        return {
            name: copy.deepcopy(self.__dict__[name])
            for name in SYNCED_FIELDS
            if name in self.__dict__
        }

    def reset_synced_snapshot(self) -> None:
        """Treat the current values as what AWS has (after a pull)."""
        self._aws_snapshot = self._synced_values()

    def changed_synced_fields(self) -> set[str]:
        """Synced fields that differ from what was loaded (empty for new instances)."""
        snapshot: dict[str, Any] = getattr(self, "_aws_snapshot", {})
        return {name for name, old in snapshot.items() if self.__dict__.get(name) != old}

    # --- provisioning (async first, sync twins; the predecessor's names are aliases) -------

    async def acreate_gateway(self) -> list[str]:
        """Create (or resume creating) the API, routes, stage and deployment in AWS."""
        return await provisioning.acreate_gateway(self)

    def create_gateway(self) -> list[str]:
        return call_outside_transaction(self.acreate_gateway)

    async def acreate_custom_domain(self) -> list[str]:
        """Create (or resume creating) the custom domain, API mapping and alias record."""
        return await provisioning.acreate_custom_domain(self)

    def create_custom_domain(self) -> list[str]:
        return call_outside_transaction(self.acreate_custom_domain)

    async def apush_to_aws(
        self, fields: Iterable[str] | None = None, *, dry_run: bool = False
    ) -> list[Difference]:
        """Push local state to AWS; returns the differences fixed (found, with ``dry_run``)."""
        return await provisioning.apush_to_aws(self, fields=fields, dry_run=dry_run)

    def push_to_aws(
        self, fields: Iterable[str] | None = None, *, dry_run: bool = False
    ) -> list[Difference]:
        return call_outside_transaction(self.apush_to_aws, fields, dry_run=dry_run)

    async def apull_from_aws(self, *, dry_run: bool = False) -> list[Difference]:
        """Pull AWS state into this row; returns the differences taken over."""
        return await provisioning.apull_from_aws(self, dry_run=dry_run)

    def pull_from_aws(self, *, dry_run: bool = False) -> list[Difference]:
        return call_outside_transaction(self.apull_from_aws, dry_run=dry_run)

    #: The predecessor's names, kept as documented aliases.
    async_to_aws, sync_to_aws = apush_to_aws, push_to_aws
    async_from_aws, sync_from_aws = apull_from_aws, pull_from_aws

    async def adetect_drift(self) -> list[Difference]:
        """Every difference between this row and AWS, changing nothing."""
        return await provisioning.adetect_gateway_drift(self)

    def detect_drift(self) -> list[Difference]:
        return call_outside_transaction(self.adetect_drift)

    async def aupdate_integrations(self, *, dry_run: bool = False) -> list[Difference]:
        """Rewrite the secret / connection-id header mappings on every integration, redeploy."""
        return await provisioning.apush_to_aws(self, only={"request_parameters"}, dry_run=dry_run)

    def update_integrations(self, *, dry_run: bool = False) -> list[Difference]:
        return call_outside_transaction(self.aupdate_integrations, dry_run=dry_run)

    @property
    def needs_api_creation(self) -> bool:
        return not self.is_deployed

    @property
    def needs_custom_domain(self) -> bool:
        return bool(self.domain_name) and self.is_deployed and not self.custom_domain_created


#: Fields whose change is pushed to AWS on save.
SYNCED_FIELDS = (
    "api_name",
    "api_description",
    "route_selection_expression",
    "api_key_selection_expression",
    "tags",
    "target_base_endpoint",
    "stage_description",
    "enable_route_responses",
)
