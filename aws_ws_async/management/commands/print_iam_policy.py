"""``manage.py print_iam_policy --pk N [--account-id ID | --lookup-account]``: least privilege."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async import aws, sync
from aws_ws_async.exceptions import AwsWsAsyncError
from aws_ws_async.management.commands._provisioning import get_gateway
from aws_ws_async.provisioning.iam import build_policy

#: Seconds ``--lookup-account`` waits for STS before giving up.
STS_TIMEOUT = 30.0


async def _caller_account() -> str:
    async with aws.make_session().client("sts", config=aws.client_config()) as sts:
        identity = await sts.get_caller_identity()
    return str(identity["Account"])


class Command(BaseCommand):
    help = "Print the least-privilege IAM policy JSON one ApiGateway needs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pk", type=int, required=True, help="Primary key of the ApiGateway.")
        parser.add_argument("--account-id", help="AWS account id for the execute-api ARNs.")
        parser.add_argument(
            "--lookup-account",
            action="store_true",
            help="Ask STS (GetCallerIdentity) for the account id of the configured credentials.",
        )
        parser.add_argument("--region", help="Region (default: the configured one).")

    def handle(self, *args: Any, **options: Any) -> None:
        gateway = get_gateway(options["pk"])
        try:
            region = options["region"] or aws.resolve_region()
        except AwsWsAsyncError as exc:
            raise CommandError(str(exc)) from exc
        account = options["account_id"] or ""
        if not account and options["lookup_account"]:
            try:
                # No ORM and no row to record: a plain bridge call with a deadline.
                account = sync.run(_caller_account, timeout=STS_TIMEOUT)
            except Exception as exc:
                raise CommandError(f"STS GetCallerIdentity failed: {exc}") from exc
        if not account:
            account = "*"
            self.stderr.write("Account id unknown: using '*' (pass --account-id to narrow it).")
        if not gateway.api_id:
            self.stderr.write("The API is not created yet: its ARNs use '*' until it is.")
        policy = build_policy(
            region=region,
            account_id=account,
            api_id=gateway.api_id,
            stage_name=gateway.stage_name,
            domain_name=gateway.domain_name,
            hosted_zone_id=gateway.hosted_zone_id,
        )
        self.stdout.write(json.dumps(policy, indent=2))
