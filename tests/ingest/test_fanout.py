"""Live fan-out: a real channel-layer member (channels_redis on the real Redis) listening to the
groups a real ingest process publishes to, checked against what is committed."""

import asyncio
import json

import psycopg
import pytest
import requests
from channels.layers import get_channel_layer
from django.db import connections

from ingest.fanout import EVENT_TYPE, container_group, tenant_group
from ingest.models import Tenant
from ingest.store.writer import conninfo_from_settings
from tests.base import make_driver
from tests.conftest import log_rows
from tests.support.private_postgres import free_port
from tests.support.processes import IngestProcess
from tests.support.shared import unique

# Each test in a plain transaction (rolled back, nothing flushed): the shared drivers survive,
# and pytest-django creates the test database even when only these tests are selected.
pytestmark = pytest.mark.django_db

WAIT_S = 30  # bounds a broken test; nothing is timed


def push(url: str, token: str, records: list[dict]) -> None:
    body = "\n".join(json.dumps(r) for r in records).encode()
    response = requests.post(url, data=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def fanout_ingest(module_db, tmp_path_factory):
    Tenant.objects.create(slug="tenant-f", name="Tenant F")
    port = free_port()
    driver, token = make_driver("http", f"127.0.0.1:{port}")  # unbound: records name their tenant
    # Small batches, so one push spans several and "one message per batch" is visible.
    proc = IngestProcess(tmp_path_factory.mktemp("fanout-ingest"), LOGSITE_BATCH_LINES=500)
    proc.start(wait_for_drivers=[driver.id])
    yield f"http://127.0.0.1:{port}/api/v1/push", token
    assert proc.stop() == 0


class Member:
    """One channel in the given groups, as a live-tail consumer would hold."""

    def __init__(self):
        self.layer = get_channel_layer()
        self.groups: list[str] = []

    async def join(self, *groups: str) -> "Member":
        self.channel = getattr(self, "channel", None) or await self.layer.new_channel()
        for group in groups:
            await self.layer.group_add(group, self.channel)
            self.groups.append(group)
        return self

    async def receive(self) -> dict:
        return await asyncio.wait_for(self.layer.receive(self.channel), WAIT_S)

    async def leave(self) -> None:
        for group in self.groups:
            await self.layer.group_discard(group, self.channel)


async def in_thread(fn, *args):
    """A database helper off the event loop (Django refuses sync queries in async code); the
    thread's connection is closed after, so the test database can be dropped at the end."""

    def call():
        try:
            return fn(*args)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)


def stored(cid: str) -> list[tuple[int, str]]:
    return [(r["id"], r["line"]) for r in log_rows("c.container_id = %s", (cid,))]


def ledger_batches(ids: list[int]) -> int:
    """How many committed writer batches hold these ids."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(DISTINCT b.id) FROM log_batches b "
            "JOIN unnest(%s::bigint[]) AS i ON i BETWEEN b.first_id AND b.last_id",
            (ids,),
        )
        return cur.fetchone()[0]


def lines_of(message: dict, ckey: int) -> list[tuple[int, str]]:
    return [(line[0], line[5]) for line in message["lines"].get(str(ckey), [])]


async def test_it_publishes_each_committed_batch_once_per_group(fanout_ingest):
    url, token = fanout_ingest
    tenant, cid = unique("t"), unique()
    by_tenant = await Member().join(tenant_group(tenant))
    await asyncio.to_thread(push, url, token, [{"line": "first", "container_id": cid, "tenant": tenant}])
    first = await by_tenant.receive()
    [container] = first["containers"]
    ckey = container["ckey"]
    assert (container["tenant"], container["container_id"]) == (tenant, cid)
    by_container = await Member().join(container_group(ckey))

    # Many batches in quick succession: their messages must not overtake one another (a tail
    # client resumes after the last id it has, so a late earlier batch would look stale).
    records = [
        {"line": f"l{i}", "container_id": cid, "tenant": tenant, "level": "info"} for i in range(20_000)
    ]
    await asyncio.to_thread(push, url, token, records)
    rows = await in_thread(stored, cid)
    committed = rows[1:]
    batches = await in_thread(ledger_batches, [i for i, _ in committed])
    assert batches >= 40  # 20 000 lines in batches of at most 500
    for member in (by_tenant, by_container):
        seen = []
        for _ in range(batches):
            message = await member.receive()
            assert message["type"] == EVENT_TYPE
            assert [c["ckey"] for c in message["containers"]] == [ckey]
            seen += lines_of(message, ckey)
        # Every committed line exactly once, with its id: one message per batch...
        assert sorted(seen) == committed
        # ... and in commit order.
        assert seen == committed
    assert first["lines"][str(ckey)][0][2:6] == ["stdout", None, 0, "first"]
    await by_tenant.leave()
    await by_container.leave()


async def test_it_puts_all_lines_of_a_container_in_its_message(fanout_ingest):
    # One batch, one container, but the records disagree on its metadata (name, image): the
    # batch holds two container entries with the same key and both sets of lines must go out.
    url, token = fanout_ingest
    tenant, cid = unique("t"), unique()
    member = await Member().join(tenant_group(tenant))
    records = [
        {"line": f"n{i}", "container_id": cid, "tenant": tenant, "container_name": f"name-{i % 2}"}
        for i in range(6)
    ]
    await asyncio.to_thread(push, url, token, records)
    message = await member.receive()
    [ckey] = {c["ckey"] for c in message["containers"]}
    assert lines_of(message, ckey) == await in_thread(stored, cid)
    assert [line for _, line in lines_of(message, ckey)] == [f"n{i}" for i in range(6)]
    await member.leave()


@pytest.fixture
def poison_container(fanout_ingest):
    """Postgres refuses any batch touching container id 'poison' (stand-in for refused data).

    On a connection of its own, committed at once: the test's own connection sits in a
    transaction that would hold the DDL's lock and stall the writer."""
    with psycopg.connect(conninfo_from_settings(), autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION coretests_poison() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF NEW.container_id = 'poison' THEN RAISE EXCEPTION 'poisoned container'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER coretests_poison BEFORE INSERT OR UPDATE ON containers "
            "FOR EACH ROW EXECUTE FUNCTION coretests_poison()"
        )
    yield
    with psycopg.connect(conninfo_from_settings(), autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS coretests_poison ON containers")
        conn.execute("DROP FUNCTION IF EXISTS coretests_poison()")


async def test_it_never_publishes_a_batch_that_was_not_committed(fanout_ingest, poison_container):
    url, token = fanout_ingest
    tenant, cid = unique("t"), unique()
    member = await Member().join(tenant_group(tenant))
    refused = [{"line": "never stored", "container_id": c, "tenant": tenant} for c in (cid, "poison")]
    await asyncio.to_thread(push, url, token, refused)
    await asyncio.to_thread(push, url, token, [{"line": "stored", "container_id": cid, "tenant": tenant}])
    # Messages to a channel arrive in order: had the refused batch been published, it would
    # be this first message.
    message = await member.receive()
    published = [line for lines in message["lines"].values() for line in lines]
    assert [line[5] for line in published] == ["stored"]
    assert [(line[0], line[5]) for line in published] == await in_thread(stored, cid)
    await member.leave()


async def test_it_publishes_spooled_lines_only_once_they_are_committed(private_db, tmp_path):
    port = free_port()
    driver_id, token = private_db.add_driver("http", f"127.0.0.1:{port}", None)
    url = f"http://127.0.0.1:{port}/api/v1/push"
    proc = IngestProcess(tmp_path, writer="fanout-outage", DATABASE_URL=private_db.url)
    await asyncio.to_thread(proc.start, [driver_id])
    tenant, cid = unique("t"), unique()
    member = await Member().join(tenant_group(tenant))
    try:
        private_db.stop("fast")
        records = [{"line": f"s{i}", "container_id": cid, "tenant": tenant} for i in range(50)]
        await asyncio.to_thread(push, url, token, records)  # acknowledged from the spool
        with pytest.raises(TimeoutError):
            # Nothing is committed, so nothing may be published (a bounded look, not a timing).
            await asyncio.wait_for(member.layer.receive(member.channel), 3)
        private_db.start()
        seen = []
        while len(seen) < len(records):
            message = await member.receive()
            ckey = message["containers"][0]["ckey"]
            lines = lines_of(message, ckey)
            # Published after commit: the store already holds every line the message carries.
            rows = dict(
                private_db.query("SELECT id, line FROM logs WHERE id = ANY(%s)", ([i for i, _ in lines],))
            )
            assert [(i, rows.get(i)) for i, _ in lines] == lines
            seen += lines
        assert [line for _, line in seen] == [f"s{i}" for i in range(50)]
    finally:
        await member.leave()
        await asyncio.to_thread(proc.stop)
