"""The spool: its file format on its own, replay through the real writer, and a real outage.

The outage tests stop and start a private PostgreSQL cluster (never the shared one) under a
real `manage.py ingest` while a sender pushes, and compare what is stored with exactly what the
sender was told was accepted.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time

import pytest

from ingest.normalize import Batch, Limits, normalize_batch
from ingest.record import Record
from ingest.store.spool import Spool
from tests.conftest import log_rows
from tests.support.private_postgres import free_port
from tests.support.processes import REPO, IngestProcess
from tests.support.push import PushStream, seq_of
from tests.support.writer import WriterHarness

LIMITS = Limits(max_line_bytes=4096, max_ts_age_ns=30 * 86400 * 10**9)


def batch_of(*lines: str, cid: str = "c1") -> Batch:
    return normalize_batch([Record(line=line, container_id=cid) for line in lines], LIMITS)


def lines_of(batch: Batch) -> list[bytes]:
    return [row[6] for row in batch.rows]


def replay_all(spool: Spool) -> list[tuple[list[bytes], str]]:
    seen = []
    spool.replay(lambda batch, ref: seen.append((lines_of(batch), ref)))
    return seen


# --- the file format --------------------------------------------------------------------------
def test_it_replays_batches_in_order_and_deletes_them(tmp_path):
    spool = Spool(tmp_path, "w")
    for n in range(3):
        spool.append(batch_of(f"b{n}-0", f"b{n}-1"))
    assert spool.has_pending()
    seen = replay_all(spool)
    assert [lines for lines, _ in seen] == [[b"b0-0", b"b0-1"], [b"b1-0", b"b1-1"], [b"b2-0", b"b2-1"]]
    assert len({ref for _, ref in seen}) == 3
    assert not spool.has_pending()


def test_it_keeps_every_field_of_a_batch(tmp_path):
    batch = normalize_batch(
        [
            Record(
                line=b"\x00\xff raw",
                ts_ns=time.time_ns() - 10**9,
                tenant="t",
                service="s",
                container_id="c",
                container_name="/n",
                image="i",
                host="h",
                stream="stderr",
                level=3,
                attrs={"a": [1, "x"]},
                labels={"k": "v"},
                driver_id=7,
            )
        ],
        LIMITS,
    )
    spool = Spool(tmp_path, "w")
    spool.append(batch)
    seen = []
    spool.replay(lambda b, ref: seen.append(b))
    assert seen == [batch]


def test_it_discards_a_torn_last_frame(tmp_path):
    spool = Spool(tmp_path, "w")
    spool.append(batch_of("kept-1"))
    spool.append(batch_of("kept-2"))
    [segment] = spool.segments()
    spool.close()
    whole = segment.read_bytes()
    spool.append(batch_of("torn"))  # new segment; copy its frame half-written onto the first
    [_, second] = spool.segments()
    frame = second.read_bytes()
    second.unlink()
    segment.write_bytes(whole + frame[: len(frame) // 2])
    assert [lines for lines, _ in replay_all(spool)] == [[b"kept-1"], [b"kept-2"]]
    assert not spool.has_pending()


def test_it_discards_a_torn_header(tmp_path):
    spool = Spool(tmp_path, "w")
    spool.append(batch_of("kept"))
    spool.close()
    [segment] = spool.segments()
    with open(segment, "ab") as f:
        f.write(b"\x00\x00\x01")
    assert [lines for lines, _ in replay_all(spool)] == [[b"kept"]]


def test_it_discards_a_zero_filled_tail(tmp_path):
    # After a crash the file can be longer than what reached the disk, the rest reading as
    # zeros: length 0 and crc 0 (which is the crc of nothing) must not pass for a frame.
    spool = Spool(tmp_path, "w")
    spool.append(batch_of("kept"))
    spool.close()
    [segment] = spool.segments()
    with open(segment, "ab") as f:
        f.write(b"\x00" * 4096)
    assert [lines for lines, _ in replay_all(spool)] == [[b"kept"]]
    assert not spool.has_pending()


def test_it_discards_a_last_frame_with_a_bad_checksum(tmp_path):
    spool = Spool(tmp_path, "w")
    spool.append(batch_of("kept"))
    spool.append(batch_of("damaged"))
    spool.close()
    [segment] = spool.segments()
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert [lines for lines, _ in replay_all(spool)] == [[b"kept"]]
    assert not spool.has_pending()


def test_it_keeps_a_segment_aside_when_damage_is_followed_by_data(tmp_path):
    # A bad checksum in the middle is not a torn append: acknowledged batches follow it, so
    # the file is kept for recovery instead of being deleted, and later segments still replay.
    spool = Spool(tmp_path, "w")
    spool.append(batch_of("before"))
    spool.append(batch_of("damaged"))
    spool.append(batch_of("after"))
    spool.close()
    [segment] = spool.segments()
    first_len = struct.unpack_from(">I", segment.read_bytes())[0]
    data = bytearray(segment.read_bytes())
    second_payload = 8 + first_len + 8
    data[second_payload + 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    spool.append(batch_of("next segment"))
    spool.close()
    seen = replay_all(spool)
    assert [lines for lines, _ in seen] == [[b"before"], [b"next segment"]]
    assert not spool.has_pending()
    kept = list(tmp_path.glob("*.corrupt"))
    assert len(kept) == 1
    assert kept[0].read_bytes() == bytes(data)


def test_it_keeps_what_is_left_when_apply_fails(tmp_path):
    spool = Spool(tmp_path, "w")
    for n in range(3):
        spool.append(batch_of(f"b{n}"))
    applied = []

    def apply_until_second(batch, ref):
        if len(applied) == 1:
            raise ConnectionError("database went away")
        applied.append((lines_of(batch), ref))

    with pytest.raises(ConnectionError):
        spool.replay(apply_until_second)
    assert spool.has_pending()
    again = replay_all(spool)
    # The frame applied before the failure is offered again with the same ref, so the writer
    # can recognise it; the rest follow in order.
    assert again[0] == applied[0]
    assert [lines for lines, _ in again] == [[b"b0"], [b"b1"], [b"b2"]]


def test_it_never_acknowledges_a_frame_it_could_not_write_whole(tmp_path):
    # The file size limit makes the kernel write part of a frame, then refuse the rest: that
    # append must fail (never acknowledged) and must not leave a torn frame in front of the
    # appends that succeed once space is back.
    script = textwrap.dedent(
        """
        import json, resource, signal, sys
        from ingest.normalize import Batch, ContainerMeta
        from ingest.store.spool import Spool
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        meta = ContainerMeta("t", "c", "", "", "", "", "{}", None)
        def batch(n):
            return Batch([meta], [(0, 10**18, 10**18, 1, None, 0, f"line {n} ".encode() * 40, None, None)])
        spool = Spool(sys.argv[1], "w")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))
        acked, failed = [], 0
        for n in range(20):
            try:
                spool.append(batch(n))
                acked.append(n)
            except OSError:
                failed += 1
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        for n in range(20, 23):
            spool.append(batch(n))
            acked.append(n)
        print(json.dumps({"acked": acked, "failed": failed}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=True
    )
    outcome = json.loads(result.stdout)
    assert outcome["failed"] > 0, "the size limit never bit; the test proves nothing"
    seen = []
    Spool(tmp_path, "w").replay(lambda b, ref: seen.append(int(b.rows[0][6].split()[1])))
    assert seen == outcome["acked"]


# --- replay through the real writer -----------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_it_stores_a_replayed_frame_once_even_if_its_segment_survives(tmp_path, clean_logs):
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir, "test-inproc")
    spool.append(batch_of("s0", "s1", cid="c1"))
    spool.append(batch_of("s2", cid="c1"))
    spool.close()
    saved = tmp_path / "saved"
    shutil.copytree(spool_dir, saved)
    with WriterHarness(spool_dir) as store:
        store.write([Record(line="live", container_id="c1")])  # replay comes first: order kept
    assert [r["line"] for r in log_rows()] == ["s0", "s1", "s2", "live"]
    assert not Spool(spool_dir, "x").has_pending()
    # A crash between the replay's commit and the segment's deletion leaves the segment behind.
    for segment in saved.glob("*.spool"):
        shutil.copy(segment, spool_dir / segment.name)
    with WriterHarness(spool_dir) as store:
        store.write([Record(line="live-2", container_id="c1")])
    assert [r["line"] for r in log_rows()] == ["s0", "s1", "s2", "live", "live-2"]
    assert not Spool(spool_dir, "x").has_pending()


# --- a real outage ------------------------------------------------------------------------------
def stored_seqs(pg, tenant: str) -> dict[str, list[int]]:
    """container id -> sequence numbers in id order, read from the private cluster."""
    out: dict[str, list[int]] = {}
    rows = pg.query(
        "SELECT c.container_id, l.line FROM logs l JOIN containers c ON c.id = l.ckey "
        "WHERE c.tenant = %s ORDER BY l.id",
        (tenant,),
    )
    for cid, line in rows:
        out.setdefault(cid, []).append(seq_of(line))
    return out


@pytest.fixture
def outage_ingest(private_db, tmp_path):
    port = free_port()
    driver_id, token = private_db.add_driver("http", f"127.0.0.1:{port}", "tenant-p")
    proc = IngestProcess(tmp_path, writer=f"outage-{os.getpid()}", DATABASE_URL=private_db.url)
    proc.start(wait_for_drivers=[driver_id])
    yield proc, f"http://127.0.0.1:{port}/api/v1/push", token
    proc.stop()


@pytest.mark.parametrize("stop_mode", ["fast", "immediate"])
def test_it_replays_what_it_spooled_while_postgres_was_down(private_db, outage_ingest, stop_mode):
    proc, url, token = outage_ingest
    with PushStream(url, token, containers=("c0", "c1", "c2"), lines_per_container=7) as sender:
        before = sender.wait_acked(300)
        private_db.stop(stop_mode)
        proc.wait_stats(lambda s: s["spooled"] > 0 and not s["db_up"])
        during = sender.wait_acked(before + 600)  # all of these were answered from the spool
        private_db.start()
        proc.wait_stats(lambda s: s["db_up"] and s["spool_bytes"] == 0)
        sender.wait_acked(during + 300)
    proc.wait_stats(lambda s: s["queued"] == 0 and s["spool_bytes"] == 0)
    assert sender.refused == []
    assert sender.errors == []
    stored = stored_seqs(private_db, "tenant-p")
    # Exactly what was acknowledged: nothing lost, nothing twice, and per container in the
    # order it was sent (ids increase with the sender's sequence numbers).
    assert stored == sender.acked
    # Everything acknowledged during the outage went through the spool (and, being stored now,
    # was replayed from it).
    assert proc.stats()["spooled"] >= during - before
