"""An additional route of a gateway: a custom route key with its own integration URL.

Part of the gateway aggregate (``models/gateways.py`` re-exports it); its own module keeps each
file small. Its provisioning goes through ``models/gateway_provisioning.py`` like the gateway's.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from aws_ws_async.conf import get_settings
from aws_ws_async.models import gateway_provisioning as provisioning
from aws_ws_async.models.gateway_hooks import push_after_commit
from aws_ws_async.provisioning import Difference
from aws_ws_async.provisioning.rules import host_is_allowed
from aws_ws_async.sync import call_outside_transaction
from aws_ws_async.validators import validate_route_key


class ApiGatewayAdditionalRoute(models.Model):
    """A custom route key (e.g. ``sendmessage``) with its own integration URL."""

    api_gateway = models.ForeignKey(
        "aws_ws_async.ApiGateway", on_delete=models.CASCADE, related_name="additional_routes"
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
        app_label = "aws_ws_async"
        verbose_name = _("additional route")
        constraints = [
            models.UniqueConstraint(
                fields=["api_gateway", "route_key"], name="aws_ws_async_unique_route_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.route_key})"

    def save(self, *args: Any, push_to_aws: bool | None = None, **kwargs: Any) -> None:
        """Save; a new or changed route of a deployed gateway is pushed *after commit*.

        The predecessor created new routes in AWS synchronously inside the admin's transaction;
        here nothing reaches AWS until the row is committed.
        """
        keys = self._push_keys()
        super().save(*args, **kwargs)
        self._loaded_key, self._loaded_url = self.route_key, self.integration_url
        if push_to_aws is None:
            push_to_aws = get_settings().push_changes_to_aws
        if push_to_aws and keys and kwargs.get("update_fields") is None:
            self._push_after_commit(keys)

    def delete(self, *args: Any, push_to_aws: bool | None = None, **kwargs: Any) -> Any:
        """Delete; the AWS route (if we created it) is removed after commit."""
        key = self.route_key
        using = self._state.db
        result = super().delete(*args, **kwargs)
        if push_to_aws is None:
            push_to_aws = get_settings().push_changes_to_aws
        if push_to_aws:
            self._push_after_commit({key}, using)
        return result

    def clean(self) -> None:
        super().clean()
        allowed = get_settings().allowed_integration_hosts
        if self.integration_url and allowed:
            host = urlsplit(self.integration_url).hostname or ""
            if not host_is_allowed(host, allowed):
                raise ValidationError(
                    {"integration_url": _("This host is not in allowed_integration_hosts.")}
                )

    # --- change tracking and provisioning -------------------------------------------------

    @classmethod
    def from_db(
        cls, db: str | None, field_names: Any, values: Any, *args: Any, **kwargs: Any
    ) -> ApiGatewayAdditionalRoute:
        instance = super().from_db(db, field_names, values, *args, **kwargs)
        instance._loaded_key = str(instance.__dict__.get("route_key", ""))
        instance._loaded_url = str(instance.__dict__.get("integration_url", ""))
        return instance

    def _push_keys(self) -> set[str]:
        """Route keys a save must push: the current one and a renamed-away one."""
        old_key = getattr(self, "_loaded_key", None)
        old_url = getattr(self, "_loaded_url", None)
        if old_key == self.route_key and old_url == self.integration_url:
            return set()
        return {self.route_key} | ({old_key} if old_key else set())

    def _push_after_commit(self, keys: set[str], using: str | None = None) -> None:
        # No query here: whether the gateway is deployed is checked after commit.
        gateway_model = cast(
            "type[models.Model]", self._meta.get_field("api_gateway").related_model
        )
        push_after_commit(
            gateway_model, self.api_gateway_id, route_keys=keys, using=using or self._state.db
        )

    async def acreate_route(self) -> list[Difference]:
        """Create (or repair) this route and its integration in AWS, then redeploy."""
        return await provisioning.aupdate_route(self)

    def create_route(self) -> list[Difference]:
        return call_outside_transaction(self.acreate_route)

    async def aupdate_route(self) -> list[Difference]:
        """Push this route's key and integration URL to AWS, then redeploy."""
        return await provisioning.aupdate_route(self)

    def update_route(self) -> list[Difference]:
        return call_outside_transaction(self.aupdate_route)

    async def adelete_route(self) -> list[Difference]:
        """Delete this row and its AWS route and integration, then redeploy."""
        return await provisioning.adelete_route(self)

    def delete_route(self) -> list[Difference]:
        return call_outside_transaction(self.adelete_route)
