"""The signals aws_ws_async sends. Definitions only: what reacts to signals is in ``receivers``.

* ``broadcast_finished`` is sent after every QuerySet-level send or close that ran to the end,
  with ``report`` (a :class:`~aws_ws_async.delivery.DeliveryReport`), ``operation``
  (``"send"`` or ``"disconnect"``) and ``queryset``; connect a receiver to export metrics or
  alert on failures. (A broadcast that stopped raises ``BroadcastAborted`` instead.)
* ``broadcast_completed`` is sent once when an enqueued broadcast (``enqueue_message``) has
  finished every shard, with ``broadcast`` (the final :class:`~aws_ws_async.models.Broadcast`
  row), in the worker process that finished it.
"""

from __future__ import annotations

from django.dispatch import Signal

#: Sent after each broadcast / bulk close with ``report``, ``operation`` and ``queryset``.
broadcast_finished = Signal()

#: Sent once per enqueued broadcast when its last shard is done, with ``broadcast``.
broadcast_completed = Signal()
