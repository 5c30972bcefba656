"""``manage.py confirm_websocket_sessions``: ask API Gateway about doubtful connections.

Sessions still marked connected but silent for ``--idle`` seconds (default 300) and not yet past
API Gateway's limits are probed with ``GET @connections/{id}`` through the delivery engine
(bounded concurrency, the shared rate budget, retries); the ones answered 410 are marked
disconnected (reason ``gone``), so they leave presence and broadcasts stop posting to them. Run
it from cron between ``clear_websocket_sessions --stale`` runs. See docs/channels.md (Reaper).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async.channels.reaper import DEFAULT_IDLE, confirm, doubtful


class Command(BaseCommand):
    help = "Probe doubtful WebSocket sessions with GET @connections; mark the gone ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--idle",
            type=int,
            default=int(DEFAULT_IDLE.total_seconds()),
            metavar="SECONDS",
            help="Probe connected sessions not seen for SECONDS (default %(default)s).",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="Probes in flight at once (default: the max_concurrency setting).",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Stop probing after SECONDS (what was learned is still written).",
        )
        parser.add_argument(
            "--announce-leaves",
            action="store_true",
            help="Send presence 'leave' events to the channels of the gone users (when it was "
            "their last live connection there), as their $disconnect would have.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count; probe nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        idle: int = options["idle"]
        if idle < 0:
            raise CommandError("--idle must be 0 or more.")
        concurrency: int | None = options["concurrency"]
        if concurrency is not None and concurrency < 1:
            raise CommandError("--concurrency must be at least 1.")
        timeout: float | None = options["timeout"]
        if timeout is not None and not timeout > 0:
            raise CommandError("--timeout must be more than 0.")
        rows = doubtful(idle=timedelta(seconds=idle))
        if options["dry_run"]:
            self.stdout.write(f"Would probe {rows.count()} session(s) idle over {idle} s.")
            return
        report = confirm(
            rows,
            concurrency=concurrency,
            timeout=timeout,
            announce_leaves=options["announce_leaves"],
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Probed {report.total} "
                f"session(s): {report.delivered_count} open, {len(report.gone)} gone (marked "
                f"disconnected), {len(report.failed)} unknown."
            )
        )
