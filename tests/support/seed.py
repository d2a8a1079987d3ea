"""Stored lines for read-side tests, written in-process by the real batching writer.

For tests about who may read what (isolation, previews), where starting an ingest subprocess
would only add time: the rows go through normalize_batch and BatchWriter's COPY exactly as
ingest writes them.
"""

import time
from pathlib import Path

from django.conf import settings

from ingest.normalize import Limits, normalize_batch
from ingest.pipeline import Pipeline
from ingest.record import Record
from ingest.store.spool import Spool
from ingest.store.writer import BatchWriter, conninfo_from_settings


def write_records(records: list[Record], spool_dir: Path) -> None:
    pipeline = Pipeline(queue_limit=len(records) + 1, batch_lines=len(records) + 1, batch_wait_s=0.01)
    limits = Limits(max_line_bytes=settings.LOGSITE_MAX_LINE_BYTES, max_ts_age_ns=30 * 86400 * 10**9)
    spool = Spool(spool_dir, "seed")
    writer = BatchWriter(pipeline, conninfo_from_settings(), spool, limits, "seed")
    now = time.time_ns()
    for r in records:
        r.received_ns = r.received_ns or now
    writer.consume_batch(normalize_batch(records, limits), 0, len(records))
    assert not spool.has_pending(), "seed rows were spooled: the test database is unreachable"
    spool.close()
    if writer._conn is not None:
        writer._conn.close()
