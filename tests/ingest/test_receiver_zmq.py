"""zmq-logger receiver: a real `manage.py ingest` SUB socket fed by a real PUB socket.

One ingest process serves the module with three zmq drivers: unbound (the frames carry the
tenant), bound to tenant-a, and one kept for counting malformed messages from zero. PUB/SUB
drops what is sent before the connection is up, so every publisher first sends probes until
one is stored. The payload parser gets hypothesis tests at the end.
"""

import contextlib
import time
import uuid

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.models import Tenant
from ingest.receivers.zmq import PayloadError, parse_frames
from ingest.store.schema import FLAG_INVALID_UTF8, FLAG_NUL_ESCAPED
from tests.base import make_driver
from tests.conftest import log_rows
from tests.support.private_postgres import free_port
from tests.support.processes import IngestProcess

# Each test in a plain transaction (rolled back, nothing flushed): the shared drivers survive,
# and pytest-django creates the test database even when only these tests are selected.
pytestmark = pytest.mark.django_db

WAIT_S = 60  # bounds a broken test; nothing is timed


def new_cid() -> str:
    return uuid.uuid4().hex[:12]


def rows_of(cid: str) -> list[dict]:
    return log_rows("c.container_id = %s", (cid,))


def wait_rows(cid: str, count: int) -> list[dict]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        rows = rows_of(cid)
        if len(rows) >= count:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"{len(rows_of(cid))} of {count} lines of {cid} arrived")


class Publisher:
    """A PUB socket connected to one driver, proven connected by a stored probe."""

    def __init__(self, endpoint: str):
        self.sock = zmq.Context.instance().socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 1_000_000)
        self.sock.connect(endpoint)
        self.probe_cid = new_cid()
        self.probes_stored = 0
        deadline = time.monotonic() + WAIT_S
        sent = 0
        while not self.probes_stored:
            if time.monotonic() > deadline:
                raise AssertionError(f"no probe reached the receiver on {endpoint}")
            self.sock.send_multipart([b"probe", b"probe", f"{self.probe_cid}: probe {sent}".encode()])
            sent += 1
            time.sleep(0.1)
            self.probes_stored = len(rows_of(self.probe_cid))
        # Probes still in flight land later; count them all once the last one is in.
        self.sock.send_multipart([b"probe", b"probe", f"{self.probe_cid}: last probe".encode()])
        rows = wait_rows(self.probe_cid, 1)
        while rows[-1]["line"] != "last probe":
            rows = wait_rows(self.probe_cid, len(rows) + 1)
        self.probes_stored = len(rows)

    def send(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def zmq_ingest(module_db, tmp_path_factory):
    tenant_a = Tenant.objects.create(slug="tenant-a", name="Tenant A")
    endpoints = {name: f"tcp://127.0.0.1:{free_port()}" for name in ("open", "bound", "counted")}
    drivers = {
        "open": make_driver("zmq", endpoints["open"])[0],
        "bound": make_driver("zmq", endpoints["bound"], tenant=tenant_a)[0],
        "counted": make_driver("zmq", endpoints["counted"])[0],
    }
    proc = IngestProcess(tmp_path_factory.mktemp("zmq-ingest"))
    proc.start(wait_for_drivers=[d.id for d in drivers.values()])
    publishers = {name: Publisher(endpoint) for name, endpoint in endpoints.items()}
    yield proc, drivers, publishers
    for publisher in publishers.values():
        publisher.close()
    assert proc.stop() == 0


@pytest.fixture
def publishers(zmq_ingest):
    return zmq_ingest[2]


def test_it_stores_the_three_frame_layout(publishers):
    cid = new_cid()
    lines = [b"hello", b"a line: with the separator again", b"raw \xff\x00 bytes", b""]
    for line in lines:
        publishers["open"].send(b"tenant-z", b"svc-1", cid.encode() + b": " + line)
    rows = wait_rows(cid, len(lines))
    assert [(r["tenant"], r["service"], r["container_id"]) for r in rows] == [("tenant-z", "svc-1", cid)] * 4
    assert [r["line"] for r in rows[:2]] == ["hello", "a line: with the separator again"]
    raw = rows[2]
    assert raw["flags"] == FLAG_INVALID_UTF8 | FLAG_NUL_ESCAPED
    assert bytes(raw["raw"]) == b"raw \xff\x00 bytes"
    assert rows[3]["line"] == ""


def test_it_defaults_empty_tenant_and_service(publishers):
    cid = new_cid()
    publishers["open"].send(b"", b"  ", cid.encode() + b": x")
    [row] = wait_rows(cid, 1)
    assert (row["tenant"], row["service"]) == ("default", "default")


def test_it_stores_the_one_frame_layout(publishers):
    cid = new_cid()
    service = uuid.uuid4().hex  # 32 characters, no separator after it
    for n in range(3):
        publishers["open"].send(f"{cid},{service}line {n}, with a comma".encode())
    rows = wait_rows(cid, 3)
    assert [r["line"] for r in rows] == [f"line {n}, with a comma" for n in range(3)]
    assert {(r["tenant"], r["service"]) for r in rows} == {("default", service)}


def test_it_keeps_the_order_of_a_burst(publishers):
    cid = new_cid()
    for n in range(3000):
        publishers["open"].send(b"t-burst", b"svc", f"{cid}: seq={n}".encode())
    rows = wait_rows(cid, 3000)
    assert [r["line"] for r in rows] == [f"seq={n}" for n in range(3000)]


def test_it_puts_lines_of_a_bound_driver_in_its_tenant(publishers):
    cid = new_cid()
    publishers["bound"].send(b"someone-else", b"svc", cid.encode() + b": three frames")
    publishers["bound"].send(f"{cid},{'s' * 32}one frame".encode())
    rows = wait_rows(cid, 2)
    assert [(r["tenant"], r["line"]) for r in rows] == [
        ("tenant-a", "three frames"),
        ("tenant-a", "one frame"),
    ]
    assert log_rows("c.tenant = %s", ("someone-else",)) == []


MALFORMED = [
    [b"only", b"two frames"],
    [b"a", b"b", b"c", b"four frames"],
    [b"t", b"s", b"0123456789ab no separator"],
    [b"t", b"s", b"not-hex-cid!: line"],
    [b"t", b"s", b": empty container id"],
    [b"\xff\xfe", b"s", b"0123456789ab: tenant is not UTF-8"],
    [b"t" * 200, b"s", b"0123456789ab: tenant too long"],
    [b"short,frame"],
    [b"0123456789ab;" + b"s" * 40],
    [b"0123456789zz," + b"s" * 40],
    [b"0123456789ab," + "é".encode() * 16 + b"line"],
    [b""],
]


def test_it_counts_malformed_messages_and_keeps_serving(zmq_ingest):
    proc, drivers, publishers = zmq_ingest
    publisher, key = publishers["counted"], str(drivers["counted"].id)
    for frames in MALFORMED:
        publisher.send(*frames)
    cid = new_cid()
    publisher.send(b"t", b"s", cid.encode() + b": still serving")
    assert [r["line"] for r in wait_rows(cid, 1)] == ["still serving"]
    # Stats are a snapshot taken at one moment: once it counts the good line as received,
    # every malformed message sent before it has been counted too.
    stats = proc.wait_stats(lambda s: s["drivers"][key]["received"] >= publisher.probes_stored + 1)
    counted = stats["drivers"][key]
    assert counted["received"] == publisher.probes_stored + 1
    assert counted["malformed"] == len(MALFORMED)
    assert counted["dropped"] == 0
    assert counted["last_error"]


# --- the payload parser, property-based --------------------------------------------------------
cids = st.text("0123456789abcdefABCDEF", min_size=1, max_size=64)
# The receiver strips the names (and defaults empty ones): generate names it keeps as they are.
names = st.text(min_size=1, max_size=40).filter(lambda s: s == s.strip() and s)


@settings(max_examples=300, deadline=None)
@given(names, names, cids, st.binary(max_size=200))
def test_parser_round_trips_the_three_frame_layout(tenant, service, cid, line):
    frames = [tenant.encode(), service.encode(), cid.encode() + b": " + line]
    assert parse_frames(frames) == (tenant, service, cid, line)


@settings(max_examples=300, deadline=None)
@given(
    st.text("0123456789abcdef", min_size=12, max_size=12),
    st.text(st.characters(max_codepoint=127), min_size=32, max_size=32),
    st.binary(max_size=200),
)
def test_parser_round_trips_the_one_frame_layout(cid, service, line):
    assert parse_frames([cid.encode() + b"," + service.encode() + line]) == (None, service, cid, line)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=5))
def test_parser_takes_arbitrary_frames_or_raises_payload_error(frames):
    try:
        tenant, service, cid, line = parse_frames(frames)
    except PayloadError:
        return
    assert isinstance(line, bytes)
    assert isinstance(service, str)
    assert tenant is None or isinstance(tenant, str)
    assert cid
    assert all(c in "0123456789abcdefABCDEF" for c in cid)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=20), min_size=3, max_size=3), st.binary(max_size=20))
def test_parser_takes_near_valid_three_frame_messages_or_raises_payload_error(frames, tail):
    # Most arbitrary frames fail early; these get as far as the container id and the names.
    frames[2] = frames[2][:12] + b": " + tail
    with contextlib.suppress(PayloadError):
        parse_frames(frames)
