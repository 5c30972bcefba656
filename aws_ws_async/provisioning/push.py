"""Push the desired state to AWS (``push_to_aws``) and detect drift.

Both compare a :class:`~aws_ws_async.provisioning.spec.GatewaySpec` with a fresh snapshot of AWS
(:mod:`.drift`); a push then fixes exactly the differences it found and redeploys once if
anything changed. Secret rotation is a push narrowed to ``only={"request_parameters"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aws_ws_async.provisioning.clients import (
    api_arn,
    apigatewayv2_client,
    error_code,
    region_of,
)
from aws_ws_async.provisioning.drift import Difference, compare, groups_for_fields
from aws_ws_async.provisioning.recorder import GatewayState, Run, Step
from aws_ws_async.provisioning.remote import (
    NOT_FOUND,
    RemoteState,
    fetch_mappings,
    fetch_remote_state,
)
from aws_ws_async.provisioning.spec import (
    GatewaySpec,
    api_mapping_params,
    check_hosts,
    update_api_params,
)
from aws_ws_async.provisioning.steps import deploy, ensure_route, ensure_stage, remove_route

logger = logging.getLogger("aws_ws_async.provisioning.push")

ROUTE_GROUPS = frozenset({"route", "integration", "route_response"})


async def fetch_snapshot(client: Any, spec: GatewaySpec, state: GatewayState) -> RemoteState:
    """AWS's side of the comparison (with the domain's mappings once the domain exists)."""
    remote = await fetch_remote_state(client, state.api_id, spec.stage_name)
    if state.custom_domain_created and spec.domain_name:
        remote.mappings = await fetch_mappings(client, spec.domain_name)
    return remote


def _select(
    diffs: list[Difference],
    groups: set[str] | None,
    route_keys: set[str] | None,
    fields: set[str] | None,
) -> list[Difference]:
    """Narrow ``diffs``: to what changed fields feed and/or to some routes, then to fields."""
    selected = [d for d in diffs if d.group != "unmanaged"]
    if groups is not None or route_keys is not None:
        selected = [
            d
            for d in selected
            if (groups is not None and d.group in groups)
            or (route_keys is not None and d.group in ROUTE_GROUPS and d.route_key in route_keys)
        ]
    if fields is not None:
        selected = [d for d in selected if d.field in fields]
    return selected


def _narrowing(
    fields: Iterable[str] | None, route_keys: Iterable[str] | None, only: Iterable[str] | None
) -> tuple[set[str] | None, set[str] | None, set[str] | None]:
    groups = groups_for_fields(set(fields)) if fields is not None else None
    keys = set(route_keys) if route_keys is not None else None
    return groups, keys, set(only) if only is not None else None


async def adetect_drift(spec: GatewaySpec, state: GatewayState) -> list[Difference]:
    """Every difference between ``spec`` and AWS (including routes added by hand in AWS)."""
    async with apigatewayv2_client() as client:
        try:
            remote = await fetch_snapshot(client, spec, state)
        except Exception as exc:
            if error_code(exc) != NOT_FOUND:
                raise
            return [Difference("api", "api", "exists", True, False)]
    return compare(spec, remote, state.managed_route_keys())


async def aplan_push(
    spec: GatewaySpec,
    state: GatewayState,
    *,
    fields: Iterable[str] | None = None,
    route_keys: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
) -> list[Difference]:
    """The differences :func:`apush` would fix with the same narrowing (changes nothing)."""
    async with apigatewayv2_client() as client:
        remote = await fetch_snapshot(client, spec, state)
    return _select(
        compare(spec, remote, state.managed_route_keys()), *_narrowing(fields, route_keys, only)
    )


async def apush(
    spec: GatewaySpec,
    run: Run,
    *,
    fields: Iterable[str] | None = None,
    route_keys: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
) -> list[Difference]:
    """Make AWS match ``spec``; returns the differences fixed.

    ``fields`` narrows the push to what those model fields feed (a save pushes only what it
    changed); ``route_keys`` to those routes; ``only`` to those difference fields (e.g.
    ``{"request_parameters"}`` for secret rotation). Routes added by hand in AWS are never
    deleted; routes we created and ``spec`` no longer has are.
    """
    async with apigatewayv2_client() as client:
        remote = await fetch_snapshot(client, spec, run.state)
        diffs = _select(
            compare(spec, remote, run.state.managed_route_keys()),
            *_narrowing(fields, route_keys, only),
        )
        if diffs:
            check_hosts(spec)
            await _apply(client, run, spec, remote, diffs)
            await deploy(client, run, spec)
    if diffs:
        logger.info("%s pushed: %s", run.state.label, "; ".join(map(str, diffs)))
    return diffs


async def _apply(
    client: Any, run: Run, spec: GatewaySpec, remote: RemoteState, diffs: list[Difference]
) -> None:
    api_id = run.state.api_id
    kinds = {d.group for d in diffs}
    if "api" in kinds:
        await client.update_api(**update_api_params(spec, api_id))
    if "tags" in kinds:
        arn = api_arn(region_of(client), api_id)
        removed = sorted(set(remote.tags) - set(spec.tags))
        if removed:
            await client.untag_resource(ResourceArn=arn, TagKeys=removed)
        if spec.tags:
            await client.tag_resource(ResourceArn=arn, Tags=dict(spec.tags))
    for key in dict.fromkeys(d.route_key for d in diffs if d.group in ROUTE_GROUPS):
        route = spec.route(key)
        if route is not None:
            await ensure_route(client, run, spec, route, remote)
        elif key in run.state.route_records() or key in remote.routes:
            await remove_route(client, run, key, remote)
            await run.record(Step.ROUTE_REMOVED, route_key=key)
    if "stage" in kinds:
        await ensure_stage(client, run, spec, remote)
    if "domain" in kinds and remote.mappings is not None:
        response = await client.create_api_mapping(**api_mapping_params(spec, api_id))
        await run.record(Step.REMAPPED, api_mapping_id=response["ApiMappingId"])
