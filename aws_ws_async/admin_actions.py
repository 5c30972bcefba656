"""Admin actions that provision and synchronise gateways (hooked into ``ApiGatewayAdmin``).

Each action handles the selected gateways one by one and reports one message per gateway: what
was done, or why it failed (the same text is kept in ``last_error``). AWS calls never run inside
a database transaction: with ``ATOMIC_REQUESTS`` the work is deferred to ``on_commit`` and the
message says so. Audit entries use Django's admin log and ``get_username()``, so any user model
works (no ``username`` field assumed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from aws_ws_async.exceptions import ApiGatewaySyncError, ProvisioningInProgress
from aws_ws_async.models import ApiGateway
from aws_ws_async.provisioning import Difference
from aws_ws_async.sync import in_transaction

logger = logging.getLogger("aws_ws_async.admin_actions")

#: Differences listed in one message before the rest are summarised.
MAX_LISTED = 5


def _who(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is None:
        return "unknown user"
    return f"{user.get_username()} (pk={user.pk})"


def _audit(modeladmin: admin.ModelAdmin, request: HttpRequest, obj: ApiGateway, text: str) -> None:
    logger.info("%s by %s on gateway %s: %s", text, _who(request), obj.pk, obj)
    modeladmin.log_change(request, obj, text)


def _summarise(items: list[Any]) -> str:
    shown = "; ".join(str(i) for i in items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f"; and {more} more" if more > 0 else "")


def _sync_outcome(diffs: list[Any], done: str) -> str:
    """The message of a sync in either direction: ``done`` (with ``{n}``) and the changes."""
    if not diffs:
        return "already in sync with AWS"
    return f"{done.format(n=len(diffs))}: {_summarise(diffs)}"


#: What one gateway's operation came to: (message level, text, whether to audit it).
Outcome = tuple[int, str, bool]
Operation = Callable[[ApiGateway], Outcome]


def perform(label: str, operation: Operation, gateway: ApiGateway) -> Outcome:
    """Run one gateway's operation; a failure is an outcome (and audited), never a raise."""
    try:
        return operation(gateway)
    except ProvisioningInProgress as exc:
        return messages.WARNING, str(exc), False
    except ApiGatewaySyncError as exc:
        return messages.ERROR, f"{label} failed: {exc}", True


def _run_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[ApiGateway],
    name: str,
) -> None:
    """Run action ``name`` per gateway (after commit if needed) and message each outcome.

    With a task backend configured it is enqueued instead (one task per gateway) and returns
    at once: each row's provisioning status and last error, and its history, show the outcome.
    """
    from aws_ws_async import admin_tasks

    label, operation = OPERATIONS[name]
    if admin_tasks.tasks_configured():
        admin_tasks.enqueue_gateway_action(modeladmin, request, queryset, name, label)
        return

    def run_all() -> None:
        for gateway in queryset.order_by("pk"):
            level, text, audited = perform(label, operation, gateway)
            if audited:
                _audit(
                    modeladmin,
                    request,
                    gateway,
                    text if level == messages.ERROR else f"{label}: {text}",
                )
            modeladmin.message_user(request, f"{gateway}: {text}", level)

    if in_transaction():
        transaction.on_commit(run_all)
        modeladmin.message_user(
            request,
            f"{label} will run when this request's transaction commits; check each gateway's "
            "status and last error afterwards.",
            messages.INFO,
        )
    else:
        run_all()


def _create_api(gateway: ApiGateway) -> Outcome:
    if gateway.is_deployed:
        return messages.INFO, f"already created ({gateway.api_id}).", False
    steps = gateway.create_gateway()
    text = f"created and deployed ({_summarise(steps)}); URL {gateway.websocket_url}"
    return messages.SUCCESS, text, True


def _create_domain(gateway: ApiGateway) -> Outcome:
    if not gateway.domain_name:
        return messages.WARNING, "no domain name set.", False
    if gateway.custom_domain_created:
        return messages.INFO, "custom domain already created.", False
    steps = gateway.create_custom_domain()
    return (
        messages.SUCCESS,
        f"custom domain ready ({_summarise(steps) or 'nothing left to do'})",
        True,
    )


@admin.action(description="Create the API in AWS", permissions=["change"])
def create_api_gateway(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[ApiGateway]
) -> None:
    _run_each(modeladmin, request, queryset, "create_api_gateway")


@admin.action(description="Create the custom domain in AWS", permissions=["change"])
def create_custom_domain(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[ApiGateway]
) -> None:
    _run_each(modeladmin, request, queryset, "create_custom_domain")


Action = Callable[[admin.ModelAdmin, HttpRequest, QuerySet[ApiGateway]], None]

#: Action name -> (label, operation): what the inline action and the enqueued task both run.
OPERATIONS: dict[str, tuple[str, Operation]] = {
    "create_api_gateway": ("Create API", _create_api),
    "create_custom_domain": ("Create custom domain", _create_domain),
}


def _differences_action(
    name: str,
    description: str,
    label: str,
    operation: Callable[[ApiGateway], list[Difference]],
    done: str,
) -> Action:
    """An action that runs one comparing operation per gateway and lists the differences.

    The four comparing actions differ only in these values, so they share one body.
    """

    def outcome(gateway: ApiGateway) -> Outcome:
        return messages.SUCCESS, _sync_outcome(operation(gateway), done), True

    OPERATIONS[name] = (label, outcome)

    @admin.action(description=description, permissions=["change"])
    def action(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[ApiGateway]
    ) -> None:
        _run_each(modeladmin, request, queryset, name)

    action.__name__ = action.__qualname__ = name  # the admin's action key
    return action


sync_from_aws = _differences_action(
    "sync_from_aws",
    "Sync from AWS (AWS wins)",
    "Sync from AWS",
    ApiGateway.pull_from_aws,
    "took {n} change(s) from AWS",
)
sync_to_aws = _differences_action(
    "sync_to_aws",
    "Sync to AWS (this database wins)",
    "Sync to AWS",
    ApiGateway.push_to_aws,
    "pushed {n} change(s) and redeployed",
)
detect_drift = _differences_action(
    "detect_drift",
    "Detect drift from AWS (changes nothing)",
    "Detect drift",
    ApiGateway.detect_drift,
    "{n} difference(s) from AWS",
)
update_integrations = _differences_action(
    "update_integrations",
    "Update integrations (rewrite the gateway-secret header, redeploy)",
    "Update integrations",
    ApiGateway.update_integrations,
    "updated {n} integration(s)",
)


GATEWAY_ACTIONS = [
    create_api_gateway,
    create_custom_domain,
    sync_from_aws,
    sync_to_aws,
    detect_drift,
    update_integrations,
]
