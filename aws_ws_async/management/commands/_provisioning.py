"""Helpers shared by the provisioning commands (not a command: the name starts with ``_``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.core.management.base import BaseCommand, CommandError

from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.models import ApiGateway
from aws_ws_async.provisioning.drift import Difference


def get_gateway(pk: int) -> ApiGateway:
    try:
        return ApiGateway.objects.get(pk=pk)
    except ApiGateway.DoesNotExist:
        raise CommandError(f"No ApiGateway with pk={pk}.") from None


def write_differences(command: BaseCommand, diffs: Iterable[Difference], prefix: str) -> int:
    count = 0
    for diff in diffs:
        command.stdout.write(f"  {prefix} {diff}")
        count += 1
    return count


def run_steps(command: BaseCommand, gateway: ApiGateway, create: Callable[[], list[str]]) -> None:
    """Run one resumable creation and list its steps; an AWS failure becomes a CommandError.

    Shared by ``create_api_gateway`` and ``create_custom_domain`` so both report progress and
    failures the same way.
    """
    try:
        steps = create()
    except ApiGatewaySyncError as exc:
        raise CommandError(f"{gateway}: {exc}") from exc
    for step in steps:
        command.stdout.write(f"  {step}")
