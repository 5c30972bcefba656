"""Settings of the aws_ws_async example project (a chat served through API Gateway).

Everything that differs between a laptop, the test suite and a deployment is read from the
environment, so tests can point the database at a temporary file or at PostgreSQL:

- ``DEMO_DATABASE_URL``-style pieces: ``DEMO_DB_ENGINE`` (``sqlite``/``postgres``),
  ``DEMO_DB_NAME`` (SQLite file path or PostgreSQL database), ``DEMO_DB_HOST``/``PORT``/``USER``/
  ``PASSWORD``;
- ``DEMO_SECRET_KEY``, ``DEMO_DEBUG``, ``DEMO_ALLOWED_HOSTS`` (comma separated);
- ``DEMO_GATEWAY_SECRET``: the shared secret API Gateway (or the local emulator) sends in
  ``X-Ws-Gateway-Secret``; leave unset only for local experiments;
- ``DEMO_MANAGEMENT_ENDPOINT_URL``: where ``@connections`` posts go (the local emulator);
- ``DEMO_TRUSTED_ORIGINS``: extra browser origins allowed to open sockets (comma separated);
- ``DEMO_ASYNC_DATABASE=1``: the async database path (PostgreSQL; docs/deployment.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "demo-only-insecure-key-change-me-0123456789abcdef")
DEBUG = os.environ.get("DEMO_DEBUG", "1") == "1"
ALLOWED_HOSTS = _env_list("DEMO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("DEMO_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "aws_ws_async",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

_engine = os.environ.get("DEMO_DB_ENGINE", "sqlite").lower()
if _engine in {"postgres", "postgresql", "pg"}:
    DATABASES: dict[str, dict[str, Any]] = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("DEMO_DB_NAME", "aws_ws_async_demo"),
            "HOST": os.environ.get("DEMO_DB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("DEMO_DB_PORT", "5432"),
            "USER": os.environ.get("DEMO_DB_USER", "postgres"),
            "PASSWORD": os.environ.get("DEMO_DB_PASSWORD", ""),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DEMO_DB_NAME", str(BASE_DIR / "db.sqlite3")),
            # Several server processes (uvicorn, the emulator, manage.py) share the file.
            "OPTIONS": {"timeout": 20},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
# The browser must send its session cookie on the wss:// handshake; in production set
# SESSION_COOKIE_DOMAIN to a parent domain of both the site and the WebSocket host.
SESSION_COOKIE_DOMAIN = os.environ.get("DEMO_SESSION_COOKIE_DOMAIN") or None

AWS_WS_ASYNC: dict[str, Any] = {
    "region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
}
if os.environ.get("DEMO_GATEWAY_SECRET"):
    AWS_WS_ASYNC["gateway_secret"] = os.environ["DEMO_GATEWAY_SECRET"]
if os.environ.get("DEMO_MANAGEMENT_ENDPOINT_URL"):
    AWS_WS_ASYNC["management_endpoint_url"] = os.environ["DEMO_MANAGEMENT_ENDPOINT_URL"]
# PostgreSQL only: the gateway routes' statements on the loop (docs/deployment.md).
AWS_WS_ASYNC["async_database"] = os.environ.get("DEMO_ASYNC_DATABASE", "") == "1"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "aws_ws_async": {
            "handlers": ["console"],
            "level": os.environ.get("DEMO_LOG_LEVEL", "INFO"),
        }
    },
}
