# The messaging area's tables. Areas own one migration each in a fixed chain, so parallel work never
# produces two leaves; an area adds operations to its own file while it is being built.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("contact_center", "0004_ivr")]

    operations: list[migrations.operations.base.Operation] = []
