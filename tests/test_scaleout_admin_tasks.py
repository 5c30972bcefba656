"""The admin's slow actions on the task backend when one is configured, inline without (12.6).

The task backend is the framework's own ImmediateBackend (a real backend: the enqueued task runs
at once in this process), so the whole enqueue -> task -> Broadcast path runs; the same with a
real ``db_worker`` process on PostgreSQL is in tests/test_e2e_workers_admin.py. Without
``TASKS`` the actions run inline as before: no Broadcast row, no task.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from aws_ws_async.models import ApiGateway, Broadcast, ProvisioningStatus, WebSocketSession
from aws_ws_async.models.broadcasts import BroadcastOperation
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_scaleout import backend, sessions

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "admin:aws_ws_async_websocketsession_changelist"
GATEWAYS = "/admin/aws_ws_async/apigateway/"


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def post_action(client: Client, action: str, selected: list[Any], **extra: Any) -> Any:
    data = {"action": action, "_selected_action": [str(pk) for pk in selected], **extra}
    return client.post(reverse(CHANGELIST), {"index": "0", **data}, follow=True)


@pytest.fixture
def endpoint(small_shards: Any, threaded_fault_endpoint: FaultEndpoint) -> FaultEndpoint:
    return threaded_fault_endpoint


def test_without_tasks_disconnect_runs_inline_and_writes_no_broadcast(
    admin_client: Client, endpoint: FaultEndpoint
) -> None:
    rows = sessions(6)
    response = post_action(admin_client, "disconnect_selected", [r.pk for r in rows[:4]])
    assert messages_of(response) == [
        ("success", "Disconnect: 4 session(s): 4 closed, 0 already gone, 0 failed.")
    ]
    assert sorted(endpoint.deleted) == sorted(r.connection_id for r in rows[:4])
    assert not Broadcast.objects.exists()


def test_with_tasks_disconnect_is_a_broadcast_row_closing_exactly_the_selection(
    admin_client: Client, endpoint: FaultEndpoint
) -> None:
    from django.conf import settings

    settings.TASKS = backend("Immediate")
    rows = sessions(25)  # three shards of 10
    chosen, kept = rows[:23], rows[23:]
    endpoint.plan.gone = {chosen[5].connection_id}
    response = post_action(admin_client, "disconnect_selected", [r.pk for r in chosen])
    broadcast = Broadcast.objects.get()
    ((level, text),) = messages_of(response)
    assert level == "info"
    assert f'Disconnect: enqueued as <a href="/admin/aws_ws_async/broadcast/{broadcast.pk}/' in text
    assert (broadcast.operation, broadcast.close_reason) == (
        BroadcastOperation.DISCONNECT,
        "server",
    )
    assert (broadcast.status, broadcast.recipients, broadcast.shards_total) == ("finished", 23, 3)
    assert (broadcast.delivered, broadcast.gone, broadcast.failed) == (22, 1, 0)
    assert sorted(endpoint.deleted) == sorted(
        r.connection_id for r in chosen if r.connection_id != chosen[5].connection_id
    )
    assert endpoint.received == {} or all(not b for b in endpoint.received.values())  # no POST
    state = dict(WebSocketSession.objects.values_list("connection_id", "disconnect_reason"))
    assert {state[r.connection_id] for r in chosen} == {"server"}  # closed and the 410 alike
    assert {state[r.connection_id] for r in kept} == {""}
    assert WebSocketSession.objects.filter(connected=True).count() == len(kept)
    page = admin_client.get(reverse("admin:aws_ws_async_broadcast_changelist"))
    assert "Close server-side" in page.content.decode()  # the row says what it did


def test_with_tasks_send_to_selected_and_to_a_channel_enqueue_broadcasts(
    admin_client: Client, endpoint: FaultEndpoint
) -> None:
    from django.conf import settings

    settings.TASKS = backend("Immediate")
    rows = sessions(12)
    other = sessions(3, channel="lobby", gateway=rows[0].api_gateway)
    response = post_action(
        admin_client,
        "send_message_selected",
        [r.pk for r in rows[:7]],
        apply="1",
        message='{"note": "hi"}',
        format="json",
    )
    ((level, text),) = messages_of(response)
    assert (level, text.split(" as ")[0]) == ("info", "Send: enqueued")
    sent = Broadcast.objects.get()
    assert (sent.operation, sent.status, sent.delivered) == ("send", "finished", 7)
    assert sorted(endpoint.received) == sorted(r.connection_id for r in rows[:7])

    url = reverse("admin:aws_ws_async_websocketsession_send_to_channel")
    page = admin_client.post(url, {"channel": "lobby", "message": "yo", "format": "text"})
    assert page.status_code == 302
    channel = Broadcast.objects.exclude(pk=sent.pk).get()
    assert (channel.status, channel.delivered, channel.recipients) == ("finished", 3, 3)
    assert all(endpoint.received[r.connection_id] == [b"yo"] for r in other)


def test_a_bad_message_enqueues_nothing(admin_client: Client, endpoint: FaultEndpoint) -> None:
    from django.conf import settings

    settings.TASKS = backend("Immediate")
    rows = sessions(3)
    response = post_action(
        admin_client,
        "send_message_selected",
        [r.pk for r in rows],
        apply="1",
        message="{not json",
        format="json",
    )
    assert response.status_code == 200  # the form again, with its error
    assert not Broadcast.objects.exists()
    assert endpoint.requests == 0


def test_a_backend_that_never_runs_tasks_keeps_the_admin_inline(settings: Any) -> None:
    settings.TASKS = backend("Dummy")
    from aws_ws_async.admin_tasks import tasks_configured

    assert not tasks_configured()  # a backend that never runs a task is no task backend
    settings.TASKS = backend("Immediate")
    assert tasks_configured()


def test_gateway_action_as_a_task_provisions_and_writes_the_history(
    provisioning_settings: Any, new_gateway: ApiGateway, admin_client: Client
) -> None:
    provisioning_settings.TASKS = backend("Immediate")
    response = admin_client.post(
        GATEWAYS,
        {"action": "create_api_gateway", "_selected_action": [new_gateway.pk]},
        follow=True,
    )
    assert [(m.level_tag, str(m)) for m in response.context["messages"]] == [
        (
            "info",
            "Create API enqueued for 1 gateway(s): each row's provisioning status and last "
            "error show its progress, and the outcome is written to the gateway's history.",
        )
    ]
    gateway = ApiGateway.objects.get(pk=new_gateway.pk)
    assert gateway.provisioning_status == ProvisioningStatus.DEPLOYED  # the task ran
    entry = LogEntry.objects.get(object_id=str(gateway.pk))
    assert entry.get_change_message().startswith("Create API: created and deployed")
    assert entry.user.get_username() == "admin@example.com"
