"""Log rows for tests, committed through the real write path (normalise, containers, COPY,
ledger) with any timestamp — the pipeline's age limit is lifted so back-dated days stay."""

import tempfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from django.db import connection
from psycopg import sql

from ingest.normalize import Limits, normalize_batch
from ingest.pipeline import Pipeline
from ingest.record import Record
from ingest.store.partitions import day_tables
from ingest.store.spool import Spool
from ingest.store.writer import BatchWriter, conninfo_from_settings

TEN_YEARS_NS = 3650 * 86400 * 10**9


def day_ns(day: date, seconds: float = 43200) -> int:
    """Unix ns of `seconds` after the start of `day` (UTC), noon by default."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return int((start + timedelta(seconds=seconds)).timestamp()) * 10**9


class RowWriter:
    """A BatchWriter driven synchronously from the test (no thread, no receivers)."""

    def __init__(self, name: str = "test-rows"):
        self._dir = tempfile.TemporaryDirectory(prefix="logsite-rows-")
        self.pipeline = Pipeline(queue_limit=10**7, batch_lines=5000, batch_wait_s=0.01)
        self.limits = Limits(max_line_bytes=256 * 1024, max_ts_age_ns=TEN_YEARS_NS)
        self.writer = BatchWriter(
            self.pipeline, conninfo_from_settings(), Spool(Path(self._dir.name), name), self.limits, name
        )

    def write(self, records: list[Record]) -> None:
        for i in range(0, len(records), 5000):
            chunk = records[i : i + 5000]
            before = self.pipeline.counters.committed
            self.writer.consume_batch(normalize_batch(chunk, self.limits), 0, len(chunk))
            if self.pipeline.counters.committed - before != len(chunk):
                raise AssertionError(f"the writer did not commit a test batch: {self.pipeline.counters}")

    def close(self) -> None:
        if self.writer._conn is not None:
            self.writer._conn.close()
        self._dir.cleanup()


def drop_all_days() -> None:
    """Starts a test with no day partitions at all (other tests leave theirs behind)."""
    with connection.cursor() as cur:
        raw = cur.cursor
        for name, _state in day_tables(raw).values():
            raw.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        cur.execute("TRUNCATE log_partitions, log_day_counts, log_batches, containers CASCADE")
