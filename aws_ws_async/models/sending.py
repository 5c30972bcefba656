"""The sending twins' cores: read rows, fan out (:mod:`.broadcast`), mark rows, report.

Each public method on :class:`~aws_ws_async.models.WebSocketSessionQuerySet` and
:class:`~aws_ws_async.models.WebSocketSession` validates its arguments
(:mod:`.operations`) and calls one pair here; the async and sync member of a pair differ only
in their I/O:

* **async** (:mod:`.sending_async`): each gateway's connected rows are streamed by keyset pages
  (:mod:`.paging`), one engine per gateway, gone rows marked in background batches while the
  engines run.
* **sync** (:mod:`.sending_sync`): each gateway's pages are read *in the caller's thread* (so
  inside ``transaction.atomic()`` the caller's own uncommitted rows are seen) and handed to the
  portal loop (:mod:`aws_ws_async.sync`) as fan-outs, up to two pages per gateway in flight
  under one shared limiter; when a page is done its rows are marked and that gateway's next
  page is read, so a slow gateway holds back only itself. Only ids and bytes cross threads.
* **one session** (:mod:`.sending_one`) and **closing in the background** for logout
  (:mod:`.sending_background`); every report ends in :mod:`.sending_report`.

This module is the one place the models call (and the names other packages import).

Every query and every mark uses the queryset's database (``queryset.db``) or the instance's
(``_state.db``), so ``.using("other")`` sends through ``other``'s gateways.
"""

from __future__ import annotations

from aws_ws_async.models.sending_async import arun_bulk
from aws_ws_async.models.sending_background import submit_close
from aws_ws_async.models.sending_one import arun_one, run_one
from aws_ws_async.models.sending_sync import SYNC_WINDOW, run_bulk

__all__ = ["SYNC_WINDOW", "arun_bulk", "arun_one", "run_bulk", "run_one", "submit_close"]
