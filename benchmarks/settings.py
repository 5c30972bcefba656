"""Minimal Django settings for the benchmarks: our app, a temp SQLite file or local PostgreSQL.

``BENCH_DB`` picks the database (``sqlite`` or ``postgres``); ``BENCH_SQLITE_PATH`` the file;
``BENCH_PG_*`` the PostgreSQL connection (defaults: 127.0.0.1:5432, user postgres, database
``aws_ws_async_bench``, created on first use).
"""

from __future__ import annotations

import os

SECRET_KEY = "benchmark-only-secret-key-0123456789abcdef0123456789"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "aws_ws_async",
]

if os.environ.get("BENCH_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("BENCH_PG_PASSWORD", ""),
            "NAME": os.environ.get("BENCH_PG_NAME", "aws_ws_async_bench"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE_PATH", "/tmp/aws_ws_async_bench.sqlite3"),
        }
    }

AWS_WS_ASYNC = {
    "region_name": "us-east-1",
    "access_key_id": "benchmark",
    "secret_access_key": "benchmark",
    # The loopback endpoint's URL, exported by the benchmark once the endpoint has a port.
    "management_endpoint_url": os.environ.get("BENCH_ENDPOINT_URL", "http://127.0.0.1:9"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"aws_ws_async": {"level": "WARNING"}},
}
