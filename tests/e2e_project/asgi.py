"""ASGI entry point (uvicorn, daphne)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.e2e_project.settings")
application = get_asgi_application()
