"""The Broadcast admin pages: read-only status, totals, rate, duration and every shard."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from aws_ws_async.models import Broadcast, WebSocketSession
from aws_ws_async.scaleout import runner, store
from tests.fixtures_scaleout import backend, sessions


@pytest.fixture
def broadcast(settings: Any) -> Broadcast:
    settings.TASKS = backend("Dummy")
    settings.AWS_WS_ASYNC = {**settings.AWS_WS_ASYNC, "broadcast_shard_size": 4}
    sessions(10)
    stored = store.store(WebSocketSession.objects.for_channel("room"), "hi")
    runner.coordinate(stored.pk, "default")
    Broadcast.objects.filter(pk=stored.pk).update(delivered=7, gone=1)
    stored.refresh_from_db()
    return stored


@pytest.mark.django_db
def test_changelist_shows_status_and_totals(admin_client: Any, broadcast: Broadcast) -> None:
    page = admin_client.get(reverse("admin:aws_ws_async_broadcast_changelist"))
    assert page.status_code == 200
    text = page.content.decode()
    assert f">{broadcast.pk}<" in text
    assert "Running" in text


@pytest.mark.django_db
def test_change_page_lists_every_shard_read_only(admin_client: Any, broadcast: Broadcast) -> None:
    page = admin_client.get(reverse("admin:aws_ws_async_broadcast_change", args=[broadcast.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count("shard ") >= broadcast.shards_total == 3
    assert 'name="_save"' not in text  # nothing to edit
    add = admin_client.get(reverse("admin:aws_ws_async_broadcast_add"))
    assert add.status_code == 403
