from django.db import migrations

from ingest.store.day_counts import CREATE_DAY_COUNTS, DROP_DAY_COUNTS

# The ledger is append-only in commit order, so a BRIN on committed_at finds the prunable
# head of it (ingest/retention/ledger.py) for almost no insert cost.
LEDGER_BRIN = "CREATE INDEX IF NOT EXISTS log_batches_committed_brin ON log_batches USING brin (committed_at);"
DROP_LEDGER_BRIN = "DROP INDEX IF EXISTS log_batches_committed_brin;"


class Migration(migrations.Migration):
    dependencies = [("ingest", "0003_retention")]

    operations = [
        migrations.RunSQL(CREATE_DAY_COUNTS, DROP_DAY_COUNTS),
        migrations.RunSQL(LEDGER_BRIN, DROP_LEDGER_BRIN),
    ]
