"""``manage.py update_api_gateway_integrations [--pk N] [--dry-run]``: rotate the gateway secret.

Rewrites the static secret header mapping (the *first* configured ``gateway_secret``) and the
connection-id mapping on every integration, then redeploys. Rotation: list the new secret first
and the old one second, run this, and drop the old secret once it reports nothing left to do.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async.conf import get_settings
from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.management.commands._provisioning import write_differences
from aws_ws_async.models import ApiGateway


class Command(BaseCommand):
    help = "Rewrite the gateway-secret header mapping on every integration and redeploy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pk", type=int, help="Only this ApiGateway (default: all created).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would change; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        gateways = ApiGateway.objects.exclude(api_id="").order_by("pk")
        if options["pk"] is not None:
            gateways = gateways.filter(pk=options["pk"])
            if not gateways.exists():
                raise CommandError(f"No created ApiGateway with pk={options['pk']}.")
        dry_run = options["dry_run"]
        if not get_settings().gateway_secret:
            self.stdout.write(
                self.style.WARNING("No gateway_secret is configured: the mapping will be removed.")
            )
        failures: list[str] = []
        total = len(gateways)
        for index, gateway in enumerate(gateways, start=1):
            self.stdout.write(f"[{index}/{total}] {gateway} ({gateway.api_id})")
            try:
                diffs = gateway.update_integrations(dry_run=dry_run)
            except ApiGatewaySyncError as exc:
                failures.append(f"{gateway}: {exc}")
                self.stderr.write(f"  failed: {exc}")
                continue
            count = write_differences(self, diffs, "would update" if dry_run else "updated")
            if not count:
                self.stdout.write("  up to date")
            elif not dry_run:
                self.stdout.write("  redeployed")
        if failures:
            raise CommandError(f"{len(failures)} gateway(s) failed:\n" + "\n".join(failures))
        self.stdout.write(self.style.SUCCESS("Dry run finished." if dry_run else "Done."))
