"""The provisioning claim: one run per gateway at a time, taken by a conditional UPDATE.

``UPDATE ... SET provisioning_claim=<token> WHERE pk=<pk> AND (claim='' OR claim is stale)``
either changes one row (this run owns the gateway) or none (another run does, and this one is
refused with :class:`ProvisioningInProgress`). It is one statement, so it is race-free on every
database without row locks, and it commits on its own: AWS calls only ever start after the row
that records them is committed, never inside a transaction that could roll back and forget them.

Each finished step is written at once (``record``), guarded by the token, so a crash leaves the
row pointing at exactly what AWS has and the next run resumes from there.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Q
from django.utils import timezone

from aws_ws_async.exceptions import ApiGatewaySyncError, ProvisioningInProgress
from aws_ws_async.provisioning.clients import error_code

if TYPE_CHECKING:
    from aws_ws_async.models.gateways import ApiGateway

logger = logging.getLogger("aws_ws_async.provisioning.claim")

#: A claim older than this is assumed to belong to a crashed run and may be taken over.
CLAIM_TIMEOUT = timedelta(minutes=15)
LAST_ERROR_MAX = 1000
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


def describe_error(exc: BaseException) -> str:
    """``last_error`` text: the AWS error code and operation, or the exception class (bounded)."""
    code = error_code(exc)
    if code:
        response = getattr(exc, "response", {})
        message = response.get("Error", {}).get("Message", "") or str(exc)
        operation = getattr(exc, "operation_name", "")
        text = f"{code} ({operation}): {message}" if operation else f"{code}: {message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:LAST_ERROR_MAX]


@dataclass
class Claim:
    """A held claim; ``record`` writes step results to the row while the claim is held."""

    gateway: ApiGateway
    token: str

    async def record(self, **fields: Any) -> None:
        """Persist step results now (own statement, committed), and on the instance."""
        manager = type(self.gateway)._default_manager
        updated = await manager.filter(pk=self.gateway.pk, provisioning_claim=self.token).aupdate(
            **fields, updated_on=timezone.now()
        )
        if updated != 1:
            raise ProvisioningInProgress(
                f"Gateway {self.gateway.pk}: the provisioning claim was lost (taken over after "
                f"{CLAIM_TIMEOUT}); stopping."
            )
        for name, value in fields.items():
            setattr(self.gateway, name, value)

    async def record_resource(self, key: str, value: Any) -> None:
        """Record one entry of ``aws_resources`` (ids of what this run created)."""
        resources = dict(self.gateway.aws_resources or {})
        resources[key] = value
        await self.record(aws_resources=resources)


async def acquire(gateway: ApiGateway, **extra: Any) -> Claim:
    """Take the claim or raise :class:`ProvisioningInProgress` (nothing else is written)."""
    token = uuid.uuid4().hex
    now = timezone.now()
    manager = type(gateway)._default_manager
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
    manager = type(claim.gateway)._default_manager
    await manager.filter(pk=claim.gateway.pk, provisioning_claim=claim.token).aupdate(
        **fields, updated_on=timezone.now()
    )
    for name, value in fields.items():
        setattr(claim.gateway, name, value)


@asynccontextmanager
async def claimed(
    gateway: ApiGateway,
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
