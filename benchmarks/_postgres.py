"""Creating the benchmark's PostgreSQL database on first use (shared by both benchmarks).

The connection comes from ``BENCH_PG_HOST`` / ``BENCH_PG_PORT`` / ``BENCH_PG_USER``; the database
name from ``BENCH_PG_NAME``, else each benchmark's own default so their tables never mix.
"""

from __future__ import annotations

import os


def ensure_postgres_database(default_name: str) -> None:
    import psycopg

    name = os.environ.get("BENCH_PG_NAME", default_name)
    with psycopg.connect(
        host=os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
        port=os.environ.get("BENCH_PG_PORT", "5432"),
        user=os.environ.get("BENCH_PG_USER", "postgres"),
        dbname="postgres",
        autocommit=True,
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
