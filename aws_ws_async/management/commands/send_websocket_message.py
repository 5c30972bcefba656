"""Broadcast a message to a channel, a user or every connection, from the shell.

Exit status: 0 when every recipient got the message or is gone (a closed connection is not a
failure), 1 (``CommandError``) when any recipient failed or the broadcast stopped early
(``--timeout``), naming how many, the first few connection ids and their reasons, so cron jobs
and deploy scripts notice.

Examples::

    manage.py send_websocket_message --channel news '{"type": "notice", "text": "Back at 5"}'
    manage.py send_websocket_message --user alice@example.com --text "hello"
    manage.py send_websocket_message --all '{"type": "reload"}' --concurrency 50
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.exceptions import AwsWsAsyncError, BroadcastAborted
from aws_ws_async.management.commands._enqueue import add_enqueue_argument, run_enqueued
from aws_ws_async.models import WebSocketSession

#: Failures named in the exit message (the stderr listing is ``--show-failures`` long).
LISTED_FAILURES = 5


def failure_message(report: DeliveryReport, listed: int = LISTED_FAILURES) -> str:
    """``3 of 10 recipient(s) failed: a= (forbidden, HTTP 403), ...; and 1 more``."""
    shown = [
        f"{f.connection_id} ({f.reason}{f', HTTP {f.status}' if f.status else ''})"
        for f in report.failed[:listed]
    ]
    more = report.failed_count - len(shown)
    return f"{report.failed_count} of {report.total} recipient(s) failed: {', '.join(shown)}" + (
        f"; and {more} more" if more > 0 else ""
    )


class Command(BaseCommand):
    help = (
        "Send a JSON (or --text) message to the connected subscribers of a channel, the "
        "connected sessions of a user, or every connected session."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--channel", help="Channel name.")
        target.add_argument("--user", help="User primary key or USERNAME_FIELD value.")
        target.add_argument("--all", action="store_true", help="Every connected session.")
        parser.add_argument("message", help="The message: JSON unless --text is given.")
        parser.add_argument("--text", action="store_true", help="Send the message as plain text.")
        parser.add_argument("--concurrency", type=int, default=None, help="Posts in flight.")
        parser.add_argument(
            "--show-failures", type=int, default=20, help="How many failures to list (default 20)."
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Deadline of the whole broadcast; posts still in flight then count as failed.",
        )
        add_enqueue_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        data: Any = options["message"]
        if not options["text"]:
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise CommandError(f"message is not valid JSON ({exc}); use --text") from exc
        if options["concurrency"] is not None and options["concurrency"] < 1:
            raise CommandError("--concurrency must be a positive integer")
        if options["show_failures"] < 0:
            raise CommandError("--show-failures must be 0 or more")
        timeout: float | None = options["timeout"]
        if timeout is not None and not timeout > 0:  # also refuses nan
            raise CommandError("--timeout must be a positive number of seconds")
        queryset = self._recipients(options)
        if options["enqueue"]:
            return run_enqueued(self, queryset, data, timeout)
        total = queryset.count()
        self.stdout.write(f"Sending to {total} connected session(s)...")

        def progress(report: DeliveryReport) -> None:
            self.stdout.write(
                f"  {report.total}/{total}: {report.delivered_count} delivered, "
                f"{report.gone_count} gone, {report.failed_count} failed"
            )

        try:
            report = queryset.send_message(
                data,
                concurrency=options["concurrency"],
                collect_delivered=False,
                timeout=timeout,
                progress=progress,
            )
        except BroadcastAborted as exc:
            # Stopped midway (deadline, database error): say how far it got, then fail.
            self.stdout.write(self.style.WARNING(exc.report.summary()))
            raise CommandError(f"{exc}; {failure_message(exc.report)}") from exc
        except AwsWsAsyncError as exc:
            raise CommandError(str(exc)) from exc
        for failure in report.failed[: options["show_failures"]]:
            self.stderr.write(
                f"  failed {failure.connection_id}: {failure.reason} {failure.detail}".rstrip()
            )
        style = self.style.SUCCESS if report.ok else self.style.WARNING
        self.stdout.write(style(report.summary()))
        if not report.ok:
            raise CommandError(failure_message(report))

    def _recipients(self, options: dict[str, Any]) -> Any:
        if options["channel"] is not None:
            # every subscriber, not only the connections whose first channel it is
            return WebSocketSession.objects.subscribed_to(options["channel"])
        if options["all"]:
            return WebSocketSession.objects.connected()
        user_model = get_user_model()
        value = options["user"]
        manager = user_model._default_manager
        user = manager.filter(**{user_model.USERNAME_FIELD: value}).first()
        if user is None and value.isdigit():
            user = manager.filter(pk=int(value)).first()
        if user is None:
            raise CommandError(f"no user with primary key or {user_model.USERNAME_FIELD} {value!r}")
        return WebSocketSession.objects.for_user(user)
