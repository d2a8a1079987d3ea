"""Existing day partitions get the `line` statistics target new days are created with
(ingest/store/schema.py LINE_STATISTICS), and their histograms are rebuilt to it."""

from django.db import migrations

from ingest.store.schema import LINE_STATISTICS


class Migration(migrations.Migration):
    dependencies = [("ingest", "0007_bucket_counts")]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE logs ALTER COLUMN line SET STATISTICS {LINE_STATISTICS}; ANALYZE logs (line);",
            "ALTER TABLE logs ALTER COLUMN line SET STATISTICS -1;",
        )
    ]
