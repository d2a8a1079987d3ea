from django.db import migrations

from ingest.store.dedup import CREATE_SQL, DROP_SQL


class Migration(migrations.Migration):
    dependencies = [("ingest", "0002_logs_table")]

    operations = [migrations.RunSQL(CREATE_SQL, DROP_SQL)]
