"""``send_websocket_message --enqueue``: progress until done, non-zero exit on failures."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from aws_ws_async.models import Broadcast
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_scaleout import backend, sessions


@pytest.mark.django_db(transaction=True)
def test_enqueue_prints_progress_and_succeeds(
    small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    small_shards.TASKS = backend("Immediate")
    sessions(12)
    out = StringIO()
    call_command("send_websocket_message", "--channel", "room", "--enqueue", '{"a": 1}', stdout=out)
    text = out.getvalue()
    broadcast = Broadcast.objects.get()
    assert f"Enqueued broadcast {broadcast.pk}" in text
    assert "finished: 12/12 (12 delivered, 0 gone, 0 failed; 2 shard(s))" in text
    assert len([cid for cid, bodies in threaded_fault_endpoint.received.items() if bodies]) == 12


@pytest.mark.django_db(transaction=True)
def test_enqueue_exits_non_zero_when_a_recipient_failed(
    small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    small_shards.TASKS = backend("Immediate")
    rows = sessions(6)
    threaded_fault_endpoint.plan.status_for = {rows[2].connection_id: 403}
    with pytest.raises(CommandError, match="1 of 6 recipient"):
        call_command(
            "send_websocket_message", "--all", "--enqueue", "--text", "hi", stdout=StringIO()
        )


@pytest.mark.django_db
def test_enqueue_without_a_task_backend_is_a_command_error(small_shards: Any) -> None:
    sessions(2)
    with pytest.raises(CommandError, match="TASKS"):
        call_command(
            "send_websocket_message", "--all", "--enqueue", "--text", "hi", stdout=StringIO()
        )
    assert not Broadcast.objects.exists()
