"""Helpers shared by the provisioning commands (not a command: the name starts with ``_``)."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.management.base import BaseCommand, CommandError

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
