"""The real ingest BatchWriter, driven directly from a test (no receiver, no subprocess), and a
variant that stops inside its transaction so a test can force out-of-order commits."""

import threading
import time
from pathlib import Path

from ingest.normalize import Limits, normalize_batch
from ingest.pipeline import Pipeline
from ingest.record import Record
from ingest.store.spool import Spool
from ingest.store.writer import BatchWriter, conninfo_from_settings

LIMITS = Limits(max_line_bytes=256 * 1024, max_ts_age_ns=30 * 86400 * 10**9)


OPEN: list[BatchWriter] = []


def make_writer(tmp_path: Path, name: str, cls=BatchWriter) -> BatchWriter:
    pipeline = Pipeline(queue_limit=100_000, batch_lines=60_000, batch_wait_s=0.05)
    writer = cls(pipeline, conninfo_from_settings(), Spool(tmp_path / f"spool-{name}", name), LIMITS, name)
    OPEN.append(writer)
    return writer


def close_writers() -> None:
    while OPEN:
        writer = OPEN.pop()
        if isinstance(writer, HoldingWriter):
            writer.release.set()
        writer._drop_connection()


def write(writer: BatchWriter, records: list[Record]) -> None:
    """Commits the records as one writer batch (one transaction, one ledger row)."""
    writer.consume_batch(normalize_batch(records, LIMITS), 0, len(records))
    assert writer.pipeline.counters.committed >= len(records), "the batch was spooled, not committed"


def records(prefix: str, n: int, tenant: str = "tenant-a", containers: int = 3, **kw) -> list[Record]:
    now = time.time_ns()
    return [
        Record(
            line=f"{prefix} {i}",
            ts_ns=now + i,
            tenant=tenant,
            service=kw.get("service", "web"),
            container_id=f"{prefix}-c{i % containers}",
            container_name=f"/{kw.get('name', 'web')}-{i % containers}",
            image="nginx:1.25",
            host="node-1",
            stream="stderr" if i % 2 else "stdout",
            labels={"app": "demo"},
        )
        for i in range(n)
    ]


class HoldingWriter(BatchWriter):
    """Stops inside its transaction, after reserving ids (and, with take_xid, after taking a
    transaction id), until `release` is set: the slow writer of the cursor trap."""

    take_xid = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reserved = threading.Event()
        self.release = threading.Event()
        self.xid: int | None = None

    def _reserve_ids(self, cur, count: int) -> int:
        first_id = super()._reserve_ids(cur, count)
        if self.take_xid:
            cur.execute("SELECT pg_current_xact_id()::text::bigint")
            self.xid = cur.fetchone()[0]
        self.reserved.set()
        assert self.release.wait(60), "the test never released the held writer"
        return first_id


def write_in_thread(writer: BatchWriter, recs: list[Record]) -> threading.Thread:
    thread = threading.Thread(target=write, args=(writer, recs), daemon=True)
    thread.start()
    return thread
