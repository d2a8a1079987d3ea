"""Dropping a day under a running writer and running searches, and the races around it."""

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from psycopg import sql

from ingest.record import Record
from ingest.store import partitions
from ingest.store.day_drop import drop_day_if
from ingest.store.writer import conninfo_from_settings
from tests.support.rows import RowWriter, day_ns, drop_all_days

pytestmark = pytest.mark.django_db(transaction=True)

DETACH = sql.SQL("ALTER TABLE logs DETACH PARTITION {} CONCURRENTLY")


@pytest.fixture
def old_day(transactional_db):
    drop_all_days()
    return timezone.now().date() - timedelta(days=20)


@pytest.fixture
def rows():
    writer = RowWriter()
    yield writer
    writer.close()


def line(day, text: str, container: str = "c1") -> Record:
    return Record(line=text, ts_ns=day_ns(day), container_id=container)


def state(day) -> str | None:
    with connection.cursor() as cur:
        return partitions.relation_state(cur.cursor, partitions.partition_name(day))


def count(where: str = "TRUE") -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM logs WHERE {where}")
        return cur.fetchone()[0]


def maintenance() -> psycopg.Connection:
    return psycopg.connect(conninfo_from_settings(), autocommit=True)


def test_it_lets_the_writer_recreate_a_day_dropped_under_its_cache(old_day, rows):
    rows.write([line(old_day, "first")])
    with maintenance() as conn:
        assert drop_day_if(conn, old_day, lambda present: True) == "dropped"
    assert state(old_day) is None

    rows.write([line(old_day, "late line for the dropped day")])  # the writer had the day cached

    assert state(old_day) == "attached"
    assert count() == 1
    assert rows.pipeline.counters.quarantined == 0


def test_it_never_makes_the_writer_wait_for_a_search_that_holds_the_day(old_day, rows):
    today = timezone.now().date()
    rows.write([line(old_day, "old"), line(today, "today")])
    outcome = []
    with maintenance() as search, maintenance() as conn:
        search.execute("BEGIN")
        search.execute("SELECT count(*) FROM logs").fetchone()  # a long search: locks every day
        dropper = threading.Thread(target=lambda: outcome.append(drop_day_if(conn, old_day, lambda p: True)))
        dropper.start()
        wait_until_waiting(conn)

        rows.write([line(today, f"while the drop waits {n}") for n in range(100)])
        assert dropper.is_alive()  # the drop still waits for the search; the writer did not
        assert count("line LIKE 'while the drop waits%'") == 100

        search.execute("COMMIT")
        dropper.join(60)
    assert outcome == ["dropped"]
    assert state(old_day) is None
    assert count() == 101


def test_it_attaches_the_day_again_when_a_kept_line_raced_the_decision(old_day, rows):
    rows.write([line(old_day, "expired", container="expiring")])
    checks = []

    def removable(present: set[int]) -> bool:
        checks.append(len(present))
        if len(checks) == 1:  # decided; now a line of a container that keeps the day arrives
            rows.write([line(old_day, "late, kept", container="keeping")])
            return True
        return len(present) == 1

    with maintenance() as conn:
        assert drop_day_if(conn, old_day, removable) == "kept"

    assert checks == [1, 2]
    assert state(old_day) == "attached"
    assert count() == 2
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM log_partitions WHERE day = %s", (old_day,))
        assert cur.fetchone()[0] == 1


def test_it_finishes_an_interrupted_detach(old_day, rows):
    rows.write([line(old_day, "old")])
    name = partitions.partition_name(old_day)
    with maintenance() as search, maintenance() as detacher, maintenance() as killer:
        search.execute("BEGIN")
        search.execute("SELECT count(*) FROM logs").fetchone()
        failed = []

        def detach():
            try:
                detacher.execute(DETACH.format(sql.Identifier(name)))
            except psycopg.errors.QueryCanceled as e:
                failed.append(e)

        thread = threading.Thread(target=detach)
        thread.start()
        wait_until_waiting(detacher)
        killer.execute("SELECT pg_cancel_backend(%s)", (detacher.info.backend_pid,))
        thread.join(30)
        search.execute("COMMIT")
    assert failed
    assert state(old_day) == "detaching"

    with maintenance() as conn:
        assert drop_day_if(conn, old_day, lambda p: True) == "dropped"
    assert state(old_day) is None


def wait_until_waiting(conn: psycopg.Connection, timeout: float = 30) -> None:
    """Until the backend of `conn` waits for a lock (here: for the search to finish)."""
    pid = conn.info.backend_pid
    deadline = time.monotonic() + timeout
    with maintenance() as watcher:
        while time.monotonic() < deadline:
            query = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s"
            row = watcher.execute(query, (pid,)).fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.05)
    raise AssertionError("the backend never started waiting")
