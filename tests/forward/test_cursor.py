"""The ledger cursor with several writers: a slow writer's rows are never skipped, none is
sent twice, and nothing is sent while an older writer transaction could still commit."""

import psycopg
import pytest
from django.db import connection

from forward import cursor as ledger
from forward.models import ForwardState
from forward.run import forward_target
from ingest.store.writer import conninfo_from_settings
from tests.forward.runs import run_until_done
from tests.forward.targets import cls_target, received_lines
from tests.forward.writers import (
    HoldingWriter,
    make_writer,
    records,
    renew_sequence_log,
    write,
    write_in_thread,
)

pytestmark = pytest.mark.django_db(transaction=True)


def forward_once(target):
    """One run: for checking what must NOT be sent yet."""
    result = forward_target(target.id, budget_s=10)
    assert result.status in ("caught_up", "budget"), result
    return result


def forward(target):
    """Runs until everything committed is forwarded."""
    result = run_until_done(target)
    assert result.status == "caught_up", result
    return result


def lines(prefix: str, n: int) -> list[str]:
    return [f"{prefix} {i}" for i in range(n)]


@pytest.mark.parametrize("slow_takes_xid_first", [True, False])
def test_it_never_skips_a_slow_writer(actors, clean_logs, standin, tmp_path, slow_takes_xid_first):
    target = cls_target(standin, actors.tenant_a)
    slow = make_writer(tmp_path, "writer-a", HoldingWriter)
    fast = make_writer(tmp_path, "writer-b")
    if not slow_takes_xid_first:
        # Containers already known: the held transaction writes nothing, so has no xid yet.
        HoldingWriter.take_xid = False
        slow.release.set()
        write(slow, records("slow", 3))
        slow.release.clear()
        slow.reserved.clear()
        forward(target)
        standin.received.clear()
        renew_sequence_log(conninfo_from_settings())
    try:
        held = write_in_thread(slow, records("slow", 300))
        assert slow.reserved.wait(30)
        # Which case this is depends on the held transaction, not on the parameter alone: its
        # nextval() takes an xid if a checkpoint came after renew_sequence_log.
        slow_is_older = slow.xid is not None
        write(fast, records("fast", 200))

        with connection.cursor() as cur:
            cur.execute("SELECT max(id) FROM logs")
            newest_id = cur.fetchone()[0]
            cur.execute("SELECT min(first_id) FROM log_batches WHERE writer = 'writer-b'")
            fast_first = cur.fetchone()[0]
        # The trap: the slow writer's ids are older than everything committed so far.
        assert newest_id >= fast_first

        if slow_is_older:
            # The slow transaction is older than the fast one: nothing may be sent past it.
            forward_once(target)
            assert received_lines(standin) == []
        else:
            forward(target)
            # The slow one has no xid yet, so it will commit after the fast one in xid order.
            assert received_lines(standin) == lines("fast", 200)

        slow.release.set()
        held.finish()
        forward(target)
    finally:
        HoldingWriter.take_xid = True
        slow.release.set()

    got = received_lines(standin)
    expected = lines("slow", 300) + lines("fast", 200)
    if not slow_is_older:
        expected = lines("fast", 200) + lines("slow", 300)
    assert got == expected
    forward(target)
    assert len(received_lines(standin)) == 500


def test_it_is_not_held_back_by_a_transaction_in_another_database(actors, clean_logs, standin, tmp_path):
    target = cls_target(standin, actors.tenant_a)
    other = psycopg.connect(conninfo_from_settings().replace(connection.settings_dict["NAME"], "postgres"))
    try:
        other.execute("SELECT pg_current_xact_id()")  # an open transaction with an xid
        write(make_writer(tmp_path, "writer-b"), records("line", 50))
        forward(target)
        assert received_lines(standin) == lines("line", 50)
    finally:
        other.close()


def test_it_waits_for_an_open_transaction_in_its_own_database(actors, clean_logs, standin, tmp_path):
    target = cls_target(standin, actors.tenant_a)
    same = psycopg.connect(conninfo_from_settings())
    try:
        same.execute("SELECT pg_current_xact_id()")
        write(make_writer(tmp_path, "writer-b"), records("line", 50))
        forward_once(target)
        assert received_lines(standin) == []
    finally:
        same.close()
    forward(target)
    assert received_lines(standin) == lines("line", 50)


def test_a_new_target_starts_at_the_horizon(actors, clean_logs, standin, tmp_path):
    writer = make_writer(tmp_path, "writer-b")
    write(writer, records("before", 10))
    target = cls_target(standin, actors.tenant_a)
    write(writer, records("after", 10))
    forward(target)
    assert received_lines(standin) == lines("after", 10)


def test_the_position_names_the_last_row_forwarded(actors, clean_logs, standin, tmp_path):
    target = cls_target(standin, actors.tenant_a, batch_lines=40)
    write(make_writer(tmp_path, "writer-b"), records("line", 100))
    standin.inject("500", n=1, after=1)  # the second send fails once, then all goes through
    forward(target)
    assert received_lines(standin) == lines("line", 100)
    state = ForwardState.objects.get(pk=target.pk)
    with connection.cursor() as cur:
        cur.execute("SELECT xid::text::bigint, id, last_id FROM log_batches")
        xid, batch_id, last_id = cur.fetchone()
    assert (state.xid, state.batch_id, state.row_id) == (xid, batch_id, last_id)
    assert state.lines_sent == 100
    assert state.failures == 0
    assert "InternalError" in state.last_error


def test_the_horizon_is_below_every_running_writer(clean_logs, tmp_path):
    with connection.cursor() as cur:
        before = ledger.horizon(cur)
    conn = psycopg.connect(conninfo_from_settings())
    try:
        xid = int(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        with connection.cursor() as cur:
            assert before <= xid
            assert ledger.horizon(cur) <= xid
    finally:
        conn.close()
