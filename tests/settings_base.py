"""What the test suite's settings and the e2e project's settings share.

``tests/settings.py`` (pytest's own process) and ``tests/e2e_project/settings.py`` (the real
servers the e2e tests start) must agree on the apps, the middleware stack and the templates, or
an e2e test would exercise a different request path from the in-process tests. Each imports this
module with ``*`` and adds only what differs: the URLconf, the database (read from its own
environment variables) and the ``AWS_WS_ASYNC`` endpoints.

The example project (``example/demo_project/settings.py``) deliberately does NOT import this: it
is the settings file users copy, so it must read on its own.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "AWS_TEST_CREDENTIALS",
    "DEBUG",
    "DEFAULT_AUTO_FIELD",
    "INSTALLED_APPS",
    "MIDDLEWARE",
    "PASSWORD_HASHERS",
    "STATIC_URL",
    "TEMPLATES",
    "TIME_ZONE",
    "USE_TZ",
    "postgres_database",
]

DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "aws_ws_async",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"
# Hashing speed only matters to the tests' own run time, never to what they check.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

#: The fake credentials every AWS client of the tests signs with (moto accepts any).
AWS_TEST_CREDENTIALS: dict[str, Any] = {
    "region_name": "us-east-1",
    "access_key_id": "testing",
    "secret_access_key": "testing",
}


def postgres_database(prefix: str, name: str) -> dict[str, Any]:
    """A PostgreSQL ``DATABASES`` entry read from ``<prefix>HOST``/``PORT``/``USER``/``PASSWORD``.

    Both settings modules connect the same way (127.0.0.1:5432, trust auth by default); only
    the variables' prefix differs, because the e2e project gets its values from the harness.
    """
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get(f"{prefix}HOST", "127.0.0.1"),
        "PORT": os.environ.get(f"{prefix}PORT", "5432"),
        "USER": os.environ.get(f"{prefix}USER", "postgres"),
        "PASSWORD": os.environ.get(f"{prefix}PASSWORD", ""),
        "NAME": name,
    }
