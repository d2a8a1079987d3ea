"""`manage.py quarantine`: what Postgres refused is listed, and requeued once the cause is gone."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

from ingest.record import Record
from tests.conftest import log_rows
from tests.ingest.test_store_writer import poison_container  # noqa: F401 - fixture
from tests.support.writer import WriterHarness

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = io.StringIO()
    call_command("quarantine", *args, stdout=out)
    return out.getvalue()


def test_it_lists_refused_batches_and_requeues_them_for_replay(tmp_path, settings, poison_container):  # noqa: F811
    settings.LOGSITE_SPOOL_DIR = tmp_path
    assert "nothing quarantined" in run()
    with WriterHarness(tmp_path / "w1", name="w1") as store:
        store.write(
            [Record(line="refused <1>", container_id="poison"), Record(line="refused 2", container_id="x")]
        )
        assert store.pipeline.counters.quarantined == 2
    assert log_rows() == []
    listing = run()
    assert "w1: 1 file(s), 1 batch(es), 2 line(s)" in listing
    assert "refused <1>" in listing

    with connection.cursor() as cur:  # the cause is fixed
        cur.execute("DROP TRIGGER coretests_poison ON containers")
    assert "requeued" in run("--requeue")
    assert "nothing quarantined" in run()
    with WriterHarness(tmp_path / "w1", name="w1") as store:
        store.write([Record(line="later", container_id="x")])  # replays the spool first
    assert [r["line"] for r in log_rows()] == ["refused <1>", "refused 2", "later"]
