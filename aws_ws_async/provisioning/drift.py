"""Drift: the list of differences between a gateway's desired state (a spec) and AWS.

The same comparison drives ``push_to_aws`` (fix AWS), ``pull_from_aws`` (fix the row) and
``detect_drift`` (just report), so the three can never disagree about what "in sync" means.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from aws_ws_async.provisioning.remote import RemoteState
from aws_ws_async.provisioning.spec import GatewaySpec, integration_params

#: Groups of differences and the model fields that feed them (used to narrow a push).
GROUP_FIELDS: dict[str, frozenset[str]] = {
    "api": frozenset(
        {
            "api_name",
            "api_description",
            "route_selection_expression",
            "api_key_selection_expression",
        }
    ),
    "tags": frozenset({"tags"}),
    "integration": frozenset({"target_base_endpoint"}),
    "route": frozenset({"target_base_endpoint"}),
    "route_response": frozenset({"enable_route_responses"}),
    "stage": frozenset({"stage_description"}),
    "domain": frozenset({"domain_name"}),
}
#: AWS attribute -> (model field, GatewaySpec attribute).
API_FIELDS = {
    "Name": ("api_name", "name"),
    "Description": ("api_description", "description"),
    "RouteSelectionExpression": ("route_selection_expression", "route_selection_expression"),
    "ApiKeySelectionExpression": ("api_key_selection_expression", "api_key_selection_expression"),
}


@dataclass(frozen=True)
class Difference:
    """One thing that differs. ``local`` is what the row wants, ``remote`` what AWS has."""

    group: str
    resource: str
    field: str
    local: Any
    remote: Any
    route_key: str = ""

    def __str__(self) -> str:
        return f"{self.resource}: {self.field} is {self.remote!r} in AWS, {self.local!r} locally"


def groups_for_fields(fields: set[str] | frozenset[str]) -> set[str]:
    """Which difference groups a change of these model fields can affect."""
    return {group for group, names in GROUP_FIELDS.items() if names & fields}


def _managed(params: dict[str, str], spec: GatewaySpec) -> dict[str, str]:
    return {k.lower(): v for k, v in params.items() if k.lower() in spec.managed_headers}


def compare(
    spec: GatewaySpec, remote: RemoteState, managed_route_keys: frozenset[str] = frozenset()
) -> list[Difference]:
    """All differences between ``spec`` and ``remote``.

    A remote route the row does not know is in group ``route`` if we created it earlier
    (``managed_route_keys``: a push deletes it) and ``unmanaged`` otherwise: someone added it by
    hand in AWS, so a push leaves it alone but drift detection still reports it.
    """
    diffs: list[Difference] = []
    for aws_name, (local_name, attr) in API_FIELDS.items():
        local = getattr(spec, attr)
        remote_value = remote.api.get(aws_name, "")
        if (local or "") != (remote_value or ""):
            diffs.append(Difference("api", "api", local_name, local, remote_value))
    if dict(spec.tags) != remote.tags:
        diffs.append(Difference("tags", "api", "tags", dict(spec.tags), dict(remote.tags)))

    wanted = {route.route_key for route in spec.routes}
    for route in spec.routes:
        resource = f"route {route.route_key}"
        found = remote.routes.get(route.route_key)
        if found is None:
            diffs.append(Difference("route", resource, "exists", True, False, route.route_key))
            continue
        integration = remote.integrations.get(found.integration_id)
        if integration is None:
            diffs.append(
                Difference("route", resource, "integration", "present", None, route.route_key)
            )
            continue
        desired = integration_params(spec, route, integration.request_parameters)
        checks = {
            "integration_uri": (desired["IntegrationUri"], integration.uri),
            "integration_type": (desired["IntegrationType"], integration.integration_type),
            "integration_method": (desired["IntegrationMethod"], integration.method),
        }
        for name, (local, remote_value) in checks.items():
            if local != remote_value:
                diffs.append(
                    Difference("integration", resource, name, local, remote_value, route.route_key)
                )
        want_params = _managed(desired["RequestParameters"], spec)
        have_params = _managed(integration.request_parameters, spec)
        if want_params != have_params:
            diffs.append(
                Difference(
                    "integration",
                    resource,
                    "request_parameters",
                    _redact(want_params),
                    _redact(have_params),
                    route.route_key,
                )
            )
        has_response = bool(found.route_response_ids) and bool(
            found.route_response_selection_expression
        )
        if route.two_way != has_response:
            diffs.append(
                Difference(
                    "route_response",
                    resource,
                    "two_way",
                    route.two_way,
                    has_response,
                    route.route_key,
                )
            )
    for key in sorted(set(remote.routes) - wanted):
        group = "route" if key in managed_route_keys else "unmanaged"
        diffs.append(Difference(group, f"route {key}", "exists", False, True, key))

    if remote.stage is None:
        diffs.append(Difference("stage", f"stage {spec.stage_name}", "exists", True, False))
    elif (remote.stage.get("Description") or "") != spec.stage_description:
        diffs.append(
            Difference(
                "stage",
                f"stage {spec.stage_name}",
                "stage_description",
                spec.stage_description,
                remote.stage.get("Description") or "",
            )
        )
    if remote.mappings is not None and (remote.api_id, spec.stage_name) not in remote.mappings:
        diffs.append(
            Difference(
                "domain",
                f"domain {spec.domain_name}",
                "api_mapping",
                f"{remote.api_id}/{spec.stage_name}",
                ", ".join("/".join(m) for m in remote.mappings) or None,
            )
        )
    return diffs


def _redact(params: dict[str, str]) -> dict[str, str]:
    """Show which static secret is mapped (a short fingerprint) without printing it."""
    return {
        k: (
            f"'<secret sha256:{hashlib.sha256(v.encode()).hexdigest()[:8]}>'"
            if v.startswith("'")
            else v
        )
        for k, v in params.items()
    }
