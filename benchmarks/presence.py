"""Presence for a channel of 100,000 subscriptions: one query, and how long it takes.

    python -m benchmarks.presence                       # PostgreSQL, 100k subscriptions
    python -m benchmarks.presence --subscriptions 20000 --users 4000 --json presence.json

Builds (once per size; reused on the next run) a channel ``big`` with ``--subscriptions`` live
subscriptions of ``--users`` users (several tabs each), plus noise the query must skip: 10% more
rows in ``big`` that are disconnected or past the idle rule, and a second channel as large. Then
times, median of ``--repeat`` runs after a warm-up, with the number of queries each made:

* ``presence("big")`` -- the snapshot (users with their connection counts, totals);
* ``user_presence("big", user)`` -- one user's live connections and the number of users online
  in one aggregate (what a join/leave frame carries);
* ``user_connections("big", user)`` -- one user's live connections only: what decides whether
  a join/leave is due (the count of users online is then read only when it is).

PostgreSQL via ``benchmarks/_postgres.py`` (``BENCH_PG_*``; database
``aws_ws_async_bench_presence`` by default); ``--db sqlite`` for a quick look. Prints a table
and, with ``--json``, writes every number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks._postgres import ensure_postgres_database

DB_NAME = "aws_ws_async_bench_presence"


def configure(db: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["BENCH_DB"] = db
    if db == "postgres":
        os.environ.setdefault("BENCH_PG_NAME", DB_NAME)
        ensure_postgres_database(os.environ["BENCH_PG_NAME"])
    else:
        os.environ.setdefault("BENCH_SQLITE_PATH", "/tmp/aws_ws_async_bench_presence.sqlite3")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def build(subscriptions: int, users: int) -> dict[str, Any]:
    """The data set; reused when a previous run left exactly this size."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from aws_ws_async.models import ChannelSubscription, WebSocketSession

    live = WebSocketSession.objects.subscribed_to("big").filter(connected=True)
    if (
        live.count() == subscriptions + subscriptions // 20
        and get_user_model().objects.count() == users
    ):
        return {"reused": True, **restamp()}
    started = time.perf_counter()
    ChannelSubscription.objects.all().delete()
    WebSocketSession.objects.all().delete()
    get_user_model().objects.all().delete()
    people = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"user{i:06d}") for i in range(users)], batch_size=5000
    )
    now = timezone.now()
    idle = now - timedelta(hours=1)
    noise = subscriptions // 10
    sessions = [
        WebSocketSession(
            connection_id=f"bench{i:08d}AAAA=",
            channel_name="big" if i < subscriptions + noise else "other",
            user_id=people[i % users].pk,
            # The noise: half closed, half idle past API Gateway's timeout (still "connected").
            connected=not (subscriptions <= i < subscriptions + noise // 2),
            connected_at=now,
            last_seen_at=idle if subscriptions + noise // 2 <= i < subscriptions + noise else now,
        )
        for i in range(2 * subscriptions + noise)
    ]
    created = WebSocketSession.objects.bulk_create(sessions, batch_size=5000)
    ChannelSubscription.objects.bulk_create(
        [ChannelSubscription(session_id=s.pk, channel_name=s.channel_name) for s in created],
        batch_size=10000,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE aws_ws_async_websocketsession")
            cursor.execute("VACUUM ANALYZE aws_ws_async_channelsubscription")
    return {"reused": False, "build_seconds": round(time.perf_counter() - started, 1)}


def restamp() -> dict[str, Any]:
    """A reused data set ages: bring its live rows back inside the idle and 2-hour rules."""
    from django.db import connection
    from django.db.models import Max
    from django.utils import timezone

    from aws_ws_async.models import WebSocketSession

    started = time.perf_counter()
    now = timezone.now()
    newest = WebSocketSession.objects.aggregate(m=Max("last_seen_at"))["m"]
    rows = WebSocketSession.objects.all()
    rows.filter(last_seen_at__lt=newest - timedelta(minutes=30)).update(
        connected_at=now, last_seen_at=now - timedelta(hours=1)
    )
    rows.filter(last_seen_at__gte=newest - timedelta(minutes=30)).update(
        connected_at=now, last_seen_at=now
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE aws_ws_async_websocketsession")
    return {"restamp_seconds": round(time.perf_counter() - started, 1)}


def timed(fn: Any, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fn()  # warm-up (plan cache, buffers)
    times: list[float] = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - began)
        queries = max(queries, len(captured))
    return {
        "median_ms": round(statistics.median(times) * 1000, 2),
        "min_ms": round(min(times) * 1000, 2),
        "max_ms": round(max(times) * 1000, 2),
        "queries": queries,
        "result": result,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    configure(args.db)
    from django.contrib.auth import get_user_model
    from django.db import connection

    from aws_ws_async.channels import presence
    from aws_ws_async.channels.presence import user_connections, user_presence

    built = build(args.subscriptions, args.users)
    someone = get_user_model().objects.order_by("pk").values_list("pk", flat=True).first()

    def snapshot() -> dict[str, int]:
        p = presence("big")
        return {"users": p.count, "connections": p.connections}

    def one_user() -> dict[str, int]:
        mine, count = user_presence("big", someone)
        return {"mine": mine, "users": count}

    def tabs() -> int:
        return user_connections("big", someone)

    results = {
        "db": connection.vendor,
        "subscriptions": args.subscriptions,
        "users": args.users,
        "repeat": args.repeat,
        **built,
        "presence": timed(snapshot, args.repeat),
        "user_presence": timed(one_user, args.repeat),
        "user_connections": timed(tabs, args.repeat),
    }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.subscriptions < 1 or args.users < 1 or args.repeat < 1:
        parser.error("--subscriptions, --users and --repeat must be at least 1")
    results = run(args)
    print(
        f"presence of one channel: {results['subscriptions']:,} live subscriptions, "
        f"{results['users']:,} users ({results['db']}, median of {results['repeat']})"
    )
    print(f"{'call':<34}{'median ms':>10}{'min':>9}{'max':>9}{'queries':>9}  result")
    for name, label in (
        ("presence", 'presence("big")'),
        ("user_presence", 'user_presence("big", user)'),
        ("user_connections", 'user_connections("big", user)'),
    ):
        row = results[name]
        print(
            f"{label:<34}{row['median_ms']:>10}{row['min_ms']:>9}{row['max_ms']:>9}"
            f"{row['queries']:>9}  {row['result']}"
        )
    print("JSON " + json.dumps(results, default=str))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"JSON: {args.json}")


if __name__ == "__main__":
    main()
