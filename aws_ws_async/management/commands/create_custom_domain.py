"""``manage.py create_custom_domain --pk N``: custom domain, API mapping and Route 53 alias."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async.management.commands._provisioning import get_gateway, run_steps


class Command(BaseCommand):
    help = "Create the custom domain of one deployed ApiGateway (resumes a failed run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pk", type=int, required=True, help="Primary key of the ApiGateway.")

    def handle(self, *args: Any, **options: Any) -> None:
        gateway = get_gateway(options["pk"])
        if not gateway.domain_name:
            raise CommandError(f"{gateway}: no domain_name is set.")
        if gateway.custom_domain_created:
            self.stdout.write(f"{gateway}: custom domain {gateway.domain_name} already exists.")
            return
        self.stdout.write(f"{gateway}: creating custom domain {gateway.domain_name}...")
        run_steps(self, gateway, gateway.create_custom_domain)
        if not gateway.hosted_zone_id:
            self.stdout.write(
                f"  no hosted_zone_id: point a DNS record for {gateway.domain_name} at "
                f"{gateway.api_gateway_domain_name} yourself"
            )
        self.stdout.write(self.style.SUCCESS(f"{gateway}: {gateway.websocket_url} is mapped."))
