"""Settings for the test suite. The database is chosen by ``AWS_WS_ASYNC_TEST_DB``.

``sqlite`` (default) or ``postgres`` (127.0.0.1:5432, trust auth, database ``test``; override
with ``AWS_WS_ASYNC_PG_HOST`` / ``_PORT`` / ``_USER`` / ``_NAME``). Both define a second alias,
``other``, for the tests of ``using()``. Apps, middleware and templates come from
``tests/settings_base.py`` (shared with the e2e project's settings); this adds the test app and
its custom user model.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.settings_base import *  # noqa: F403
from tests.settings_base import AWS_TEST_CREDENTIALS, INSTALLED_APPS, postgres_database

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only-secret-key-not-for-production-0123456789abcdef"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
AUTH_USER_MODEL = "testapp.EmailUser"
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

_db = os.environ.get("AWS_WS_ASYNC_TEST_DB", "sqlite").lower()
# One test database per test run, so concurrent runs (several developers, or CI jobs on one
# machine) never create or flush each other's tables. Stored in the environment so servers a
# test starts in a subprocess use the same database.
_run_id = os.environ.setdefault("AWS_WS_ASYNC_TEST_RUN_ID", str(os.getpid()))
if _db in {"postgres", "postgresql", "pg"}:
    DATABASES = {
        "default": {
            **postgres_database("AWS_WS_ASYNC_PG_", os.environ.get("AWS_WS_ASYNC_PG_NAME", "test")),
            "TEST": {
                "NAME": os.environ.get("AWS_WS_ASYNC_PG_TEST_NAME", f"test_aws_ws_async_{_run_id}")
            },
        }
    }
    # A second database (a second tenant): tests that mark ``databases={"default", "other"}``
    # check that every query of an operation follows ``using()``.
    DATABASES["other"] = {
        **DATABASES["default"],
        "TEST": {"NAME": f"test_aws_ws_async_other_{_run_id}"},
    }
elif _db == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "test.sqlite3"),
            "TEST": {"NAME": str(BASE_DIR / f"test-db-{_run_id}.sqlite3")},
        },
        "other": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "test-other.sqlite3"),
            "TEST": {"NAME": str(BASE_DIR / f"test-db-other-{_run_id}.sqlite3")},
        },
    }
else:
    raise RuntimeError(f"AWS_WS_ASYNC_TEST_DB must be 'sqlite' or 'postgres', not {_db!r}")

# Tests script a 410 for rows they have just created; the grace that spares a session still in
# $connect is tested on its own (tests/test_sending_gone_grace.py).
AWS_WS_ASYNC = {**AWS_TEST_CREDENTIALS, "gone_grace_seconds": 0}
# ``AWS_WS_ASYNC_TEST_ASYNC_DB=1``: the whole suite with the async database path on (on
# PostgreSQL the gateway routes' statements then run on it wherever it may serve).
if os.environ.get("AWS_WS_ASYNC_TEST_ASYNC_DB") == "1":
    AWS_WS_ASYNC["async_database"] = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"aws_ws_async": {"handlers": ["null"], "level": "DEBUG"}},
}
