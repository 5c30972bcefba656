"""The cleanup commands' batched writes stay on the queryset's database."""

from __future__ import annotations

import pytest

from aws_ws_async.management.commands._batching import delete_in_batches
from aws_ws_async.models import WebSocketSession


@pytest.mark.django_db(databases=["default", "other"])
def test_delete_in_batches_deletes_on_the_querysets_database_only() -> None:
    for db in ("default", "other"):
        WebSocketSession.objects.using(db).bulk_create(
            WebSocketSession(connection_id=f"c{i}=", connected=False) for i in range(7)
        )

    deleted = delete_in_batches(WebSocketSession.objects.using("other").all(), batch_size=3)

    assert deleted == 7
    assert WebSocketSession.objects.using("other").count() == 0
    assert WebSocketSession.objects.using("default").count() == 7
