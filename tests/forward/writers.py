"""The real ingest BatchWriter, driven directly from a test (no receiver, no subprocess), and a
variant that stops inside its transaction so a test can force out-of-order commits."""

import threading
import time
from pathlib import Path

import psycopg

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
    transaction id), until `release` is set: the slow writer of the cursor trap.

    `xid` is the held transaction's id, or None when it has none yet. Without take_xid it
    usually has none, but not always: nextval() takes one whenever it WAL-logs the sequence (every
    32 calls, and on the first call after a checkpoint)."""

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
        else:
            cur.execute("SELECT pg_current_xact_id_if_assigned()::text::bigint")
        self.xid = cur.fetchone()[0]
        self.reserved.set()
        assert self.release.wait(60), "the test never released the held writer"
        return first_id


class WriteThread(threading.Thread):
    """`write` in a thread; `error` keeps what it raised (a thread's exception is otherwise only
    printed, and the test would go on as if the write had committed)."""

    def __init__(self, writer: BatchWriter, recs: list[Record]):
        super().__init__(daemon=True)
        self.writer, self.recs = writer, recs
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            write(self.writer, self.recs)
        except BaseException as e:
            self.error = e
            raise

    def finish(self, timeout: float = 30) -> None:
        self.join(timeout)
        assert not self.is_alive(), "the write did not finish"
        assert self.error is None, f"the write failed: {self.error!r}"


def write_in_thread(writer: BatchWriter, recs: list[Record]) -> WriteThread:
    thread = WriteThread(writer, recs)
    thread.start()
    return thread


def renew_sequence_log(conninfo: str) -> None:
    """One nextval() in its own transaction: the sequence is WAL-logged now, so the next 32
    calls (unless a checkpoint comes first) do not take a transaction id."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT nextval('logs_id_seq')")
