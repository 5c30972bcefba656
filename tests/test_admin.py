"""Admin pages: every page renders for a superuser of the email-only user model, read-only
models refuse add and change, and searches work without a ``username`` field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from aws_ws_async.admin import user_search_fields
from aws_ws_async.models import (
    ApiGateway,
    ApiGatewayAdditionalRoute,
    ChannelPermission,
    ChannelPermissionRule,
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)

pytestmark = pytest.mark.django_db

ALL_MODELS = [
    ApiGateway,
    ApiGatewayAdditionalRoute,
    WebSocketSession,
    WebSocketToken,
    ConnectionRateLimit,
    ChannelPermission,
]
READ_ONLY = [WebSocketSession, WebSocketToken, ConnectionRateLimit]
EDITABLE = [ApiGateway, ApiGatewayAdditionalRoute, ChannelPermission]


def url(model: type, view: str, *args: Any) -> str:
    return reverse(f"admin:aws_ws_async_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def rows(gateway: Any, user: Any) -> dict[type, Any]:
    """One row of every model, all linked to the email user."""
    now = timezone.now()
    perm = ChannelPermission.objects.create(channel_name="news.sport", access="permissions")
    rule = ChannelPermissionRule.objects.create(channel_permission=perm, description="editors")
    rule.permissions.add(Permission.objects.get(codename="view_apigateway"))
    return {
        ApiGateway: gateway,
        ApiGatewayAdditionalRoute: ApiGatewayAdditionalRoute.objects.create(
            api_gateway=gateway,
            name="Send",
            route_key="sendmessage",
            integration_url="https://backend.example.com/ws/send",
        ),
        WebSocketSession: WebSocketSession.objects.create(
            connection_id="conn-A=",
            channel_name="news.sport",
            user=user,
            api_gateway=gateway,
            session_key_hash="f" * 64,
            auth_hash="e" * 64,
        ),
        WebSocketToken: WebSocketToken.objects.create(
            token="a" * 64,
            user=user,
            session_key_hash="b" * 64,
            expires_at=now + timedelta(seconds=60),
        ),
        ConnectionRateLimit: ConnectionRateLimit.objects.create(
            ip_address="203.0.113.9", user=user
        ),
        ChannelPermission: perm,
    }


def test_admin_client_user_has_no_username(admin_client: Any) -> None:
    from django.contrib.auth import get_user_model

    assert not hasattr(get_user_model(), "username")
    assert user_search_fields() == ["user__email"]


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_every_model_is_registered(model: type) -> None:
    assert admin.site.is_registered(model)


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_pages_render(
    admin_client: Any, rows: dict[type, Any], model: type
) -> None:
    obj = rows[model]
    changelist = admin_client.get(url(model, "changelist"))
    assert changelist.status_code == 200
    assert str(obj).encode() in changelist.content or str(obj.pk).encode() in changelist.content
    change = admin_client.get(url(model, "change", obj.pk))
    assert change.status_code == 200


@pytest.mark.parametrize("model", EDITABLE, ids=lambda m: m.__name__)
def test_add_pages_render(admin_client: Any, model: type) -> None:
    response = admin_client.get(url(model, "add"))
    assert response.status_code == 200
    assert b'name="_save"' in response.content


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_read_only_models_refuse_add_and_change(
    admin_client: Any, rows: dict[type, Any], model: type
) -> None:
    obj = rows[model]
    count = model._default_manager.count()
    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.post(url(model, "add"), {}).status_code == 403
    assert admin_client.post(url(model, "change", obj.pk), {}).status_code == 403
    changelist = admin_client.get(url(model, "changelist"))
    assert url(model, "add").encode() not in changelist.content
    change = admin_client.get(url(model, "change", obj.pk))
    assert b'name="_save"' not in change.content  # view-only page
    assert model._default_manager.count() == count


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_read_only_models_may_be_deleted_by_superuser(
    admin_client: Any, rows: dict[type, Any], model: type
) -> None:
    obj = rows[model]
    response = admin_client.post(url(model, "delete", obj.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not model._default_manager.filter(pk=obj.pk).exists()


def test_hashes_are_hidden(admin_client: Any, rows: dict[type, Any]) -> None:
    session = admin_client.get(url(WebSocketSession, "change", rows[WebSocketSession].pk))
    token = admin_client.get(url(WebSocketToken, "change", rows[WebSocketToken].pk))
    assert b"f" * 64 not in session.content
    assert b"e" * 64 not in session.content
    assert b"a" * 64 not in token.content
    assert b"b" * 64 not in token.content
    assert b"conn-A=" in session.content


@pytest.mark.parametrize(
    ("model", "term"),
    [
        (WebSocketSession, "alice@example"),
        (WebSocketSession, "conn-A"),
        (WebSocketSession, "news.sport"),
        (WebSocketToken, "alice@example"),
        (ConnectionRateLimit, "alice@example"),
        (ConnectionRateLimit, "203.0.113"),
    ],
)
def test_search_by_email_connection_channel_and_ip(
    admin_client: Any, rows: dict[type, Any], user: Any, model: type, term: str
) -> None:
    other = type(user)._default_manager.create_user(email="bob@example.org", password="pw")
    hit = admin_client.get(url(model, "changelist"), {"q": term})
    miss = admin_client.get(url(model, "changelist"), {"q": "nobody-matches-this"})
    assert hit.status_code == 200
    assert hit.context["cl"].result_count == 1
    assert miss.context["cl"].result_count == 0
    assert other.email.encode() not in hit.content


def test_gateway_search_and_filters(admin_client: Any, rows: dict[type, Any]) -> None:
    ApiGateway.objects.create(
        api_name="Other", domain_name="ws.other.example.com", certificate_arn="arn:x"
    )
    found = admin_client.get(url(ApiGateway, "changelist"), {"q": "ws.other"})
    assert found.context["cl"].result_count == 1
    created = admin_client.get(url(ApiGateway, "changelist"), {"api_created__exact": "1"})
    assert [g.api_name for g in created.context["cl"].result_list] == ["Test API"]


def test_gateway_change_page_shows_route_inline_and_read_only_state(
    admin_client: Any, rows: dict[type, Any]
) -> None:
    response = admin_client.get(url(ApiGateway, "change", rows[ApiGateway].pk))
    assert b"sendmessage" in response.content
    adminform = response.context["adminform"]
    assert "provisioning_status" in adminform.readonly_fields
    assert "api_id" in adminform.readonly_fields  # already created in AWS
    blank = admin_client.get(url(ApiGateway, "add"))
    assert "api_id" not in blank.context["adminform"].readonly_fields


def test_route_admin_autocompletes_gateway(admin_client: Any, rows: dict[type, Any]) -> None:
    response = admin_client.get(url(ApiGatewayAdditionalRoute, "add"))
    assert b"admin-autocomplete" in response.content
    lookup = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "aws_ws_async",
            "model_name": "apigatewayadditionalroute",
            "field_name": "api_gateway",
            "term": "Test",
        },
    )
    assert lookup.status_code == 200
    assert [r["text"] for r in lookup.json()["results"]] == ["Test API"]


def test_channel_permission_add_with_rule_inline(admin_client: Any) -> None:
    perm = Permission.objects.get(codename="view_apigateway")
    response = admin_client.post(
        url(ChannelPermission, "add"),
        {
            "channel_name": "staff.room",
            "access": "permissions",
            "description": "",
            "rules-TOTAL_FORMS": "1",
            "rules-INITIAL_FORMS": "0",
            "rules-MIN_NUM_FORMS": "0",
            "rules-MAX_NUM_FORMS": "1000",
            "rules-0-description": "viewers",
            "rules-0-permissions": [str(perm.pk)],
        },
    )
    assert response.status_code == 302, response.content[:2000]
    created = ChannelPermission.objects.get(channel_name="staff.room")
    assert [list(r.permissions.all()) for r in created.rules.all()] == [[perm]]


def test_channel_permission_add_rejects_bad_channel(admin_client: Any) -> None:
    response = admin_client.post(
        url(ChannelPermission, "add"),
        {
            "channel_name": "bad room\n",
            "access": "allow_all",
            "rules-TOTAL_FORMS": "0",
            "rules-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["channel_name"]
    assert not ChannelPermission.objects.exists()


def test_session_changelist_query_count_does_not_grow_with_rows(
    admin_client: Any, rows: dict[type, Any], user: Any, gateway: Any
) -> None:
    """list_select_related: one query for all users and gateways, not one per row."""

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url(WebSocketSession, "changelist")).status_code == 200
        return len(captured)

    before = queries()
    WebSocketSession.objects.bulk_create(
        WebSocketSession(connection_id=f"more{i}=", user=user, api_gateway=gateway)
        for i in range(10)
    )
    assert queries() == before


def test_gateway_form_shows_every_editable_field() -> None:
    """A field added to ApiGateway later must not be silently left out of the fieldsets."""
    gateway_admin = admin.site._registry[ApiGateway]
    listed = {name for _, options in gateway_admin.fieldsets for name in options["fields"]}
    editable = {
        f.name for f in ApiGateway._meta.concrete_fields if f.editable and not f.primary_key
    }
    assert editable - listed == set()
