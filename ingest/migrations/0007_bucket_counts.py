from django.db import migrations

from ingest.store.bucket_counts import CREATE_BUCKET_COUNTS, DROP_BUCKET_COUNTS


class Migration(migrations.Migration):
    dependencies = [("ingest", "0006_merge_20261126_1129")]

    operations = [migrations.RunSQL(CREATE_BUCKET_COUNTS, DROP_BUCKET_COUNTS)]
