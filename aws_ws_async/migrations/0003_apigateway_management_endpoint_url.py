"""A gateway may name its own ``@connections`` endpoint (falls back to the settings template)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("aws_ws_async", "0002_provisioning_claim"),
    ]

    operations = [
        migrations.AddField(
            model_name="apigateway",
            name="management_endpoint_url",
            field=models.CharField(
                blank=True,
                default="",
                help_text=(
                    "This gateway's own @connections URL (custom domain, other region, "
                    "emulator); may use {api_id}, {region} and {stage}. Empty: the "
                    "management_endpoint_url setting."
                ),
                max_length=255,
            ),
        ),
    ]
