"""The session admin as an operations console, through the test client (issue 11.5).

Disconnect, send to the selection, send to a channel, the connected counts and the gateway's
live count. ``@connections`` is the threaded FaultEndpoint (AWS mocked at the HTTP boundary
only); what it received is the proof of what was sent. The same actions under real uvicorn
and daphne are in ``tests/test_e2e_admin_sessions.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from aws_ws_async.delivery.payload import MAX_PAYLOAD_BYTES
from aws_ws_async.models import ApiGateway, ChannelSubscription, WebSocketSession
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:aws_ws_async_websocketsession_changelist"
SEND_TO_CHANNEL = "admin:aws_ws_async_websocketsession_send_to_channel"


def session(cid: str, gateway: Any, channel: str = "room", **kwargs: Any) -> WebSocketSession:
    """A session row and, as ``$connect`` inserts it, its first channel's subscription row."""
    row = WebSocketSession.objects.create(
        connection_id=cid, channel_name=channel, api_gateway=gateway, **kwargs
    )
    if channel:
        ChannelSubscription.objects.create(
            session=row, channel_name=channel, subscribed_at=row.connected_at
        )
    return row


def pks(*rows: WebSocketSession) -> list[str]:
    return [str(r.pk) for r in rows]


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def post_action(client: Client, action: str, selected: list[str], **extra: Any) -> Any:
    data = {"action": action, "_selected_action": selected, "index": "0", **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


@pytest.fixture
def endpoint(threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint) -> FaultEndpoint:
    return threaded_fault_endpoint


@pytest.fixture
def gw(db: None) -> ApiGateway:
    return make_gateway("Admin API", "adm0000001")


# --- disconnect ------------------------------------------------------------------------------


def test_disconnect_selected_closes_and_reports_closed_gone_failed(
    admin_client: Client, endpoint: FaultEndpoint, gw: ApiGateway
) -> None:
    live, gone, refused, _other = (
        session(f"{n}=", gw) for n in ("live", "gone", "refused", "other")
    )
    endpoint.plan.gone = {"gone="}
    endpoint.plan.status_for = {"refused=": 403}

    response = post_action(admin_client, "disconnect_selected", pks(live, gone, refused))

    assert response.status_code == 200
    assert messages_of(response) == [
        (
            "warning",
            "Disconnect: 3 session(s): 1 closed, 1 already gone, 1 failed (forbidden: 1).",
        )
    ]
    assert endpoint.deleted == ["live="]
    assert "other=" not in endpoint.calls
    state = {
        s.connection_id: (s.connected, s.disconnect_reason) for s in WebSocketSession.objects.all()
    }
    assert state == {
        "live=": (False, "server"),
        "gone=": (False, "server"),  # a 410 to a close: already closed, marked with the reason
        "refused=": (True, ""),
        "other=": (True, ""),
    }


def test_disconnect_of_already_disconnected_rows_says_so(
    admin_client: Client, endpoint: FaultEndpoint, gw: ApiGateway
) -> None:
    row = session("old=", gw, connected=False)
    response = post_action(admin_client, "disconnect_selected", pks(row))
    assert messages_of(response) == [
        ("info", "Disconnect: no connected session among those selected.")
    ]
    assert endpoint.requests == 0


def test_disconnect_select_across_follows_the_changelist_filter(
    admin_client: Client, endpoint: FaultEndpoint, gw: ApiGateway
) -> None:
    a, b = session("a=", gw, channel="alpha"), session("b=", gw, channel="alpha")
    session("c=", gw, channel="beta")
    url = reverse(CHANGELIST) + "?channel_name=alpha"
    data = {
        "action": "disconnect_selected",
        "_selected_action": pks(a),
        "select_across": "1",
        "index": "0",
    }
    admin_client.post(url, data)
    assert sorted(endpoint.deleted) == ["a=", "b="]
    assert WebSocketSession.objects.get(pk=b.pk).connected is False
    assert WebSocketSession.objects.get(connection_id="c=").connected is True


# --- send to the selection -------------------------------------------------------------------


def test_send_message_first_shows_the_form_with_the_selection(
    admin_client: Client, endpoint: FaultEndpoint, gw: ApiGateway
) -> None:
    a, b = session("a=", gw), session("b=", gw, connected=False)
    response = post_action(admin_client, "send_message_selected", pks(a, b))
    assert response.status_code == 200
    assert response.templates[0].name.endswith("websocketsession/send_message.html")
    page = response.content.decode()
    assert "1 connected of the 2 selected session(s)" in page
    for pk in pks(a, b):
        assert f'name="_selected_action" value="{pk}"' in page
    assert 'name="apply" value="1"' in page
    assert endpoint.requests == 0


def apply_send(client: Client, selected: list[str], fmt: str, message: str) -> Any:
    return client.post(
        reverse(CHANGELIST),
        {
            "action": "send_message_selected",
            "_selected_action": selected,
            "select_across": "0",
            "apply": "1",
            "format": fmt,
            "message": message,
        },
        follow=True,
    )


@pytest.mark.parametrize(
    ("fmt", "message", "sent"),
    [
        ("json", '{ "text": "héllo", "n": [1, 2] }', '{"text":"héllo","n":[1,2]}'.encode()),
        ("json", '"just a string"', b'"just a string"'),
        ("text", "  plain text, kept as typed\n", b"  plain text, kept as typed\n"),
    ],
)
def test_send_message_sends_exactly_the_payload_to_the_connected_selection(
    admin_client: Client,
    endpoint: FaultEndpoint,
    gw: ApiGateway,
    fmt: str,
    message: str,
    sent: bytes,
) -> None:
    a, b = session("a=", gw), session("b=", gw)
    session("unselected=", gw)
    gone = session("gone=", gw)
    endpoint.plan.gone = {"gone="}

    response = apply_send(admin_client, pks(a, b, gone), fmt, message)

    assert response.redirect_chain[-1][0].startswith(reverse(CHANGELIST))
    assert messages_of(response) == [
        ("success", "Send: 3 session(s): 2 delivered, 1 already gone, 0 failed.")
    ]
    assert endpoint.received["a="] == [sent]
    assert endpoint.received["b="] == [sent]
    assert "unselected=" not in endpoint.calls
    assert WebSocketSession.objects.get(pk=gone.pk).disconnect_reason == "gone"


@pytest.mark.parametrize(
    ("fmt", "message", "error"),
    [
        # The decoder's wording differs between Python versions; the prefix and position are ours.
        ("json", '{"a": 1,}', "Not valid JSON: "),
        ("json", '{\n  "a": [1, 2\n}', "(line 3, column 1)"),
        ("json", '{"a": NaN}', "NaN is not valid JSON"),
        ("json", "[" * 100_000, "Not valid JSON"),
        ("json", json.dumps("x" * MAX_PAYLOAD_BYTES), f"accepts at most {MAX_PAYLOAD_BYTES}"),
        ("text", "é" * (MAX_PAYLOAD_BYTES // 2 + 1), f"is {MAX_PAYLOAD_BYTES + 2} bytes"),
        ("text", "", "This field is required."),
        ("yaml", "a: 1", "Select a valid choice."),
    ],
)
def test_send_message_invalid_input_is_shown_in_the_form_and_nothing_is_sent(
    admin_client: Client,
    endpoint: FaultEndpoint,
    gw: ApiGateway,
    fmt: str,
    message: str,
    error: str,
) -> None:
    a = session("a=", gw)
    response = apply_send(admin_client, pks(a), fmt, message)
    assert response.status_code == 200
    assert response.templates[0].name.endswith("websocketsession/send_message.html")
    errors = " ".join(str(e) for e in response.context["form"].errors.values())
    assert error in errors, errors
    assert endpoint.requests == 0
    assert WebSocketSession.objects.get(pk=a.pk).connected is True


def test_exactly_128_kib_is_accepted(
    admin_client: Client, endpoint: FaultEndpoint, gw: ApiGateway
) -> None:
    a = session("a=", gw)
    apply_send(admin_client, pks(a), "text", "x" * MAX_PAYLOAD_BYTES)
    assert [len(b) for b in endpoint.received["a="]] == [MAX_PAYLOAD_BYTES]


def test_unreachable_endpoint_is_reported_as_failed(
    admin_client: Client, settings: Any, gw: ApiGateway
) -> None:
    from tests.fixtures_delivery import point_settings_at

    point_settings_at(settings, "http://127.0.0.1:9")  # nothing listens on the discard port
    a = session("a=", gw)
    response = apply_send(admin_client, pks(a), "text", "hi")
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert text.startswith("Send: 1 session(s): 0 delivered, 0 already gone, 1 failed (")
    assert WebSocketSession.objects.get(pk=a.pk).connected is True


# --- send to a channel -----------------------------------------------------------------------


def test_send_to_channel_reaches_every_connected_session_of_that_channel_only(
    admin_client: Client, endpoint: FaultEndpoint, gw: ApiGateway
) -> None:
    other_gw = make_gateway("Other API", "oth0000001")
    session("a=", gw, channel="news.sport")
    session("b=", other_gw, channel="news.sport")
    session("old=", gw, channel="news.sport", connected=False)
    session("c=", gw, channel="news")

    response = admin_client.post(
        reverse(SEND_TO_CHANNEL),
        {"channel": "news.sport", "format": "json", "message": '{"goal": true}'},
        follow=True,
    )

    assert messages_of(response) == [
        (
            "success",
            "Send to channel 'news.sport': 2 session(s): 2 delivered, 0 already gone, 0 failed.",
        )
    ]
    assert endpoint.received["a="] == [b'{"goal":true}']
    assert endpoint.received["b="] == [b'{"goal":true}']
    assert set(endpoint.calls) == {"a=", "b="}
    assert response.redirect_chain[-1][0].endswith("?subscribed_to=news.sport&connected__exact=1")


@pytest.mark.parametrize("channel", ["bad room", "", "x" * 129, "emoji\u2603", "tab\tinside"])
def test_send_to_channel_refuses_a_bad_channel_name(
    admin_client: Client, endpoint: FaultEndpoint, gw: ApiGateway, channel: str
) -> None:
    session("a=", gw, channel="room")
    response = admin_client.post(
        reverse(SEND_TO_CHANNEL), {"channel": channel, "format": "text", "message": "hi"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["channel"]
    assert endpoint.requests == 0


def test_send_to_channel_get_prefills_the_channel(admin_client: Client) -> None:
    response = admin_client.get(reverse(SEND_TO_CHANNEL), {"channel": "lobby"})
    assert response.status_code == 200
    assert 'value="lobby"' in response.content.decode()


def test_channel_of_selected_opens_the_channel_form_filled_in(
    admin_client: Client, endpoint: FaultEndpoint, gw: ApiGateway
) -> None:
    a, b = session("a=", gw, channel="lobby"), session("b=", gw, channel="lobby")
    c = session("c=", gw, channel="other")
    same = admin_client.post(
        reverse(CHANGELIST),
        {"action": "send_to_channel_of_selected", "_selected_action": pks(a, b), "index": "0"},
    )
    assert same.status_code == 302
    assert same["Location"] == reverse(SEND_TO_CHANNEL) + "?channel=lobby"
    mixed = admin_client.post(
        reverse(CHANGELIST),
        {"action": "send_to_channel_of_selected", "_selected_action": pks(a, c), "index": "0"},
    )
    assert mixed["Location"] == reverse(SEND_TO_CHANNEL)
    assert messages_of(mixed) == [
        ("info", "The selected sessions are not all on one channel: type the channel to send to.")
    ]
    assert endpoint.requests == 0


# --- permissions -----------------------------------------------------------------------------


@pytest.fixture
def viewer(db: None, django_user_model: Any) -> Client:
    """A staff user who may view sessions but not change (operate) them."""
    user = django_user_model._default_manager.create_user(
        email="viewer@example.com", password="pw-viewer-123", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_websocketsession"))
    client = Client()
    client.force_login(user)
    return client


def test_operations_need_the_change_permission(
    viewer: Client, endpoint: FaultEndpoint, gw: ApiGateway
) -> None:
    a = session("a=", gw)
    page = viewer.get(reverse(CHANGELIST))
    assert page.status_code == 200
    form = page.context["action_form"]  # None: no action at all is offered
    choices = {c[0] for c in form.fields["action"].choices} if form is not None else set()
    assert not {"disconnect_selected", "send_message_selected"} & choices
    assert "Send to a channel" not in page.content.decode()
    post_action(viewer, "disconnect_selected", pks(a))
    assert viewer.get(reverse(SEND_TO_CHANNEL)).status_code == 403
    refused = viewer.post(
        reverse(SEND_TO_CHANNEL), {"channel": "room", "format": "text", "message": "hi"}
    )
    assert refused.status_code == 403
    assert endpoint.requests == 0
    assert WebSocketSession.objects.get(pk=a.pk).connected is True


# --- counts ----------------------------------------------------------------------------------


def test_changelist_shows_connected_counts_per_channel_and_gateway(
    admin_client: Client, gw: ApiGateway
) -> None:
    other = make_gateway("Other API", "oth0000001")
    for i in range(3):
        session(f"a{i}=", gw, channel="lobby")
    session("b=", other, channel="lobby")
    session("c=", other, channel="news")
    session("d=", None, channel="")
    session("old=", gw, channel="news", connected=False)

    response = admin_client.get(reverse(CHANGELIST))

    counts = response.context["connection_counts"]
    assert [(r["name"], r["count"]) for r in counts["channels"]] == [
        ("lobby", 4),
        ("", 1),
        ("news", 1),
    ]
    assert [(r["name"], r["count"]) for r in counts["gateways"]] == [
        ("Admin API", 3),
        ("Other API", 2),
        ("(no gateway)", 1),
    ]
    page = response.content.decode()
    assert 'id="connected-per-channel"' in page
    assert "?subscribed_to=lobby&amp;connected__exact=1" in page
    # The links filter the changelist to what they count.
    lobby = admin_client.get(
        reverse(CHANGELIST), {"subscribed_to": "lobby", "connected__exact": "1"}
    )
    assert lobby.context["cl"].result_count == 4
    by_gw = admin_client.get(
        reverse(CHANGELIST), {"api_gateway__id__exact": str(other.pk), "connected__exact": "1"}
    )
    assert by_gw.context["cl"].result_count == 2
    no_gw = admin_client.get(
        reverse(CHANGELIST), {"api_gateway__isnull": "True", "connected__exact": "1"}
    )
    assert no_gw.context["cl"].result_count == 1
    no_channel = admin_client.get(counts["channels"][1]["url"])
    assert [s.connection_id for s in no_channel.context["cl"].result_list] == ["d="]


def test_counts_cost_two_queries_whatever_the_number_of_channels(
    admin_client: Client, gw: ApiGateway
) -> None:
    def grouped() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse(CHANGELIST)).status_code == 200
        sql = [q["sql"] for q in captured.captured_queries]
        return len(sql), sum("GROUP BY" in q for q in sql)

    session("a=", gw, channel="c0")
    total, aggregates = grouped()
    assert aggregates == 2  # one per channel, one per gateway
    WebSocketSession.objects.bulk_create(
        WebSocketSession(connection_id=f"m{i}=", channel_name=f"c{i}", api_gateway=gw)
        for i in range(1, 30)
    )
    assert grouped() == (total, 2)


def test_gateway_changelist_shows_live_count_linked_to_its_sessions(
    admin_client: Client, gw: ApiGateway
) -> None:
    empty = make_gateway("Empty API", "emp0000001")
    session("a=", gw)
    session("b=", gw)
    session("old=", gw, connected=False)
    url = reverse("admin:aws_ws_async_apigateway_changelist")

    response = admin_client.get(url)

    live = {g.pk: g.live_connections for g in response.context["cl"].result_list}
    assert live == {gw.pk: 2, empty.pk: 0}
    page = response.content.decode()
    link = f"{reverse(CHANGELIST)}?api_gateway__id__exact={gw.pk}&amp;connected__exact=1"
    assert f'<a href="{link}">2</a>' in page
    ordered = admin_client.get(url, {"o": "4"})  # the Connected column, fewest first
    assert [g.pk for g in ordered.context["cl"].result_list] == [empty.pk, gw.pk]


def test_gateway_changelist_query_count_does_not_grow_with_gateways(
    admin_client: Client, gw: ApiGateway
) -> None:
    url = reverse("admin:aws_ws_async_apigateway_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return len(captured)

    session("a=", gw)
    before = queries()
    for i in range(5):
        g = make_gateway(f"More {i}", f"mor000000{i}")
        session(f"m{i}=", g)
    assert queries() == before


def test_an_operation_stops_at_the_admins_deadline_and_says_how_far_it_got(
    admin_client: Client,
    endpoint: FaultEndpoint,
    gw: ApiGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hanging ``@connections`` cannot hold the admin request: the whole call has a deadline."""
    import time

    from django.contrib import admin

    monkeypatch.setattr(admin.site._registry[WebSocketSession], "operation_timeout_seconds", 0.5)
    endpoint.plan.hang_ids = {"hang="}
    endpoint.plan.hang_seconds = 4.0
    ok, hang = session("ok=", gw), session("hang=", gw)
    started = time.monotonic()
    response = post_action(admin_client, "disconnect_selected", pks(ok, hang))
    elapsed = time.monotonic() - started
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert text.startswith("Disconnect stopped before the end (BroadcastTimeout): 2 session(s): ")
    assert "1 closed" in text
    assert "cancelled: 1" in text
    assert elapsed < 3.5  # generous: the deadline is 0.5 s, the hang 4 s
    assert WebSocketSession.objects.get(pk=ok.pk).connected is False
    assert WebSocketSession.objects.get(pk=hang.pk).connected is True


def test_send_form_replays_select_across_on_the_filtered_changelist(
    admin_client: Client, endpoint: FaultEndpoint, gw: ApiGateway
) -> None:
    a = session("a=", gw, channel="alpha")
    session("b=", gw, channel="alpha")
    session("c=", gw, channel="beta")
    url = reverse(CHANGELIST) + "?channel_name=alpha"
    chosen = {"action": "send_message_selected", "_selected_action": pks(a), "select_across": "1"}
    form = admin_client.post(url, {**chosen, "index": "0"})
    page = form.content.decode()
    assert '<form method="post" novalidate>' in page  # posts back to the same, filtered, URL
    assert 'name="select_across" value="1"' in page
    assert "2 connected of the 2 selected session(s)" in page
    admin_client.post(url, {**chosen, "apply": "1", "format": "text", "message": "hi"})
    assert endpoint.received["a="] == [b"hi"]
    assert endpoint.received["b="] == [b"hi"]
    assert "c=" not in endpoint.calls
