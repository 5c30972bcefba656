"""The provisioning claim and the row recorder: how a gateway row follows a provisioning run.

The claim: ``UPDATE ... SET provisioning_claim=<token> WHERE pk=<pk> AND (claim='' OR claim is
stale)`` either changes one row (this run owns the gateway) or none (another run does, and this
one is refused with :class:`ProvisioningInProgress`). It is one statement, so it is race-free on
every database without row locks, and it commits on its own: AWS calls only ever start after the
row that records them is committed, never inside a transaction that could roll back and forget
them.

The recorder (:class:`RowRecorder`, the models' :class:`~aws_ws_async.provisioning.StepRecorder`)
writes each step the engine reports at once, guarded by the token, so a crash leaves the row
pointing at exactly what AWS has and the next run resumes from there. Every statement uses the
gateway's own database (``_state.db``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aws_ws_async.exceptions import ApiGatewaySyncError, ProvisioningInProgress
from aws_ws_async.provisioning import GatewayState, Step, describe_error

logger = logging.getLogger("aws_ws_async.models.gateway_state")

#: A claim older than this is assumed to belong to a crashed run and may be taken over.
CLAIM_TIMEOUT = timedelta(minutes=15)
#: Fields only provisioning writes; refreshed from the database when a run starts.
STATE_FIELDS = (
    "api_id",
    "api_endpoint",
    "deployment_id",
    "api_gateway_domain_name",
    "api_gateway_hosted_zone_id",
    "api_mapping_id",
    "api_created",
    "custom_domain_created",
    "provisioning_status",
    "last_error",
    "provisioning_claim",
    "provisioning_claimed_at",
    "aws_resources",
)


class ProvisioningStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CREATING = "creating", _("Creating (claimed by a run)")
    API_CREATED = "api_created", _("API created")
    ROUTES_CREATED = "routes_created", _("Routes created")
    DEPLOYED = "deployed", _("Deployed")
    DOMAIN_CREATED = "domain_created", _("Custom domain created")
    MAPPED = "mapped", _("Custom domain mapped")
    FAILED = "failed", _("Failed (see last error)")


#: Columns a step sets besides the values the engine reports.
STEP_COLUMNS: dict[str, dict[str, Any]] = {
    Step.API_CREATED: {"api_created": True, "provisioning_status": ProvisioningStatus.API_CREATED},
    Step.ROUTES_CREATED: {"provisioning_status": ProvisioningStatus.ROUTES_CREATED},
    Step.DEPLOYED: {"provisioning_status": ProvisioningStatus.DEPLOYED},
    Step.DOMAIN_CREATED: {"provisioning_status": ProvisioningStatus.DOMAIN_CREATED},
    Step.MAPPED: {"provisioning_status": ProvisioningStatus.MAPPED},
}


def manager_of(instance: models.Model) -> Any:
    """The default manager on the instance's own database (``.using()`` is honoured)."""
    return type(instance)._default_manager.db_manager(instance._state.db)


def state_of(gateway: Any) -> GatewayState:
    """The plain state the engine starts from."""
    return GatewayState(
        label=f"gateway {gateway.pk}",
        api_id=gateway.api_id,
        api_endpoint=gateway.api_endpoint,
        deployment_id=gateway.deployment_id,
        api_gateway_domain_name=gateway.api_gateway_domain_name,
        api_gateway_hosted_zone_id=gateway.api_gateway_hosted_zone_id,
        api_mapping_id=gateway.api_mapping_id,
        custom_domain_created=gateway.custom_domain_created,
        aws_resources=dict(gateway.aws_resources or {}),
    )


@dataclass
class Claim:
    """A held claim on one gateway row (any model with the provisioning columns)."""

    gateway: Any
    token: str

    async def record(self, **fields: Any) -> None:
        """Persist step results now (own statement, committed), and on the instance."""
        updated = await (
            manager_of(self.gateway)
            .filter(pk=self.gateway.pk, provisioning_claim=self.token)
            .aupdate(**fields, updated_on=timezone.now())
        )
        if updated != 1:
            raise ProvisioningInProgress(
                f"Gateway {self.gateway.pk}: the provisioning claim was lost (taken over after "
                f"{CLAIM_TIMEOUT}); stopping."
            )
        for name, value in fields.items():
            setattr(self.gateway, name, value)


@dataclass
class RowRecorder:
    """The :class:`~aws_ws_async.provisioning.StepRecorder` that writes steps to the row."""

    claim: Claim

    async def record(self, step: str, values: Mapping[str, Any]) -> None:
        gateway = self.claim.gateway
        if step in {Step.ROUTE_DEPLOYED, Step.ROUTE_REMOVED}:
            live = step == Step.ROUTE_DEPLOYED
            routes = gateway.additional_routes.using(gateway._state.db)
            await routes.filter(route_key=values["route_key"]).aupdate(
                route_id=values.get("route_id", "") if live else "",
                integration_id=values.get("integration_id", "") if live else "",
                deployed=live,
            )
            return
        await self.claim.record(**values, **STEP_COLUMNS.get(step, {}))


async def acquire(gateway: Any, **extra: Any) -> Claim:
    """Take the claim or raise :class:`ProvisioningInProgress` (nothing else is written)."""
    token = uuid.uuid4().hex
    now = timezone.now()
    manager = manager_of(gateway)
    updated = await manager.filter(
        Q(provisioning_claim="") | Q(provisioning_claimed_at__lt=now - CLAIM_TIMEOUT),
        pk=gateway.pk,
    ).aupdate(provisioning_claim=token, provisioning_claimed_at=now, **extra)
    if updated != 1:
        if not await manager.filter(pk=gateway.pk).aexists():
            raise ApiGatewaySyncError(f"Gateway {gateway.pk} does not exist.")
        raise ProvisioningInProgress(
            f"Gateway {gateway.pk} ({gateway.api_name}) is being provisioned by another run; "
            "try again when it has finished."
        )
    fresh = await manager.only(*STATE_FIELDS).aget(pk=gateway.pk)
    # Bring the caller's instance up to date with what earlier runs recorded; fields the user
    # edits are left alone, so unsaved edits on the instance are what gets pushed.
    for name in STATE_FIELDS:
        setattr(gateway, name, getattr(fresh, name))
    return Claim(gateway=gateway, token=token)


async def release(claim: Claim, error: BaseException | None = None, **extra: Any) -> None:
    """Give the claim back; with ``error``, store it in ``last_error``."""
    fields: dict[str, Any] = {"provisioning_claim": "", "provisioning_claimed_at": None, **extra}
    fields["last_error"] = describe_error(error) if error is not None else ""
    await (
        manager_of(claim.gateway)
        .filter(pk=claim.gateway.pk, provisioning_claim=claim.token)
        .aupdate(**fields, updated_on=timezone.now())
    )
    for name, value in fields.items():
        setattr(claim.gateway, name, value)


@asynccontextmanager
async def claimed(
    gateway: Any,
    operation: str,
    on_error: Callable[[], dict[str, Any]] | None = None,
    **extra: Any,
) -> AsyncIterator[Claim]:
    """Hold the claim for the body; failures are recorded and re-raised as
    :class:`ApiGatewaySyncError` (``ProvisioningInProgress`` passes through untouched)."""
    claim = await acquire(gateway, **extra)
    try:
        yield claim
    except ProvisioningInProgress:
        raise
    except BaseException as exc:
        logger.exception("%s failed for gateway %s", operation, gateway.pk)
        fields = on_error() if on_error is not None else {}
        try:
            await release(claim, exc, **fields)
        except Exception:  # the original error matters more than a failed bookkeeping write
            logger.exception("could not release the claim on gateway %s", gateway.pk)
        if isinstance(exc, ApiGatewaySyncError) or not isinstance(exc, Exception):
            raise
        raise ApiGatewaySyncError(f"{operation} failed: {describe_error(exc)}") from exc
    else:
        await release(claim)
