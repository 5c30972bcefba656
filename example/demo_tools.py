#!/usr/bin/env python3
"""Helpers beside a running demo (``run_demo.py``), on the same database and gateway.

    python example/demo_tools.py adduser alice alice-password
    python example/demo_tools.py broadcast --channel lobby --rate 10 --seconds 30

``broadcast`` publishes numbered messages with ``aws_ws_async.channels.publish`` (history on for
the demo rooms: each gets the next seq) at a steady rate, as a server-side job would, and
prints a JSON summary. Pass the same ``--db`` / ``--gateway-port`` / ``--api-id`` / ``--stage``
as to ``run_demo.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLE_DIR))

import run_demo  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--gateway-port", type=int, default=8001)
    parser.add_argument("--db", default=str(EXAMPLE_DIR / "db.sqlite3"))
    parser.add_argument("--api-id", default="demolocal")
    parser.add_argument("--stage", default="local")
    commands = parser.add_subparsers(dest="command", required=True)
    adduser = commands.add_parser("adduser", help="Create (or reset) a user of the demo.")
    adduser.add_argument("username")
    adduser.add_argument("password")
    broadcast = commands.add_parser("broadcast", help="Publish numbered messages to a channel.")
    broadcast.add_argument("--channel", default="lobby")
    broadcast.add_argument("--rate", type=float, default=10.0, help="Messages per second.")
    broadcast.add_argument("--seconds", type=float, default=30.0)
    return parser.parse_args(argv)


def setup(args: argparse.Namespace) -> None:
    os.environ.update(run_demo.demo_env(args, secret="unused-by-tools"))
    for path in (str(EXAMPLE_DIR), str(run_demo.ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    import django

    django.setup()


def adduser(args: argparse.Namespace) -> int:
    from django.contrib.auth import get_user_model

    manager = get_user_model()._default_manager
    user, _ = manager.get_or_create(username=args.username)
    user.set_password(args.password)
    user.save()
    print(json.dumps({"user": args.username}), flush=True)
    return 0


def broadcast(args: argparse.Namespace) -> int:
    from django.utils import timezone

    from aws_ws_async.channels import publish

    count = round(args.rate * args.seconds)
    start = time.monotonic()
    seqs: list[int | None] = []
    delivered = gone = 0
    for n in range(1, count + 1):
        # A steady schedule (not sleep-per-message): a slow publish does not stretch the run.
        pause = start + (n - 1) / args.rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        report = publish(
            args.channel,
            {
                "author": "broadcaster",
                "message": f"tick {n}",
                "n": n,
                "sent_at": timezone.now().isoformat(),
            },
        )
        seqs.append(report.seq)
        delivered += report.delivery.delivered_count
        gone += len(report.delivery.gone)
    summary = {
        "channel": args.channel,
        "published": count,
        "first_seq": seqs[0] if seqs else None,
        "last_seq": seqs[-1] if seqs else None,
        "delivered": delivered,
        # Posts answered 410: the rows were marked disconnected (a socket still in $connect
        # answers 410 too, see docs/client.md).
        "gone": gone,
        "seconds": round(time.monotonic() - start, 2),
    }
    print(json.dumps(summary), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup(args)
    return adduser(args) if args.command == "adduser" else broadcast(args)


if __name__ == "__main__":
    sys.exit(main())
