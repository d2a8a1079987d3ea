"""The batching writer on the real test database: ids, ledger, and how it survives failures."""

import pytest
from django.db import connection

from ingest.models import Container
from ingest.normalize import normalize_batch
from ingest.pipeline import NotDurable
from ingest.record import Record
from tests.base import make_driver
from tests.conftest import log_rows
from tests.support.writer import WriterHarness

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def poison_container(clean_logs):
    """Postgres refuses any batch that touches the container id 'poison' (a stand-in for any
    data Postgres rejects); the writer must quarantine that batch and carry on cleanly."""
    with connection.cursor() as cur:
        cur.execute(
            "CREATE OR REPLACE FUNCTION coretests_poison() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF NEW.container_id = 'poison' THEN RAISE EXCEPTION 'poisoned container'; END IF; "
            "RETURN NEW; END $$"
        )
        cur.execute(
            "CREATE TRIGGER coretests_poison BEFORE INSERT OR UPDATE ON containers "
            "FOR EACH ROW EXECUTE FUNCTION coretests_poison()"
        )
    yield
    with connection.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS coretests_poison ON containers")
        cur.execute("DROP FUNCTION IF EXISTS coretests_poison()")


def orphan_rows() -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM logs l WHERE NOT EXISTS (SELECT 1 FROM containers c WHERE c.id = l.ckey)"
        )
        return cur.fetchone()[0]


def test_it_gives_each_batch_contiguous_ids_and_a_ledger_row(tmp_path, clean_logs):
    with WriterHarness(tmp_path / "spool", batch_lines=7) as store:
        store.write([Record(line=f"a{i}", container_id="a" if i % 2 else "b") for i in range(20)])
    rows = log_rows()
    assert sorted(r["line"] for r in rows) == sorted(f"a{i}" for i in range(20))
    with connection.cursor() as cur:
        cur.execute("SELECT first_id, last_id, rows FROM log_batches ORDER BY id")
        ledger = cur.fetchall()
    assert [n for _, _, n in ledger] == [7, 7, 6]
    ids = sorted(r["id"] for r in rows)
    assert ids == [i for first, last, _ in ledger for i in range(first, last + 1)]
    # Within a container, ids follow the order the lines were submitted in.
    for cid in ("a", "b"):
        lines = [r["line"] for r in rows if r["container_id"] == cid]
        assert lines == sorted(lines, key=lambda s: int(s[1:]))


def test_it_forgets_container_keys_of_a_refused_batch(tmp_path, poison_container):
    with WriterHarness(tmp_path / "spool") as store:
        # "fresh" is first seen in a batch that Postgres refuses: its containers row is rolled back.
        store.write([Record(line="first", container_id="fresh"), Record(line="bad", container_id="poison")])
        assert store.pipeline.counters.quarantined == 2
        store.write([Record(line="second", container_id="fresh")])
    assert [r["line"] for r in log_rows("c.container_id = %s", ("fresh",))] == ["second"]
    assert orphan_rows() == 0


def test_it_keeps_writing_when_live_fan_out_fails_during_replay(tmp_path, clean_logs):
    harness = WriterHarness(tmp_path / "spool", on_commit=_broken_fan_out)
    # A batch left in the spool by an earlier outage, replayed when this writer starts.
    harness.spool.append(normalize_batch([Record(line="spooled", container_id="c1")], harness.limits))
    harness.spool.close()
    with harness as store:
        store.write([Record(line="after", container_id="c1")])
    assert [r["line"] for r in log_rows()] == ["spooled", "after"]


def _broken_fan_out(_committed) -> None:
    raise RuntimeError("fan-out is broken")


def test_it_fails_a_batch_it_cannot_encode_and_keeps_serving(tmp_path, clean_logs):
    with WriterHarness(tmp_path / "spool") as store:
        # A receiver bug (bytes keys, as a msgpack decoder can produce) must cost this batch
        # an error answer, not the writer thread and with it every later acknowledgement.
        with pytest.raises(NotDurable):
            store.write([Record(line="x", attrs={b"key": 1}, container_id="c1")])
        store.write([Record(line="next", container_id="c1")])
    assert [r["line"] for r in log_rows()] == ["next"]


def test_it_stores_lines_of_a_driver_deleted_meanwhile(tmp_path, clean_logs):
    # A driver removed in the admin while its receiver still has lines queued: those lines (and
    # every other line of their batch) must still be stored, just without the driver link.
    driver, _ = make_driver("http", "127.0.0.1:1")
    gone = driver.id
    driver.delete()
    with WriterHarness(tmp_path / "spool") as store:
        store.write(
            [
                Record(line="from the deleted driver", container_id="c-gone", driver_id=gone),
                Record(line="someone else's", container_id="c-other"),
            ]
        )
        assert store.pipeline.counters.quarantined == 0
    assert sorted(r["line"] for r in log_rows()) == ["from the deleted driver", "someone else's"]
    assert Container.objects.get(container_id="c-gone").driver_id is None
