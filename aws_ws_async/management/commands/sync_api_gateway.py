"""``manage.py sync_api_gateway --pk N (--to-aws | --from-aws | --drift) [--dry-run]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.management.commands._provisioning import get_gateway, write_differences


class Command(BaseCommand):
    help = "Synchronise one ApiGateway with AWS: push local state, pull AWS state, or show drift."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pk", type=int, required=True, help="Primary key of the ApiGateway.")
        direction = parser.add_mutually_exclusive_group(required=True)
        direction.add_argument("--to-aws", action="store_true", help="Make AWS match the row.")
        direction.add_argument("--from-aws", action="store_true", help="Make the row match AWS.")
        direction.add_argument(
            "--drift", action="store_true", help="Only list the differences (changes nothing)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would change; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        gateway = get_gateway(options["pk"])
        dry_run = options["dry_run"]
        try:
            if options["drift"]:
                self.stdout.write(f"{gateway}: comparing with AWS...")
                diffs = gateway.detect_drift()
                verb = "differs:"
            elif options["to_aws"]:
                self.stdout.write(f"{gateway}: pushing to AWS{' (dry run)' if dry_run else ''}...")
                diffs = gateway.sync_to_aws(dry_run=dry_run)
                verb = "would push" if dry_run else "pushed"
            else:
                self.stdout.write(
                    f"{gateway}: pulling from AWS{' (dry run)' if dry_run else ''}..."
                )
                diffs = gateway.sync_from_aws(dry_run=dry_run)
                verb = "would take" if dry_run else "took"
        except ApiGatewaySyncError as exc:
            raise CommandError(f"{gateway}: {exc}") from exc
        count = write_differences(self, diffs, verb)
        if count:
            self.stdout.write(self.style.SUCCESS(f"{gateway}: {count} difference(s)."))
        else:
            self.stdout.write(self.style.SUCCESS(f"{gateway}: in sync with AWS."))
