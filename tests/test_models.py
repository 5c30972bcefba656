"""Model constraints, validators and the async twins of the database methods."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from aws_ws_async.models import (
    ApiGateway,
    ApiGatewayAdditionalRoute,
    ChannelAccess,
    ChannelPermission,
    ChannelPermissionRule,
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)
from aws_ws_async.models.gateways import host_is_allowed
from aws_ws_async.models.tokens import digest_token

User = get_user_model()


def new_user(email: str, **extra: Any) -> Any:
    return User._default_manager.create_user(email=email, password="pw-123456", **extra)


async def anew_user(email: str, **extra: Any) -> Any:
    from asgiref.sync import sync_to_async

    return await sync_to_async(new_user)(email, **extra)


# --- ApiGateway and routes ---------------------------------------------------------------------


@pytest.mark.django_db
def test_nonempty_api_id_is_unique_but_empty_ones_may_repeat() -> None:
    ApiGateway.objects.create(api_name="one")
    ApiGateway.objects.create(api_name="two")  # both api_id="" (not provisioned yet)
    ApiGateway.objects.create(api_name="three", api_id="abc123")
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiGateway.objects.create(api_name="four", api_id="abc123")
    assert ApiGateway.objects.filter(api_id="").count() == 2


@pytest.mark.django_db
def test_route_key_is_unique_per_gateway(gateway: ApiGateway) -> None:
    other = ApiGateway.objects.create(api_name="other")
    url = "https://backend.example.com/ws/x"
    ApiGatewayAdditionalRoute.objects.create(
        api_gateway=gateway, name="a", route_key="send", integration_url=url
    )
    ApiGatewayAdditionalRoute.objects.create(
        api_gateway=other, name="a", route_key="send", integration_url=url
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiGatewayAdditionalRoute.objects.create(
            api_gateway=gateway, name="b", route_key="send", integration_url=url
        )


@pytest.mark.django_db
def test_target_base_endpoint_gets_trailing_slash() -> None:
    gw = ApiGateway(api_name="slash", target_base_endpoint="https://backend.example.com/ws")
    gw.full_clean()
    assert gw.target_base_endpoint == "https://backend.example.com/ws/"
    saved = ApiGateway.objects.create(
        api_name="slash2", target_base_endpoint="https://b.example.com/x"
    )
    saved.refresh_from_db()
    assert saved.target_base_endpoint == "https://b.example.com/x/"
    assert saved.integration_uri("connect") == "https://b.example.com/x/connect"


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("api.example.com", ("*.example.com",), True),
        ("a.b.example.com", ("*.example.com",), True),
        ("example.com", ("*.example.com",), False),  # sub-domains only
        ("evilexample.com", ("*.example.com",), False),
        ("example.com.evil.net", ("*.example.com",), False),
        ("Backend.Example.com.", ("backend.example.com",), True),
        ("other.example.com", ("backend.example.com",), False),
        ("backend.example.com", (), False),
    ],
)
def test_host_is_allowed(host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert host_is_allowed(host, allowed) is expected


@pytest.mark.django_db
def test_integration_hosts_are_enforced_by_clean(settings: Any, gateway: ApiGateway) -> None:
    settings.AWS_WS_ASYNC = {"allowed_integration_hosts": ["*.example.com"]}
    ApiGateway(api_name="ok", target_base_endpoint="https://api.example.com/ws/").full_clean()
    with pytest.raises(ValidationError) as exc:
        ApiGateway(api_name="apex", target_base_endpoint="https://example.com/ws/").full_clean()
    assert "target_base_endpoint" in exc.value.message_dict
    route = ApiGatewayAdditionalRoute(
        api_gateway=gateway, name="r", route_key="r", integration_url="https://evil.net/r"
    )
    with pytest.raises(ValidationError) as exc:
        route.full_clean()
    assert "integration_url" in exc.value.message_dict
    route.integration_url = "https://svc.example.com/r"
    route.full_clean()


@pytest.mark.django_db
def test_custom_domain_needs_certificate() -> None:
    gw = ApiGateway(api_name="dom", domain_name="ws.example.com")
    with pytest.raises(ValidationError) as exc:
        gw.full_clean()
    assert "certificate_arn" in exc.value.message_dict
    gw.certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    gw.full_clean()


# --- full-match validators ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["room\n", "room ", "", "a" * 129, "röom", "room/1"])
@pytest.mark.django_db
def test_bad_channel_names_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError):
        ChannelPermission(channel_name=name).full_clean()


@pytest.mark.parametrize("name", ["news.sport", "app_name.sub-room", "a" * 128, "Room-1"])
@pytest.mark.django_db
def test_good_channel_names_including_dots(name: str) -> None:
    ChannelPermission(channel_name=name).full_clean()
    WebSocketSession(connection_id="abc=", channel_name=name).full_clean()


@pytest.mark.parametrize("cid", ["abc=\n", "a b", "", "a" * 129, "abc;drop"])
@pytest.mark.django_db
def test_bad_connection_ids_are_rejected(cid: str) -> None:
    with pytest.raises(ValidationError) as exc:
        WebSocketSession(connection_id=cid).full_clean()
    assert "connection_id" in exc.value.message_dict


@pytest.mark.django_db
def test_api_id_validator_allows_empty_only_as_unprovisioned() -> None:
    ApiGateway(api_name="x", api_id="").full_clean()
    ApiGateway(api_name="y", api_id="a1b2c3").full_clean()
    with pytest.raises(ValidationError):
        ApiGateway(api_name="z", api_id="ABC\n").full_clean()


# --- WebSocketSession --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_amark_disconnected_once() -> None:
    session = await WebSocketSession.objects.acreate(connection_id="c1=", channel_name="x")
    other = await WebSocketSession.objects.acreate(connection_id="c2=", channel_name="x")
    assert await session.amark_disconnected("logout") is True
    assert session.connected is False
    row = await WebSocketSession.objects.aget(pk=session.pk)
    assert (row.connected, row.disconnect_reason) == (False, "logout")
    assert row.disconnected_at is not None
    first_time = row.disconnected_at
    # Second call changes nothing and keeps the first timestamp and reason.
    assert await row.amark_disconnected("server") is False
    again = await WebSocketSession.objects.aget(pk=session.pk)
    assert (again.disconnected_at, again.disconnect_reason) == (first_time, "logout")
    assert (await WebSocketSession.objects.aget(pk=other.pk)).connected is True


@pytest.mark.django_db
def test_stale_selection(settings: Any) -> None:
    settings.AWS_WS_ASYNC = {"last_seen_interval_seconds": 60}
    now = timezone.now()

    def make(
        cid: str, connected_ago: timedelta, seen_ago: timedelta, connected: bool = True
    ) -> None:
        WebSocketSession.objects.create(
            connection_id=cid,
            connected=connected,
            connected_at=now - connected_ago,
            last_seen_at=now - seen_ago,
        )

    make("fresh=", timedelta(minutes=5), timedelta(seconds=5))
    make("old=", timedelta(hours=2, minutes=1), timedelta(seconds=5))  # past the 2 h cap
    make("idle=", timedelta(minutes=30), timedelta(minutes=12))  # idle 10 min + 1 min slack
    make("nearly=", timedelta(minutes=30), timedelta(minutes=10, seconds=30))  # inside the slack
    make("closed=", timedelta(hours=5), timedelta(hours=5), connected=False)
    stale = set(WebSocketSession.objects.stale(now=now).values_list("connection_id", flat=True))
    assert stale == {"old=", "idle="}


# --- WebSocketToken ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_token_is_single_use_and_stored_as_digest() -> None:
    user = await anew_user("tok@example.com")
    raw = await WebSocketToken.aissue(user, "sess-key-1", expiry_seconds=60, max_per_minute=5)
    assert raw is not None
    row = await WebSocketToken.objects.aget()
    assert row.token == digest_token(raw) != raw
    assert row.expires_at - row.created_at == timedelta(seconds=60)
    assert (await WebSocketToken.aconsume(raw, "sess-key-1")).pk == user.pk
    assert await WebSocketToken.aconsume(raw, "sess-key-1") is None  # spent
    row = await WebSocketToken.objects.aget()
    assert row.used
    assert row.used_at is not None


@pytest.mark.django_db(transaction=True)
async def test_token_refused_for_wrong_session_expiry_garbage_and_inactive_user() -> None:
    user = await anew_user("tok2@example.com")
    raw = await WebSocketToken.aissue(user, "key-A", expiry_seconds=60, max_per_minute=5)
    assert raw is not None
    assert await WebSocketToken.aconsume(raw, "key-B") is None
    assert await WebSocketToken.aconsume(raw, "") is None
    assert await WebSocketToken.aconsume(raw.upper(), "key-A") is None
    assert await WebSocketToken.aconsume(raw + "\n", "key-A") is None
    assert await WebSocketToken.aconsume(123, "key-A") is None  # type: ignore[arg-type]
    # Still unspent after all those refusals; now let it expire.
    await WebSocketToken.objects.aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    assert await WebSocketToken.aconsume(raw, "key-A") is None
    # An inactive user's token yields no user.
    raw2 = await WebSocketToken.aissue(user, "key-A", expiry_seconds=60, max_per_minute=5)
    await User._default_manager.filter(pk=user.pk).aupdate(is_active=False)
    assert await WebSocketToken.aconsume(raw2, "key-A") is None  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
async def test_token_survives_secret_key_rotation(settings: Any) -> None:
    user = await anew_user("rot@example.com")
    old_key = settings.SECRET_KEY
    raw = await WebSocketToken.aissue(user, "key-R", expiry_seconds=60, max_per_minute=5)
    raw_lost = await WebSocketToken.aissue(user, "key-R", expiry_seconds=60, max_per_minute=5)
    assert raw
    assert raw_lost
    settings.SECRET_KEY = "a-brand-new-secret-key-for-rotation-0123456789"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert (await WebSocketToken.aconsume(raw, "key-R")).pk == user.pk
    settings.SECRET_KEY_FALLBACKS = []
    assert await WebSocketToken.aconsume(raw_lost, "key-R") is None


@pytest.mark.django_db(transaction=True)
async def test_token_issue_rate_limit() -> None:
    user = await anew_user("rl@example.com")
    other = await anew_user("rl2@example.com")
    issued = [
        await WebSocketToken.aissue(user, "k", expiry_seconds=60, max_per_minute=2)
        for _ in range(3)
    ]
    assert issued[0]
    assert issued[1]
    assert issued[2] is None
    assert await WebSocketToken.objects.filter(user=user).acount() == 2  # refused row removed
    assert await WebSocketToken.aissue(other, "k", expiry_seconds=60, max_per_minute=2)
    # Tokens older than a minute no longer count.
    await WebSocketToken.objects.filter(user=user).aupdate(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    assert await WebSocketToken.aissue(user, "k", expiry_seconds=60, max_per_minute=2)


# --- ConnectionRateLimit -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_arecord_and_check_limits_ip_and_user() -> None:
    user = await anew_user("conn@example.com")
    window = timedelta(minutes=1)
    results = [
        (
            await ConnectionRateLimit.arecord_and_check(
                "192.0.2.1", None, max_attempts=2, window=window
            )
        )[0]
        for _ in range(3)
    ]
    assert results == [True, True, False]
    # Every attempt is recorded, refused ones too.
    assert await ConnectionRateLimit.objects.filter(ip_address="192.0.2.1").acount() == 3
    # Another IP is independent...
    allowed, attempt = await ConnectionRateLimit.arecord_and_check(
        "192.0.2.2", user, max_attempts=2, window=window
    )
    assert allowed
    assert attempt.user_id == user.pk
    # ...but the same user from new IPs is counted across them.
    assert (
        await ConnectionRateLimit.arecord_and_check(
            "192.0.2.3", user, max_attempts=2, window=window
        )
    )[0]
    assert not (
        await ConnectionRateLimit.arecord_and_check(
            "192.0.2.4", user, max_attempts=2, window=window
        )
    )[0]
    # Attempts outside the window do not count.
    await ConnectionRateLimit.objects.aupdate(attempt_time=timezone.now() - timedelta(minutes=5))
    assert (
        await ConnectionRateLimit.arecord_and_check(
            "192.0.2.1", user, max_attempts=2, window=window
        )
    )[0]


@pytest.mark.django_db(transaction=True)
async def test_arecord_and_check_without_ip_or_user_and_anonymous() -> None:
    allowed, attempt = await ConnectionRateLimit.arecord_and_check(
        None, AnonymousUser(), max_attempts=1, window=timedelta(minutes=1)
    )
    assert allowed
    assert attempt.user_id is None


# --- ChannelPermission -------------------------------------------------------------------------


def _perm(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


def _access_users() -> dict[str, Any]:
    users = {
        "anonymous": AnonymousUser(),
        "plain": new_user("plain@example.com"),
        "staff": new_user("staff@example.com", is_staff=True),
        "inactive_staff": new_user("gone@example.com", is_staff=True, is_active=False),
        "superuser": User._default_manager.create_superuser(
            email="root@example.com", password="pw"
        ),
        "viewer": new_user("viewer@example.com"),
        "editor": new_user("editor@example.com"),
        "deleter": new_user("deleter@example.com"),
    }
    users["viewer"].user_permissions.add(_perm("view_apigateway"))
    users["editor"].user_permissions.add(_perm("view_apigateway"), _perm("change_apigateway"))
    users["deleter"].user_permissions.add(_perm("delete_apigateway"))
    # Fresh instances so no permission cache is stale.
    return {
        k: (v if k == "anonymous" else User._default_manager.get(pk=v.pk)) for k, v in users.items()
    }


def _policies() -> dict[str, ChannelPermission]:
    policies = {
        access: ChannelPermission.objects.create(channel_name=f"ch.{access}", access=access)
        for access in ChannelAccess.values
    }
    perms = policies[ChannelAccess.PERMISSIONS]
    # Rule 1: view AND change; rule 2: delete; rule 3: empty (must never match anyone).
    both = ChannelPermissionRule.objects.create(channel_permission=perms, description="edit")
    both.permissions.add(_perm("view_apigateway"), _perm("change_apigateway"))
    ChannelPermissionRule.objects.create(
        channel_permission=perms, description="delete"
    ).permissions.add(_perm("delete_apigateway"))
    ChannelPermissionRule.objects.create(channel_permission=perms, description="empty")
    return policies


#: access level -> the users it admits.
EXPECTED = {
    "allow_all": {
        "anonymous",
        "plain",
        "staff",
        "inactive_staff",
        "superuser",
        "viewer",
        "editor",
        "deleter",
    },
    "staff_only": {"staff", "superuser"},
    "superuser_only": {"superuser"},
    "permissions": {"superuser", "editor", "deleter"},
}


@pytest.mark.django_db
def test_allows_matrix_sync() -> None:
    users = _access_users()
    policies = _policies()
    assert set(policies) == set(EXPECTED)  # every access level is exercised, none skipped
    for access, policy in policies.items():
        admitted = {name for name, user in users.items() if policy.allows(user)}
        assert admitted == EXPECTED[access], access


@pytest.mark.django_db(transaction=True)
async def test_aallows_matrix_async() -> None:
    from asgiref.sync import sync_to_async

    users = await sync_to_async(_access_users)()
    policies = await sync_to_async(_policies)()
    assert set(policies) == set(EXPECTED)
    for access, policy in policies.items():
        admitted = {name for name, user in users.items() if await policy.aallows(user)}
        assert admitted == EXPECTED[access], access
    assert await ChannelPermission.afor_channel("ch.permissions") == policies["permissions"]
    assert await ChannelPermission.afor_channel("ch.unlisted") is None


@pytest.mark.django_db(transaction=True)
async def test_aallows_only_empty_rule_denies_everyone_but_superuser() -> None:
    from asgiref.sync import sync_to_async

    policy = await ChannelPermission.objects.acreate(channel_name="locked", access="permissions")
    await ChannelPermissionRule.objects.acreate(channel_permission=policy)
    plain = await anew_user("p2@example.com")
    root = await sync_to_async(User._default_manager.create_superuser)(
        email="r2@example.com", password="pw"
    )
    assert await policy.aallows(plain) is False
    assert await policy.aallows(root) is True


# --- WebSocketSession: the sending twins' shapes ------------------------------------------------


TWINS = [
    ("asend_message", "send_message"),
    ("asend_to_user", "send_to_user"),
    ("adisconnect", "disconnect"),
    ("amark_disconnected", "mark_disconnected"),
]


@pytest.mark.parametrize(("async_name", "sync_name"), TWINS)
def test_queryset_twins_share_one_signature(async_name: str, sync_name: str) -> None:
    import inspect

    from aws_ws_async.models import WebSocketSessionQuerySet

    a = inspect.signature(getattr(WebSocketSessionQuerySet, async_name))
    s = inspect.signature(getattr(WebSocketSessionQuerySet, sync_name))
    assert a == s
    if async_name != "amark_disconnected":
        assert {"concurrency", "db_chunk_size", "timeout", "progress"} <= set(s.parameters)
    # The manager is built with from_queryset: the very same methods, not hand-written proxies.
    manager = type(WebSocketSession.objects)
    assert getattr(manager, sync_name).__wrapped__ is getattr(WebSocketSessionQuerySet, sync_name)


@pytest.mark.parametrize(
    ("async_name", "sync_name"),
    [(a, s) for a, s in TWINS if a != "asend_to_user"],
)
def test_session_twins_share_one_signature(async_name: str, sync_name: str) -> None:
    import inspect

    a = inspect.signature(getattr(WebSocketSession, async_name))
    s = inspect.signature(getattr(WebSocketSession, sync_name))
    assert a == s


def test_manager_offers_every_selector_and_sender() -> None:
    for name in ("connected", "for_channel", "for_user", "stale", "send_message", "adisconnect"):
        assert callable(getattr(WebSocketSession.objects, name))
    assert WebSocketSession.objects.for_channel("x").query.where  # a real queryset
