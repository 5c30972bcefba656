"""``send_websocket_message --enqueue``: hand the broadcast to task workers and follow it.

The command enqueues (``qs.enqueue_message``), then prints a progress line whenever the totals
change until the broadcast is done, running the reaper on every look (so a shard whose worker
died is handed on even while only this command watches). Exit status as for a direct send:
non-zero when any recipient failed, a shard gave up, or ``--timeout`` passed first (the
broadcast then goes on in the workers: there is no cancel yet).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async.exceptions import AwsWsAsyncError
from aws_ws_async.models import Broadcast
from aws_ws_async.models.broadcasts import POLL_SECONDS


def add_enqueue_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--enqueue",
        action="store_true",
        help="Run the broadcast in task workers (enqueue_message) and follow its progress.",
    )


def _line(broadcast: Broadcast) -> str:
    done = broadcast.delivered + broadcast.gone + broadcast.failed
    return (
        f"  {broadcast.status}: {done}/{broadcast.recipients} ({broadcast.delivered} delivered, "
        f"{broadcast.gone} gone, {broadcast.failed} failed; {broadcast.shards_total} shard(s))"
    )


def run_enqueued(command: BaseCommand, queryset: Any, data: Any, timeout: float | None) -> None:
    """Enqueue, print progress until done; ``CommandError`` on failures or the timeout."""
    try:
        broadcast: Broadcast = queryset.enqueue_message(data)
    except (ImproperlyConfigured, AwsWsAsyncError, TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    command.stdout.write(f"Enqueued broadcast {broadcast.pk}; following it until it is done...")
    deadline = None if timeout is None else time.monotonic() + timeout
    last = ""
    while not broadcast.poll():
        line = _line(broadcast)
        if line != last:
            command.stdout.write(line)
            last = line
        if deadline is not None and time.monotonic() >= deadline:
            raise CommandError(
                f"broadcast {broadcast.pk} not done after {timeout} s (it goes on in the "
                f"workers); {_line(broadcast).strip()}"
            )
        time.sleep(POLL_SECONDS)
    command.stdout.write(_line(broadcast))
    if broadcast.failed or broadcast.status != "finished":
        raise CommandError(
            f"broadcast {broadcast.pk} {broadcast.status}: {broadcast.failed} of "
            f"{broadcast.recipients} recipient(s) failed"
        )
    command.stdout.write(command.style.SUCCESS(f"broadcast {broadcast.pk} finished"))
