from django.db import migrations

from ingest.store.schema import CREATE_LOGS, DROP_LOGS


class Migration(migrations.Migration):
    dependencies = [("ingest", "0001_initial")]

    operations = [migrations.RunSQL(CREATE_LOGS, DROP_LOGS)]
