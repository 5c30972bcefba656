"""Admin actions through the real admin (test client) and the provisioning commands."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from aws_ws_async.models import ApiGateway, ProvisioningStatus
from tests.fixtures_provisioning import SECRET, LocalApiGateway

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/aws_ws_async/apigateway/"


@pytest.fixture
def staff_client(admin_client: Client) -> Client:
    """pytest-django's logged-in superuser: here of the custom user model (email, no username)."""
    assert not hasattr(get_user_model(), "username")
    return admin_client


def run_action(client: Client, action: str, *pks: int) -> list[tuple[str, str]]:
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [str(pk) for pk in pks]}, follow=True
    )
    assert response.status_code == 200
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def test_actions_are_offered(staff_client: Client, new_gateway: ApiGateway) -> None:
    response = staff_client.get(CHANGELIST)
    assert response.status_code == 200
    names = ("create_api_gateway", "create_custom_domain", "sync_from_aws", "sync_to_aws")
    for name in (*names, "detect_drift", "update_integrations"):
        assert f'value="{name}"' in response.content.decode()


def test_create_action_provisions_and_logs_without_username(
    provisioning_settings: Any, new_gateway: ApiGateway, staff_client: Client
) -> None:
    messages = run_action(staff_client, "create_api_gateway", new_gateway.pk)
    gateway = ApiGateway.objects.get(pk=new_gateway.pk)
    assert gateway.provisioning_status == ProvisioningStatus.DEPLOYED
    assert messages[0][0] == "success"
    assert "created and deployed" in messages[0][1]
    assert gateway.websocket_url in messages[0][1]
    entry = LogEntry.objects.get(object_id=str(gateway.pk))
    assert "Create API" in entry.get_change_message()
    assert entry.user.get_username() == "admin@example.com"

    again = run_action(staff_client, "create_api_gateway", new_gateway.pk)
    assert again == [("info", f"{gateway}: already created ({gateway.api_id}).")]


def test_create_action_reports_aws_errors(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    staff_client: Client,
    local_apigw: LocalApiGateway,
) -> None:
    local_apigw.fail("POST", "/v2/apis", status=400, code="BadRequestException")
    messages = run_action(staff_client, "create_api_gateway", new_gateway.pk)
    assert messages[0][0] == "error"
    assert "Create API failed" in messages[0][1]
    assert "BadRequestException" in messages[0][1]
    assert "BadRequestException" in ApiGateway.objects.get(pk=new_gateway.pk).last_error


def test_sync_and_domain_actions(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    staff_client: Client,
    moto_apigw: Any,
) -> None:
    new_gateway.create_gateway()
    moto_apigw.update_api(ApiId=new_gateway.api_id, Description="from the console")

    pulled = run_action(staff_client, "sync_from_aws", new_gateway.pk)
    assert pulled[0][0] == "success"
    assert "took 1 change(s)" in pulled[0][1]
    assert ApiGateway.objects.get(pk=new_gateway.pk).api_description == "from the console"

    ApiGateway.objects.filter(pk=new_gateway.pk).update(api_description="from django")
    pushed = run_action(staff_client, "sync_to_aws", new_gateway.pk)
    assert "pushed 1 change(s)" in pushed[0][1]
    assert moto_apigw.get_api(ApiId=new_gateway.api_id)["Description"] == "from django"
    assert run_action(staff_client, "sync_to_aws", new_gateway.pk)[0][1].endswith(
        "already in sync with AWS"
    )

    assert run_action(staff_client, "create_custom_domain", new_gateway.pk) == [
        ("warning", f"{new_gateway}: no domain name set.")
    ]
    ApiGateway.objects.filter(pk=new_gateway.pk).update(
        domain_name="ws.example.com",
        certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc",
    )
    domain = run_action(staff_client, "create_custom_domain", new_gateway.pk)
    assert domain[0][0] == "success"
    assert ApiGateway.objects.get(pk=new_gateway.pk).custom_domain_created


def test_drift_and_update_integrations_actions(
    provisioning_settings: Any, new_gateway: ApiGateway, staff_client: Client, moto_apigw: Any
) -> None:
    new_gateway.create_gateway()
    assert run_action(staff_client, "detect_drift", new_gateway.pk) == [
        ("success", f"{new_gateway}: already in sync with AWS")
    ]
    moto_apigw.update_api(ApiId=new_gateway.api_id, Name="Console name")
    drift = run_action(staff_client, "detect_drift", new_gateway.pk)
    assert "1 difference(s) from AWS: api: api_name is 'Console name' in AWS" in drift[0][1]
    assert moto_apigw.get_api(ApiId=new_gateway.api_id)["Name"] == "Console name"

    new_secret = "rotated-secret-value-0123456789abcdefgh"
    provisioning_settings.AWS_WS_ASYNC = {
        **provisioning_settings.AWS_WS_ASYNC,
        "gateway_secret": [new_secret, SECRET],
    }
    rotated = run_action(staff_client, "update_integrations", new_gateway.pk)
    assert "updated 4 integration(s)" in rotated[0][1]
    for item in moto_apigw.get_integrations(ApiId=new_gateway.api_id)["Items"]:
        header = item["RequestParameters"]["integration.request.header.X-Ws-Gateway-Secret"]
        assert header == f"'{new_secret}'"
    assert moto_apigw.get_api(ApiId=new_gateway.api_id)["Name"] == "Console name"  # narrowed


def test_sync_action_on_uncreated_gateway_is_a_clear_error(
    provisioning_settings: Any, new_gateway: ApiGateway, staff_client: Client
) -> None:
    messages = run_action(staff_client, "sync_to_aws", new_gateway.pk)
    assert messages[0][0] == "error"
    assert "create it first" in messages[0][1]


def test_staff_without_change_permission_cannot_run_actions(
    provisioning_settings: Any, new_gateway: ApiGateway, local_apigw: LocalApiGateway
) -> None:
    from django.contrib.auth.models import Permission

    user = get_user_model()._default_manager.create_user(
        email="viewer@example.com", password="pw-view-123", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_apigateway"))
    client = Client()
    client.force_login(user)
    client.post(CHANGELIST, {"action": "create_api_gateway", "_selected_action": [new_gateway.pk]})
    assert local_apigw.requests == []
    assert not ApiGateway.objects.get(pk=new_gateway.pk).api_created


# --- commands ---------------------------------------------------------------------------------


def call(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_commands_and_sync_command(
    provisioning_settings: Any, new_gateway: ApiGateway, moto_apigw: Any
) -> None:
    out = call("createApiGateway", "--pk", str(new_gateway.pk))
    gateway = ApiGateway.objects.get(pk=new_gateway.pk)
    assert "created API" in out
    assert gateway.is_deployed
    assert "already created" in call("createApiGateway", "--pk", str(gateway.pk))

    moto_apigw.update_api(ApiId=gateway.api_id, Name="Console name")
    drift = call("syncApiGateway", "--pk", str(gateway.pk), "--drift")
    assert "api_name is 'Console name' in AWS, 'Chat API' locally" in drift
    dry = call("syncApiGateway", "--pk", str(gateway.pk), "--to-aws", "--dry-run")
    assert "would push" in dry
    assert moto_apigw.get_api(ApiId=gateway.api_id)["Name"] == "Console name"
    call("syncApiGateway", "--pk", str(gateway.pk), "--to-aws")
    assert moto_apigw.get_api(ApiId=gateway.api_id)["Name"] == "Chat API"
    assert "in sync with AWS" in call("syncApiGateway", "--pk", str(gateway.pk), "--from-aws")

    ApiGateway.objects.filter(pk=gateway.pk).update(
        domain_name="ws.example.com",
        certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc",
    )
    out = call("createCustomDomain", "--pk", str(gateway.pk))
    assert "wss://ws.example.com is mapped" in out
    assert "no hosted_zone_id" in out


def test_commands_fail_clearly(provisioning_settings: Any, new_gateway: ApiGateway) -> None:
    with pytest.raises(CommandError, match="No ApiGateway with pk=999"):
        call("createApiGateway", "--pk", "999")
    with pytest.raises(CommandError, match="no domain_name"):
        call("createCustomDomain", "--pk", str(new_gateway.pk))
    with pytest.raises(CommandError, match="create it first"):
        call("syncApiGateway", "--pk", str(new_gateway.pk), "--to-aws")
    with pytest.raises(CommandError, match="No created ApiGateway"):
        call("updateApiGatewayIntegrations", "--pk", str(new_gateway.pk))


def test_update_integrations_command_rotates(
    provisioning_settings: Any, new_gateway: ApiGateway, moto_apigw: Any
) -> None:
    new_gateway.create_gateway()
    new_secret = "rotated-secret-value-0123456789abcdefgh"
    provisioning_settings.AWS_WS_ASYNC = {
        **provisioning_settings.AWS_WS_ASYNC,
        "gateway_secret": [new_secret, SECRET],
    }
    dry = call("updateApiGatewayIntegrations", "--dry-run")
    assert "[1/1] Chat API" in dry
    assert dry.count("would update") == 4
    assert new_secret not in dry
    out = call("updateApiGatewayIntegrations", "--pk", str(new_gateway.pk))
    assert out.count("  updated") == 4
    assert "redeployed" in out
    for item in moto_apigw.get_integrations(ApiId=new_gateway.api_id)["Items"]:
        header = item["RequestParameters"]["integration.request.header.X-Ws-Gateway-Secret"]
        assert header == f"'{new_secret}'"
    assert "up to date" in call("updateApiGatewayIntegrations")


def test_update_integrations_command_lists_failures(
    provisioning_settings: Any, new_gateway: ApiGateway, local_apigw: LocalApiGateway
) -> None:
    new_gateway.create_gateway()
    provisioning_settings.AWS_WS_ASYNC = {
        **provisioning_settings.AWS_WS_ASYNC,
        "gateway_secret": ["another-secret-value-0123456789abcdefgh"],
    }
    local_apigw.fail("PATCH", r"/v2/apis/[^/]+/integrations/[^/]+", times=10)
    with pytest.raises(CommandError, match="1 gateway\\(s\\) failed"):
        call("updateApiGatewayIntegrations")


def test_print_iam_policy(
    provisioning_settings: Any, new_gateway: ApiGateway, moto: str, monkeypatch: Any
) -> None:
    new_gateway.create_gateway()
    policy = json.loads(call("printIamPolicy", "--pk", str(new_gateway.pk), "--account-id", "42"))
    resources = [r for s in policy["Statement"] for r in s["Resource"]]
    assert f"arn:aws:apigateway:us-east-1::/apis/{new_gateway.api_id}" in resources
    assert (
        f"arn:aws:execute-api:us-east-1:42:{new_gateway.api_id}/production/POST/@connections/*"
        in resources
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto)
    looked_up = json.loads(call("printIamPolicy", "--pk", str(new_gateway.pk), "--lookup-account"))
    connections = next(s for s in looked_up["Statement"] if s["Sid"] == "ManageConnections")
    assert ":123456789012:" in connections["Resource"][0]  # moto's default account
    anonymous = json.loads(call("printIamPolicy", "--pk", str(new_gateway.pk)))
    connections = next(s for s in anonymous["Statement"] if s["Sid"] == "ManageConnections")
    assert ":*:" in connections["Resource"][0]


def test_change_form_save_pushes_gateway_and_inline_routes_after_commit(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    staff_client: Client,
    moto_apigw: Any,
    local_apigw: LocalApiGateway,
) -> None:
    new_gateway.create_gateway()
    gateway = ApiGateway.objects.get(pk=new_gateway.pk)
    route = gateway.additional_routes.get()
    deployments = len(local_apigw.deployments[gateway.api_id])
    data = {
        "api_name": gateway.api_name,
        "api_description": "edited in the admin",
        "default_channel_name": "",
        "target_base_endpoint": gateway.target_base_endpoint,
        "stage_name": gateway.stage_name,
        "stage_description": gateway.stage_description,
        "domain_name": "",
        "certificate_arn": "",
        "hosted_zone_id": "",
        "api_key_selection_expression": gateway.api_key_selection_expression,
        "route_selection_expression": gateway.route_selection_expression,
        "route_key": gateway.route_key,
        "tags": json.dumps(gateway.tags),
        "additional_routes-TOTAL_FORMS": "2",
        "additional_routes-INITIAL_FORMS": "1",
        "additional_routes-MIN_NUM_FORMS": "0",
        "additional_routes-MAX_NUM_FORMS": "1000",
        "additional_routes-0-id": str(route.pk),
        "additional_routes-0-api_gateway": str(gateway.pk),
        "additional_routes-0-name": route.name,
        "additional_routes-0-route_key": route.route_key,
        "additional_routes-0-integration_url": route.integration_url,
        "additional_routes-1-api_gateway": str(gateway.pk),
        "additional_routes-1-name": "Typing",
        "additional_routes-1-route_key": "typing",
        "additional_routes-1-integration_url": "https://backend.example.com/ws/typing",
        "_save": "Save",
    }
    response = staff_client.post(f"{CHANGELIST}{gateway.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    assert moto_apigw.get_api(ApiId=gateway.api_id)["Description"] == "edited in the admin"
    remote_keys = {r["RouteKey"] for r in moto_apigw.get_routes(ApiId=gateway.api_id)["Items"]}
    assert "typing" in remote_keys
    assert len(local_apigw.deployments[gateway.api_id]) == deployments + 1  # one merged push
