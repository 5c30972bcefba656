"""ASGI entry point: ``uvicorn --ws none demo_project.asgi:application`` or daphne.

uvicorn runs with ``--ws none`` because API Gateway forwards the browser's ``Sec-WebSocket-*``
headers on the ``$connect`` POST; the backend must treat it as a plain HTTP request.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
