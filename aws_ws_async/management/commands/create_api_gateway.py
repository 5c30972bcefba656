"""``manage.py create_api_gateway --pk N``: create (or finish creating) the WebSocket API in AWS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from aws_ws_async.management.commands._provisioning import get_gateway, run_steps


class Command(BaseCommand):
    help = "Create the API Gateway WebSocket API of one ApiGateway row (resumes a failed run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pk", type=int, required=True, help="Primary key of the ApiGateway.")

    def handle(self, *args: Any, **options: Any) -> None:
        gateway = get_gateway(options["pk"])
        if gateway.is_deployed:
            self.stdout.write(f"{gateway}: already created and deployed ({gateway.api_id}).")
            return
        self.stdout.write(f"{gateway}: creating API, routes, stage and deployment...")
        run_steps(self, gateway, gateway.create_gateway)
        self.stdout.write(
            self.style.SUCCESS(f"{gateway}: deployed; clients connect to {gateway.websocket_url}")
        )
