"""Writes records straight through the real writer (normalise → containers → COPY → commit),
for tests that need many rows without a network sender in front."""

import tempfile
from pathlib import Path

from ingest.normalize import Limits, normalize_batch
from ingest.pipeline import Pipeline
from ingest.record import Record
from ingest.store.spool import Spool
from ingest.store.writer import BatchWriter, conninfo_from_settings

LIMITS = Limits(max_line_bytes=256 * 1024, max_ts_age_ns=30 * 86400 * 10**9)
CHUNK = 50_000


def store_records(records: list[Record]) -> None:
    spool_dir = Path(tempfile.mkdtemp(prefix="logsite-test-spool-"))
    writer = BatchWriter(
        Pipeline(queue_limit=1, batch_lines=CHUNK, batch_wait_s=0.05),
        conninfo_from_settings(),
        Spool(spool_dir, "test-direct"),
        LIMITS,
        "test-direct",
    )
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        writer.consume_batch(normalize_batch(chunk, LIMITS), start, start + len(chunk))
    assert not writer.spool.has_pending(), "the database refused the test rows (they were spooled)"
