"""``manage.py runwsgateway``: run the local API Gateway emulator in front of this project.

The configuration comes from an ``ApiGateway`` row (``--pk`` or ``--api-id``: its api id, stage,
target base endpoint, route selection expression, additional routes and route responses) plus the
gateway secret and header names of ``settings.AWS_WS_ASYNC``; any flag overrides them. Without a
row, ``--target`` is required. The emulator itself receives only a plain
:class:`~aws_ws_async.emulator.EmulatorConfig`; it never touches Django. The flags are shared
with ``python -m aws_ws_async.emulator`` (:mod:`aws_ws_async.emulator.cli`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async.conf import get_settings
from aws_ws_async.emulator import EmulatorConfig, GatewayEmulator, cli
from aws_ws_async.models import ApiGateway


class Command(BaseCommand):
    help = (
        "Run a local API Gateway WebSocket emulator: clients connect to ws://HOST:PORT/<stage>, "
        "integrations are posted to this project, and the @connections API answers on the "
        "same port."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_argument_group("gateway row (optional)")
        source.add_argument("--pk", type=int, help="Primary key of the ApiGateway row to emulate.")
        source.add_argument(
            "--api-id",
            help="Api id of the ApiGateway row to emulate; without such a row (and with "
            "--target) the emulated API's id.",
        )
        cli.add_arguments(parser)

    def build_config(self, options: dict[str, Any]) -> EmulatorConfig:
        """The emulator configuration from the row, settings and flags (flags win)."""
        app_settings = get_settings()
        row = self._find_row(options)
        base: dict[str, Any] = {
            "api_id": (row.api_id if row else options.get("api_id")) or "emulator",
            "gateway_secret": app_settings.gateway_secret,
            "gateway_secret_header": app_settings.gateway_secret_header,
            "connection_id_header": app_settings.connection_id_header,
        }
        if row is not None:
            base.update(
                target_base_url=row.target_base_endpoint,
                stage=row.stage_name,
                route_selection_expression=row.route_selection_expression,
                additional_routes={
                    r.route_key: r.integration_url for r in row.additional_routes.all()
                },
                route_responses=bool(row.enable_route_responses),
            )
        try:
            return cli.build_config(options, base)
        except ValueError as exc:
            if "no backend URL" in str(exc):
                raise CommandError(
                    "No backend URL: pass --target http://127.0.0.1:8000/ws/ or choose an "
                    "ApiGateway row with a target_base_endpoint (--pk/--api-id)."
                ) from exc
            raise CommandError(str(exc)) from exc

    def _find_row(self, options: dict[str, Any]) -> ApiGateway | None:
        pk, api_id = options.get("pk"), options.get("api_id")
        if pk is not None:
            row = ApiGateway.objects.filter(pk=pk).first()
            if row is None:
                raise CommandError(f"No ApiGateway with pk={pk}.")
        elif api_id:
            row = ApiGateway.objects.filter(api_id=api_id).first()
            if row is None:
                if options.get("target"):
                    return None
                raise CommandError(
                    f"No ApiGateway with api_id={api_id!r}; pass --target to run without a row."
                )
        else:
            return None
        if not row.api_id:
            raise CommandError(
                f"ApiGateway {row.pk} has no api_id, so the backend could not recognise the "
                "emulated requests. Set one (e.g. 'localdev') before emulating it."
            )
        return row

    def handle(self, *args: Any, **options: Any) -> None:
        config = self.build_config(options)
        self._setup_logging(int(options.get("verbosity", 1)))
        emulator = GatewayEmulator(config)
        # Ctrl-C and SIGTERM both close every socket and post its $disconnect (cli.serve).
        try:
            asyncio.run(cli.serve(emulator, options["host"], options["port"], self._announce))
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            where = f"{options['host']}:{options['port']}"
            raise CommandError(f"Could not listen on {where}: {exc}") from exc
        self.stdout.write("Emulator stopped.")

    def _announce(self, emulator: GatewayEmulator) -> None:
        self.stdout.write(cli.banner(emulator))
        configured = get_settings().management_endpoint_url
        expected = f"http://{emulator.host}:{emulator.port}/"
        if not configured or not configured.startswith(expected):
            self.stdout.write(
                self.style.WARNING(
                    "Point AWS_WS_ASYNC['management_endpoint_url'] at "
                    f"'{expected}{{stage}}' so messages reach this emulator."
                )
            )
        sys.stdout.flush()

    def _setup_logging(self, verbosity: int) -> None:
        logger = logging.getLogger("aws_ws_async.emulator")
        if verbosity < 1 or any(isinstance(h, logging.StreamHandler) for h in logger.handlers):
            return
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
