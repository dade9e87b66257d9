"""Fraud flags get a public id for URLs and the API (existing flags are given one each)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import migrations, models


def fill_public_ids(apps: Any, schema_editor: Any) -> None:
    flags = apps.get_model("loyalty", "FraudFlag")
    for flag in flags.objects.filter(public_id__isnull=True).only("pk").iterator():
        flags.objects.filter(pk=flag.pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="fraudflag", name="public_id", field=models.UUIDField(editable=False, null=True)
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="fraudflag",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
