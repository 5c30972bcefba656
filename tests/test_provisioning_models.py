"""Model hooks: saves and route edits are pushed after commit, never inside a transaction."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from aws_ws_async.exceptions import CalledInsideTransaction
from aws_ws_async.models import ApiGateway, ApiGatewayAdditionalRoute
from tests.fixtures_provisioning import LocalApiGateway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deployed(provisioning_settings: Any, new_gateway: ApiGateway) -> ApiGateway:
    new_gateway.create_gateway()
    return ApiGateway.objects.get(pk=new_gateway.pk)


def route_keys(client: Any, api_id: str) -> dict[str, dict[str, Any]]:
    return {r["RouteKey"]: r for r in client.get_routes(ApiId=api_id)["Items"]}


def test_sync_twin_creates_and_returns_steps(
    provisioning_settings: Any, new_gateway: ApiGateway
) -> None:
    steps = new_gateway.create_gateway()
    assert steps[0].startswith("created API ")
    assert ApiGateway.objects.get(pk=new_gateway.pk).is_deployed


def test_save_pushes_changed_fields_after_commit(deployed: ApiGateway, moto_apigw: Any) -> None:
    deployed.api_description = "pushed on save"
    with transaction.atomic():
        deployed.save()
        # inside the transaction nothing has reached AWS yet
        assert moto_apigw.get_api(ApiId=deployed.api_id)["Description"] == "chat"
    assert moto_apigw.get_api(ApiId=deployed.api_id)["Description"] == "pushed on save"


def test_rolled_back_save_pushes_nothing(deployed: ApiGateway, moto_apigw: Any) -> None:
    deployed.api_description = "never committed"

    def save_then_fail() -> None:
        with transaction.atomic():
            deployed.save()
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert moto_apigw.get_api(ApiId=deployed.api_id)["Description"] == "chat"


def test_push_can_be_switched_off(
    deployed: ApiGateway, moto_apigw: Any, provisioning_settings: Any
) -> None:
    deployed.api_description = "not pushed"
    deployed.save(push_to_aws=False)
    assert moto_apigw.get_api(ApiId=deployed.api_id)["Description"] == "chat"
    provisioning_settings.AWS_WS_ASYNC = {
        **provisioning_settings.AWS_WS_ASYNC,
        "push_changes_to_aws": False,
    }
    deployed.api_description = "still not pushed"
    deployed.save()
    assert moto_apigw.get_api(ApiId=deployed.api_id)["Description"] == "chat"


def test_unsynced_field_change_calls_no_aws(
    deployed: ApiGateway, local_apigw: LocalApiGateway
) -> None:
    before = len(local_apigw.requests)
    deployed.default_channel_name = "lobby"
    deployed.save()
    assert len(local_apigw.requests) == before


def test_route_create_update_delete_follow_the_row(
    deployed: ApiGateway, moto_apigw: Any, local_apigw: LocalApiGateway
) -> None:
    api_id = deployed.api_id
    with transaction.atomic():
        route = ApiGatewayAdditionalRoute(
            api_gateway=deployed,
            name="Typing",
            route_key="typing",
            integration_url="https://backend.example.com/ws/typing",
        )
        route.save()
        assert "typing" not in route_keys(moto_apigw, api_id)  # not inside the transaction
    remote = route_keys(moto_apigw, api_id)["typing"]
    route.refresh_from_db()
    assert route.deployed
    assert route.route_id == remote["RouteId"]

    route.integration_url = "https://backend.example.com/ws/typing2"
    route.save()
    integration = moto_apigw.get_integration(ApiId=api_id, IntegrationId=route.integration_id)
    assert integration["IntegrationUri"] == "https://backend.example.com/ws/typing2"

    deployments = len(local_apigw.deployments[api_id])
    route.delete()
    assert "typing" not in route_keys(moto_apigw, api_id)
    assert len(local_apigw.deployments[api_id]) == deployments + 1


def test_route_rename_replaces_the_remote_route(deployed: ApiGateway, moto_apigw: Any) -> None:
    route = deployed.additional_routes.get(route_key="sendmessage")
    route.route_key = "send"
    route.save()
    keys = set(route_keys(moto_apigw, deployed.api_id))
    assert "send" in keys
    assert "sendmessage" not in keys


def test_route_methods(deployed: ApiGateway, moto_apigw: Any) -> None:
    route = ApiGatewayAdditionalRoute(
        api_gateway=deployed,
        name="Ping",
        route_key="ping",
        integration_url="https://backend.example.com/ws/ping",
    )
    route.save(push_to_aws=False)
    assert "ping" not in route_keys(moto_apigw, deployed.api_id)
    diffs = route.create_route()
    assert {d.route_key for d in diffs} == {"ping"}
    assert "ping" in route_keys(moto_apigw, deployed.api_id)
    route.delete_route()
    assert "ping" not in route_keys(moto_apigw, deployed.api_id)
    assert not ApiGatewayAdditionalRoute.objects.filter(pk=route.pk).exists()


def test_sync_twin_inside_a_transaction_is_refused(deployed: ApiGateway) -> None:
    with transaction.atomic(), pytest.raises(CalledInsideTransaction, match="after the"):
        deployed.sync_to_aws()


def test_failed_push_after_commit_keeps_the_save_and_records_the_error(
    deployed: ApiGateway, local_apigw: LocalApiGateway
) -> None:
    local_apigw.fail("PATCH", r"/v2/apis/[^/]+", status=400, code="BadRequestException")
    deployed.api_description = "will fail to push"
    deployed.save()  # does not raise
    fresh = ApiGateway.objects.get(pk=deployed.pk)
    assert fresh.api_description == "will fail to push"
    assert "BadRequestException" in fresh.last_error
    assert fresh.provisioning_claim == ""
    # drift shows what is still to push, and a retry clears the error
    assert [d.field for d in fresh.detect_drift()] == ["api_description"]
    fresh.sync_to_aws()
    assert ApiGateway.objects.get(pk=deployed.pk).last_error == ""


def test_saves_in_one_transaction_make_one_push(
    deployed: ApiGateway, moto_apigw: Any, local_apigw: LocalApiGateway
) -> None:
    api_id = deployed.api_id
    deployments = len(local_apigw.deployments[api_id])
    reads = len(local_apigw.calls("GET", f"/v2/apis/{api_id}"))
    with transaction.atomic():
        deployed.api_description = "one push"
        deployed.save()
        route = deployed.additional_routes.get(route_key="sendmessage")
        route.integration_url = "https://backend.example.com/ws/send2"
        route.save()
        ApiGatewayAdditionalRoute(
            api_gateway=deployed,
            name="Other",
            route_key="other",
            integration_url="https://backend.example.com/ws/other",
        ).save()
    assert len(local_apigw.deployments[api_id]) == deployments + 1
    assert len(local_apigw.calls("GET", f"/v2/apis/{api_id}")) == reads + 1
    assert moto_apigw.get_api(ApiId=api_id)["Description"] == "one push"
    remote = route_keys(moto_apigw, api_id)
    assert "other" in remote
    send = remote["sendmessage"]["Target"].split("/")[1]
    assert moto_apigw.get_integration(ApiId=api_id, IntegrationId=send)["IntegrationUri"] == (
        "https://backend.example.com/ws/send2"
    )


def test_unsaved_edits_on_the_instance_are_what_is_pushed(
    deployed: ApiGateway, moto_apigw: Any
) -> None:
    deployed.api_description = "edited in memory"
    deployed.sync_to_aws()
    assert moto_apigw.get_api(ApiId=deployed.api_id)["Description"] == "edited in memory"


def test_pulled_values_are_not_pushed_back(
    deployed: ApiGateway, moto_apigw: Any, local_apigw: LocalApiGateway
) -> None:
    moto_apigw.update_api(ApiId=deployed.api_id, Description="from AWS")
    deployed.sync_from_aws()
    before = len(local_apigw.requests)
    deployed.save()
    assert len(local_apigw.requests) == before
    assert ApiGateway.objects.get(pk=deployed.pk).api_description == "from AWS"


def test_disallowed_integration_host_is_refused_before_any_aws_call(
    provisioning_settings: Any, new_gateway: ApiGateway, local_apigw: LocalApiGateway
) -> None:
    from aws_ws_async.exceptions import ApiGatewaySyncError

    provisioning_settings.AWS_WS_ASYNC = {
        **provisioning_settings.AWS_WS_ASYNC,
        "allowed_integration_hosts": ["backend.example.com"],
    }
    ApiGatewayAdditionalRoute(
        api_gateway=new_gateway,
        name="Evil",
        route_key="evil",
        integration_url="https://attacker.example.net/steal",
    ).save(push_to_aws=False)
    with pytest.raises(ApiGatewaySyncError, match=r"attacker\.example\.net"):
        new_gateway.create_gateway()
    assert local_apigw.requests == []
    assert "allowed_integration_hosts" in ApiGateway.objects.get(pk=new_gateway.pk).last_error


def test_tags_that_aws_cannot_take_are_a_validation_error(db: None) -> None:
    from django.core.exceptions import ValidationError

    for tags in (["a"], {"aws:x": "1"}, {"k": {"nested": 1}}, {"k" * 129: "v"}):
        gateway = ApiGateway(api_name="T", tags=tags)
        with pytest.raises(ValidationError) as excinfo:
            gateway.full_clean()
        assert "tags" in excinfo.value.message_dict
    ApiGateway(api_name="T", tags={"team": "web", "n": 3}).full_clean()


def test_drift_reports_a_deleted_api(deployed: ApiGateway, moto_apigw: Any) -> None:
    moto_apigw.delete_api(ApiId=deployed.api_id)
    drift = deployed.detect_drift()
    assert [(d.resource, d.field, d.local, d.remote) for d in drift] == [
        ("api", "exists", True, False)
    ]


def test_concurrent_sync_runs_on_separate_connections(
    provisioning_settings: Any, new_gateway: ApiGateway, local_apigw: LocalApiGateway
) -> None:
    """Two processes' worth of runs: separate threads and database connections."""
    import threading

    from aws_ws_async.exceptions import ProvisioningInProgress

    hold = local_apigw.hold("POST", "/v2/apis")
    results: list[object] = []

    def first() -> None:
        try:
            results.append(ApiGateway.objects.get(pk=new_gateway.pk).create_gateway())
        except Exception as exc:
            results.append(exc)
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert hold.entered.wait(10)
        with pytest.raises(ProvisioningInProgress):
            ApiGateway.objects.get(pk=new_gateway.pk).create_gateway()
    finally:
        hold.release.set()
        thread.join(30)
    assert isinstance(results[0], list)
    gateway = ApiGateway.objects.get(pk=new_gateway.pk)
    assert gateway.is_deployed
    assert len(local_apigw.calls("POST", "/v2/apis")) == 1


def _tenant_gateways() -> tuple[ApiGateway, ApiGateway]:
    """The same pk in two databases (two tenants), neither in AWS yet."""
    values = {
        "pk": 77,
        "stage_name": "production",
        "target_base_endpoint": "https://backend.example.com/ws/",
    }
    mine = ApiGateway.objects.using("other").create(api_name="Tenant B", **values)
    theirs = ApiGateway.objects.create(api_name="Tenant A", **values)
    ApiGatewayAdditionalRoute.objects.using("other").create(
        api_gateway=mine,
        name="Send",
        route_key="sendmessage",
        integration_url="https://backend.example.com/ws/sendmessage",
    )
    return mine, theirs


@pytest.mark.django_db(transaction=True, databases={"default", "other"})
def test_provisioning_claims_and_records_on_the_rows_own_database(
    provisioning_settings: Any, moto_apigw: Any
) -> None:
    mine, _theirs = _tenant_gateways()
    mine.create_gateway()

    recorded = ApiGateway.objects.using("other").get(pk=77)
    assert recorded.is_deployed
    assert recorded.provisioning_claim == ""
    route = ApiGatewayAdditionalRoute.objects.using("other").get(route_key="sendmessage")
    assert route.deployed
    assert route.route_id
    untouched = ApiGateway.objects.get(pk=77)
    assert (untouched.api_id, untouched.provisioning_status) == ("", "pending")
    names = {api["Name"] for api in moto_apigw.get_apis()["Items"]}
    assert names == {"Tenant B"}

    # A save on the other database pushes after *that* database's commit.
    recorded.api_description = "tenant B's description"
    with transaction.atomic(using="other"):
        recorded.save()
        assert moto_apigw.get_api(ApiId=recorded.api_id).get("Description", "") == ""
    assert moto_apigw.get_api(ApiId=recorded.api_id)["Description"] == "tenant B's description"

    # Pull writes there too.
    moto_apigw.update_api(ApiId=recorded.api_id, Description="edited in AWS")
    recorded.pull_from_aws()
    assert ApiGateway.objects.using("other").get(pk=77).api_description == "edited in AWS"
    assert ApiGateway.objects.get(pk=77).api_description == ""
