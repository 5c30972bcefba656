"""The ASGI applications ``benchmarks.request_server`` serves under uvicorn (one per process).

Configured from the environment the benchmark sets (``BENCH_SERVER_DB``, ``BENCH_SERVER_POOL``,
``BENCH_SERVER_WORKDIR``) with the same settings and URLs as ``benchmarks.request_path``:

* ``full``: Django's ``ASGIHandler`` behind the seven ``startproject`` middleware, as a project
  serves the views from ``urls.py`` today;
* ``fast``: ``aws_ws_async.views.asgi.GatewayASGIHandler`` with ``/ws/`` mounted directly (the
  gateway's callbacks skip the middleware; ``/ok`` still runs through it);
* ``async`` (with ``BENCH_SERVER_ASYNC_DB=1``): ``fast`` with ``AWS_WS_ASYNC["async_database"]``
  on, so the gateway routes' statements run on the async psycopg path (``aws_ws_async.asyncdb``);
* ``bare``: ``ASGIHandler`` with no middleware at all (the floor of a Django view);
* ``sync`` (with ``BENCH_SERVER_SYNC=1``, served by gunicorn's sync worker): Django's
  ``WSGIHandler`` behind the seven middleware with ``benchmarks.predecessor_view`` on ``/ws/``
  and a trivial sync view on ``/ok``, ``CONN_MAX_AGE=600``, no pool: the baseline.
"""

from __future__ import annotations

import os

from benchmarks import request_path

SYNC = os.environ.get("BENCH_SERVER_SYNC", "") == "1"
request_path.configure(
    os.environ.get("BENCH_SERVER_DB", "sqlite"),
    os.environ.get("BENCH_SERVER_WORKDIR", "/tmp"),
    os.environ.get("BENCH_SERVER_POOL", "") == "1" and not SYNC,
    conn_max_age=600 if SYNC else 0,
    async_database=os.environ.get("BENCH_SERVER_ASYNC_DB", "") == "1",
)
if SYNC:
    request_path.build_sync_urls()
else:
    request_path.build_urls()

from django.conf import settings  # noqa: E402 - after configure()
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from aws_ws_async.views.asgi import GatewayASGIHandler  # noqa: E402

if SYNC:
    #: For gunicorn: the predecessor-style sync view behind the seven middleware.
    sync = WSGIHandler()
else:
    full = ASGIHandler()
    fast = GatewayASGIHandler({"/ws/": request_path.bench_view})
    async_ = fast  # served with BENCH_SERVER_ASYNC_DB=1: the same handler, the async path on
    _middleware = settings.MIDDLEWARE
    settings.MIDDLEWARE = []
    bare = ASGIHandler()  # the chain is built now; the setting is restored below
    settings.MIDDLEWARE = _middleware
