"""``manage.py clear_websocket_sessions``: delete rows of connections that are gone.

With ``--stale`` it first marks connected rows disconnected that API Gateway has certainly
closed already (older than its 2-hour cap, or idle past its 10-minute timeout) but whose
``$disconnect`` never reached us, so broadcasts stop posting to them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone

from aws_ws_async.management.commands._batching import (
    add_batch_size_argument,
    apply_in_batches,
    batch_size_option,
    delete_in_batches,
)
from aws_ws_async.models import DisconnectReason, WebSocketSession, WebSocketSessionQuerySet


class Command(BaseCommand):
    help = "Delete disconnected WebSocket sessions (optionally marking stale ones first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stale",
            action="store_true",
            help="First mark connected sessions past API Gateway's limits (2 h old or 10 min "
            "idle) as disconnected with reason 'stale'.",
        )
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=None,
            metavar="N",
            help="Only delete sessions disconnected more than N days ago (keep recent history).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count; change nothing.")
        add_batch_size_argument(parser, "UPDATE/DELETE")

    def handle(self, *args: Any, **options: Any) -> None:
        days: int | None = options["older_than_days"]
        dry_run: bool = options["dry_run"]
        if days is not None and days < 0:
            raise CommandError("--older-than-days must be 0 or more.")
        batch_size = batch_size_option(options)

        stale = 0
        if options["stale"]:
            stale_rows = WebSocketSession.objects.stale()
            if dry_run:
                stale = stale_rows.count()
            else:
                stale = apply_in_batches(
                    stale_rows,
                    lambda rows: cast(WebSocketSessionQuerySet, rows).mark_disconnected(
                        DisconnectReason.STALE
                    ),
                    batch_size,
                )
            verb = "Would mark" if dry_run else "Marked"
            self.stdout.write(f"{verb} {stale} stale session(s) disconnected.")

        doomed = WebSocketSession.objects.filter(connected=False)
        if days:
            cutoff = timezone.now() - timedelta(days=days)
            doomed = doomed.filter(
                Q(disconnected_at__lt=cutoff)
                | Q(disconnected_at__isnull=True, updated_on__lt=cutoff)
            )
        if dry_run:
            # Rows marked stale just now would be disconnected "now", so only a run without an
            # age limit would delete them too.
            count = doomed.count() + (0 if days else stale)
            self.stdout.write(f"Would delete {count} disconnected session(s).")
            return
        deleted = delete_in_batches(doomed, batch_size)
        age = f" disconnected more than {days} day(s) ago" if days else ""
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} disconnected session(s){age}."))
