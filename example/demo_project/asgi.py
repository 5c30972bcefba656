"""ASGI entry point: ``uvicorn --ws none demo_project.asgi:application`` or daphne.

``gateway_application`` is the fast entry point (docs/deployment.md): API Gateway's callbacks
under ``/ws/`` go straight to the chat's view, everything else through Django as
``application`` serves it. Serve it instead with ``demo_project.asgi:gateway_application``.

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

from chat.websocket import ChatWebSocketView  # noqa: E402 - after the apps are loaded

from aws_ws_async.views.asgi import GatewayASGIHandler  # noqa: E402

gateway_application = GatewayASGIHandler({"/ws/": ChatWebSocketView.as_view()})
