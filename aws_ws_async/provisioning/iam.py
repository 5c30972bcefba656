"""The least-privilege IAM policy one gateway needs, as a JSON-able dict.

Two audiences: the *provisioning* identity (admin, commands) needs ``apigateway:*`` verbs on
this API's ARNs only (plus ``POST /apis`` to create it, ``/domainnames`` for the custom domain
and Route 53 on the given hosted zone); the *sending* identity (web servers, workers) needs
nothing but ``execute-api:ManageConnections`` on this API's stage's ``@connections``.
"""

from __future__ import annotations

from typing import Any

API_VERBS = ["apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"]


def build_policy(
    *,
    region: str,
    account_id: str,
    api_id: str,
    stage_name: str,
    domain_name: str = "",
    hosted_zone_id: str = "",
) -> dict[str, Any]:
    """Policy document for one gateway. ``api_id=""`` (not created yet) widens to ``/apis/*``."""
    api = api_id or "*"
    apis = f"arn:aws:apigateway:{region}::/apis"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "CreateWebSocketApi",
            "Effect": "Allow",
            "Action": ["apigateway:POST"],
            "Resource": [apis],
        },
        {
            "Sid": "ManageThisApi",
            "Effect": "Allow",
            "Action": API_VERBS,
            "Resource": [f"{apis}/{api}", f"{apis}/{api}/*"],
        },
        {
            "Sid": "TagThisApi",
            "Effect": "Allow",
            "Action": ["apigateway:GET", "apigateway:POST", "apigateway:DELETE"],
            "Resource": [f"arn:aws:apigateway:{region}::/tags/*"],
        },
    ]
    if domain_name:
        domains = f"arn:aws:apigateway:{region}::/domainnames"
        statements.append(
            {
                "Sid": "ManageCustomDomain",
                "Effect": "Allow",
                "Action": API_VERBS,
                "Resource": [domains, f"{domains}/{domain_name}", f"{domains}/{domain_name}/*"],
            }
        )
    if domain_name and hosted_zone_id:
        zone = hosted_zone_id.rsplit("/", 1)[-1]
        statements.append(
            {
                "Sid": "AliasRecord",
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets"],
                "Resource": [f"arn:aws:route53:::hostedzone/{zone}"],
            }
        )
    connections = f"arn:aws:execute-api:{region}:{account_id}:{api}/{stage_name}"
    statements.append(
        {
            "Sid": "ManageConnections",
            "Effect": "Allow",
            "Action": ["execute-api:ManageConnections"],
            "Resource": [
                f"{connections}/POST/@connections/*",
                f"{connections}/GET/@connections/*",
                f"{connections}/DELETE/@connections/*",
            ],
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}
