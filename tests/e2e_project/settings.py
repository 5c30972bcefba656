"""Settings of the e2e project, read from ``E2E_*`` environment variables (see the harness).

Apps, middleware and templates are the test suite's own (``tests/settings_base.py``), so a
real server runs the same request path as the in-process tests.
"""

from __future__ import annotations

import os

from tests.settings_base import *  # noqa: F403
from tests.settings_base import AWS_TEST_CREDENTIALS, postgres_database

SECRET_KEY = "e2e-only-secret-key-not-for-production-0123456789abcdef"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.e2e_project.urls"
ASGI_APPLICATION = "tests.e2e_project.asgi.application"
WSGI_APPLICATION = "tests.e2e_project.wsgi.application"

if os.environ.get("E2E_DB_ENGINE", "sqlite") == "postgres":
    DATABASES = {"default": postgres_database("E2E_PG_", os.environ["E2E_DB_NAME"])}
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
    **AWS_TEST_CREDENTIALS,
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
