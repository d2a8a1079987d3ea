"""De-duplication keys claimed by the writer: re-sent records are stored once, even through the
spool and against another writer's open transaction."""

import threading
import time

import psycopg
import pytest

from ingest.normalize import Limits, normalize_batch
from ingest.pipeline import Pipeline
from ingest.record import DEDUP_ATTR, Record
from ingest.store import dedup
from ingest.store.spool import Spool, pack_batch, unpack_batch
from ingest.store.writer import BatchWriter, conninfo_from_settings
from tests.conftest import log_rows

LIMITS = Limits(max_line_bytes=1024, max_ts_age_ns=86400 * 10**9)
UNREACHABLE = "host=127.0.0.1 port=1 dbname=nowhere connect_timeout=1"


def batch(*keys: str | None):
    now = time.time_ns()
    records = [
        Record(line=f"line {key}", ts_ns=now, container_id="c1", attrs={DEDUP_ATTR: key} if key else None)
        for key in keys
    ]
    return normalize_batch(records, LIMITS)


@pytest.fixture
def writer(tmp_path, clean_logs):
    pipeline = Pipeline(queue_limit=1000, batch_lines=100, batch_wait_s=0.01)
    writer = BatchWriter(pipeline, conninfo_from_settings(), Spool(tmp_path / "spool", "w"), LIMITS, "w")
    yield writer
    writer.spool.close()
    if writer._conn is not None:
        writer._conn.close()


def stored() -> list[str]:
    return [r["line"] for r in log_rows()]


def test_it_keeps_the_keys_of_a_batch_through_the_spool():
    original = batch("a", None, "b")
    again = unpack_batch(pack_batch(original))
    assert again.keys == original.keys == [(0, "a"), (2, "b")]


def test_it_stores_a_record_once_when_both_copies_were_spooled(writer):
    writer.conninfo = UNREACHABLE
    writer.consume_batch(batch("k1", "k2"), 0, 2)
    writer.consume_batch(batch("k1", "k2", "k3"), 2, 5)
    assert writer.pipeline.counters.spooled == 5
    assert stored() == []

    writer.conninfo, writer._next_connect = conninfo_from_settings(), 0
    assert writer._replay_if_possible()

    assert stored() == ["line k1", "line k2", "line k3"]
    # Copies inside one batch, and a record without a key (never de-duplicated).
    writer.consume_batch(batch("k3", "k4", "k4", None, None), 5, 10)
    assert stored() == ["line k1", "line k2", "line k3", "line k4", "line None", "line None"]
    assert writer.pipeline.counters.deduplicated == 4


def test_it_waits_for_another_writers_claim_and_then_skips_its_keys(writer):
    other = psycopg.connect(conninfo_from_settings())
    try:
        with other.cursor() as cur:
            dedup.claim(cur, batch("x1", "x2"))  # another writer's transaction, still open
        done = threading.Event()
        thread = threading.Thread(
            target=lambda: (writer.consume_batch(batch("x1", "x2", "x3"), 0, 3), done.set())
        )
        thread.start()
        _wait_for_lock_waiter()
        assert not done.is_set()
        other.commit()
        thread.join(60)
    finally:
        other.close()
    assert done.is_set()
    assert stored() == ["line x3"]


def _wait_for_lock_waiter(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(conninfo_from_settings(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%%log_dedup_keys%%'"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the writer never waited on the other transaction's keys")
