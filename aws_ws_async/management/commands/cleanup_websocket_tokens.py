"""``manage.py cleanup_websocket_tokens``: delete old connect tokens and rate-limit rows.

Tokens are useless after ``token_expiry_seconds``; rate-limit rows only matter inside their
window but are kept ``rate_limit_retention_days`` for inspection. It also prunes channel
history past each channel's ``max_messages`` / ``max_age`` (:mod:`aws_ws_async.channels.pruning`).
Run it from cron.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from aws_ws_async.channels.pruning import expired_messages
from aws_ws_async.conf import get_settings
from aws_ws_async.management.commands._batching import (
    add_batch_size_argument,
    batch_size_option,
    delete_in_batches,
)
from aws_ws_async.models import ConnectionRateLimit, WebSocketToken

#: Tokens younger than this are never deleted, even with a shorter expiry, to leave a margin.
MIN_TOKEN_AGE_SECONDS = 300


class Command(BaseCommand):
    help = "Delete expired WebSocket connect tokens and old connection rate-limit rows."

    def add_arguments(self, parser: CommandParser) -> None:
        s = get_settings()
        parser.add_argument(
            "--token-age",
            type=int,
            default=None,
            metavar="SECONDS",
            help="Delete tokens created more than SECONDS ago, used or not (default "
            f"max({MIN_TOKEN_AGE_SECONDS}, token_expiry_seconds), now "
            f"{max(MIN_TOKEN_AGE_SECONDS, s.token_expiry_seconds)}).",
        )
        parser.add_argument(
            "--rate-limit-age",
            type=int,
            default=None,
            metavar="DAYS",
            help="Delete connection attempts older than DAYS days (default "
            f"rate_limit_retention_days, now {s.rate_limit_retention_days}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count; delete nothing.")
        add_batch_size_argument(parser, "DELETE")

    def handle(self, *args: Any, **options: Any) -> None:
        s = get_settings()
        given_token_age: int | None = options["token_age"]
        token_age = (
            max(MIN_TOKEN_AGE_SECONDS, s.token_expiry_seconds)
            if given_token_age is None
            else given_token_age
        )
        given_rate_age: int | None = options["rate_limit_age"]
        rate_age = s.rate_limit_retention_days if given_rate_age is None else given_rate_age
        if token_age < 0:
            raise CommandError("--token-age must be 0 or more.")
        if rate_age < 0:
            raise CommandError("--rate-limit-age must be 0 or more.")
        batch_size = batch_size_option(options)

        now = timezone.now()
        tokens = WebSocketToken.objects.filter(created_at__lt=now - timedelta(seconds=token_age))
        attempts = ConnectionRateLimit.objects.filter(
            attempt_time__lt=now - timedelta(days=rate_age)
        )
        if options["dry_run"]:
            self.stdout.write(
                f"Would delete {tokens.count()} token(s) older than {token_age} second(s)."
            )
            self.stdout.write(
                f"Would delete {attempts.count()} connection attempt(s) older than "
                f"{rate_age} day(s)."
            )
            prune_channel_history(self, batch_size, dry_run=True)
            return
        deleted_tokens = delete_in_batches(tokens, batch_size)
        deleted_attempts = delete_in_batches(attempts, batch_size)
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {deleted_tokens} token(s) older than {token_age} second(s)."
            )
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {deleted_attempts} connection attempt(s) older than {rate_age} day(s)."
            )
        )
        prune_channel_history(self, batch_size, dry_run=False)


def prune_channel_history(command: BaseCommand, batch_size: int, *, dry_run: bool) -> int:
    """Delete kept channel messages past their channel's count and age bounds (one per channel).

    The ``ChannelHistory`` rows (the seq counters) stay, so seqs never restart.
    """
    total = channels = 0
    for _name, messages in expired_messages():
        done = messages.count() if dry_run else delete_in_batches(messages, batch_size)
        total += done
        channels += bool(done)
    verb = "Would delete" if dry_run else "Deleted"
    line = f"{verb} {total} channel message(s) past their history bounds in {channels} channel(s)."
    command.stdout.write(line if dry_run else command.style.SUCCESS(line))
    return total
