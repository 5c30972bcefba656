"""Settings of the e2e project, read from ``E2E_*`` environment variables (see the harness)."""

from __future__ import annotations

import os

SECRET_KEY = "e2e-only-secret-key-not-for-production-0123456789abcdef"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.e2e_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ASGI_APPLICATION = "tests.e2e_project.asgi.application"
WSGI_APPLICATION = "tests.e2e_project.wsgi.application"

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
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if os.environ.get("E2E_DB_ENGINE", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("E2E_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("E2E_PG_PORT", "5432"),
            "USER": os.environ.get("E2E_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("E2E_PG_PASSWORD", ""),
            "NAME": os.environ["E2E_DB_NAME"],
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["E2E_DB_NAME"],
            # Several server threads write: wait for the lock instead of failing at once.
            "OPTIONS": {"timeout": 20},
        }
    }

_endpoint = os.environ.get("E2E_MANAGEMENT_ENDPOINT_URL", "http://127.0.0.1:9")
_aws = os.environ.get("E2E_AWS_ENDPOINT_URL", "")
AWS_WS_ASYNC: dict[str, object] = {
    "region_name": "us-east-1",
    "access_key_id": "testing",
    "secret_access_key": "testing",
    "management_endpoint_url": _endpoint,
    "gateway_secret": os.environ.get(
        "E2E_GATEWAY_SECRET", "e2e-gateway-secret-0123456789abcdefghijkl"
    ),
}
if _aws:
    AWS_WS_ASYNC.update(apigateway_endpoint_url=_aws, route53_endpoint_url=_aws)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("E2E_LOG_LEVEL", "WARNING")},
}
