"""How provisioning reports what it did: a :class:`StepRecorder` and the run's plain state.

The engine knows no database. It reads what earlier runs created from a :class:`GatewayState`
(plain values) and reports every finished step to a :class:`StepRecorder` *as soon as AWS
answers*, so whoever owns the storage (``aws_ws_async.models`` for gateway rows, a test, a task
worker) can persist it at once and a crashed run can be resumed from exactly what AWS has.

A recorder may refuse a step by raising (the models' recorder raises
:class:`~aws_ws_async.exceptions.ProvisioningInProgress` when its claim was taken over): the
engine stops there, before the next AWS call.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol


class Step(enum.StrEnum):
    """The steps a recorder is told about, with the ``values`` each one carries."""

    #: ``api_id``, ``api_endpoint``: ``CreateApi`` answered.
    API_CREATED = "api_created"
    #: (no values) every route and integration of a new API exists.
    ROUTES_CREATED = "routes_created"
    #: ``deployment_id``: the first deployment of a new API (creation is finished).
    DEPLOYED = "deployed"
    #: ``deployment_id``: a later deployment (a push made changes live).
    REDEPLOYED = "redeployed"
    #: ``aws_resources``: the ids of what provisioning created (routes, stage, alias record).
    RESOURCES = "resources"
    #: ``route_key``, ``route_id``, ``integration_id``: an additional route is live.
    ROUTE_DEPLOYED = "route_deployed"
    #: ``route_key``: an additional route was removed from AWS.
    ROUTE_REMOVED = "route_removed"
    #: ``api_gateway_domain_name``, ``api_gateway_hosted_zone_id``: ``CreateDomainName``.
    DOMAIN_CREATED = "domain_created"
    #: ``api_mapping_id``: the custom domain is mapped to the stage (creation).
    MAPPED = "mapped"
    #: ``api_mapping_id``: a missing mapping was re-created by a push.
    REMAPPED = "remapped"
    #: ``custom_domain_created``: the custom domain is finished.
    CUSTOM_DOMAIN_CREATED = "custom_domain_created"


class StepRecorder(Protocol):
    """Persists one finished step; called once per step, in order, awaited before going on."""

    async def record(self, step: str, values: Mapping[str, Any]) -> None: ...


@dataclass
class GatewayState:
    """What earlier runs created in AWS, as plain values (the engine updates it as it goes)."""

    #: Names the gateway in logs and messages (e.g. ``"gateway 3"``).
    label: str = "gateway"
    api_id: str = ""
    api_endpoint: str = ""
    deployment_id: str = ""
    api_gateway_domain_name: str = ""
    api_gateway_hosted_zone_id: str = ""
    api_mapping_id: str = ""
    custom_domain_created: bool = False
    aws_resources: dict[str, Any] = field(default_factory=dict)

    def route_records(self) -> dict[str, dict[str, str]]:
        """``aws_resources["routes"]``: route key -> ids we created for it."""
        routes = (self.aws_resources or {}).get("routes")
        return {k: dict(v) for k, v in routes.items()} if isinstance(routes, dict) else {}

    def managed_route_keys(self) -> frozenset[str]:
        """Route keys provisioning created (a push may update or delete those)."""
        routes = (self.aws_resources or {}).get("routes")
        return frozenset(routes) if isinstance(routes, dict) else frozenset()


STATE_NAMES = frozenset(f.name for f in fields(GatewayState)) - {"label"}


@dataclass
class Run:
    """One provisioning run: the state it works from and the recorder it reports to."""

    state: GatewayState
    recorder: StepRecorder

    async def record(self, step: Step, **values: Any) -> None:
        """Report ``step`` (the recorder persists it first), then update :attr:`state`."""
        await self.recorder.record(step, values)
        for name in values.keys() & STATE_NAMES:
            setattr(self.state, name, values[name])

    async def record_resource(self, key: str, value: Any) -> None:
        """Record one entry of ``aws_resources`` (ids of what this run created)."""
        resources = dict(self.state.aws_resources or {})
        resources[key] = value
        await self.record(Step.RESOURCES, aws_resources=resources)

    async def record_route(self, route_key: str, **ids: str) -> None:
        routes = self.state.route_records()
        routes[route_key] = {**routes.get(route_key, {}), **ids}
        await self.record_resource("routes", routes)
