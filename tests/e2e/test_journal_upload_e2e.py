"""Debian's systemd-journal-upload into the journal receiver of a real ingest process.

Two inputs: a file in Journal Export Format (what `journalctl -o export` writes) and a journal
file (made from such an export by systemd-journal-remote) read with `--file … --follow=no`.
Each is uploaded twice without saved state, as an uploader does after a failed POST: the second
upload must store nothing. The token is the URL's password (curl sends Basic auth).
"""

from __future__ import annotations

import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.logsite import Ingest, Row, Store

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

SYSTEMD = Path("/usr/lib/systemd")
UPLOAD = SYSTEMD / "systemd-journal-upload"
REMOTE = SYSTEMD / "systemd-journal-remote"
IMAGE = "registry.example:5000/team/web:1.2"


@pytest.fixture(scope="module")
def logsite(django_db_setup, django_db_blocker, tmp_path_factory) -> Ingest:
    for tool in (UPLOAD, REMOTE):
        if not tool.exists():
            raise RuntimeError(
                f"{tool} not found: run scripts/install-system-packages (systemd-journal-remote)"
            )
    with django_db_blocker.unblock():
        ingest = Ingest(tmp_path_factory.mktemp("journal"), "e2e-journal", writer="e2e-journal")
        try:
            ingest.add("journal", "journal")
            ingest.start()
        except BaseException:
            ingest.stop()
            raise
    yield ingest
    with django_db_blocker.unblock():
        ingest.stop()


def field(name: str, value: bytes) -> bytes:
    """Text form where journalctl uses it, else the binary-safe form (length-prefixed)."""
    if all(b >= 32 or b == 9 for b in value) and value.isascii():
        return name.encode() + b"=" + value + b"\n"
    return name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"


class Journal:
    """Entries as `journalctl -o export` writes them: Docker journald-driver lines and a service's."""

    def __init__(self, container_name: str):
        self.boot = uuid.uuid4().hex
        self.seqnum_id = uuid.uuid4().hex
        self.container_id = uuid.uuid4().hex + uuid.uuid4().hex
        self.container_name = container_name
        self.start_us = time.time_ns() // 1000
        self.entries: list[bytes] = []

    def add(self, message: bytes, priority: int, container: bool = True) -> None:
        seq = len(self.entries) + 1
        realtime = self.start_us + seq
        cursor = f"s={self.seqnum_id};i={seq:x};b={self.boot};m={seq:x};t={realtime:x};x={seq:x}"
        fields = [
            ("__CURSOR", cursor),
            ("__REALTIME_TIMESTAMP", str(realtime)),
            ("__MONOTONIC_TIMESTAMP", str(1000 + seq)),
            ("_BOOT_ID", self.boot),
            ("PRIORITY", str(priority)),
            ("_HOSTNAME", "node-1"),
            ("_TRANSPORT", "journal"),
        ]
        if container:
            fields += [
                ("CONTAINER_ID", self.container_id[:12]),
                ("CONTAINER_ID_FULL", self.container_id),
                ("CONTAINER_NAME", self.container_name),
                ("CONTAINER_TAG", self.container_id[:12]),
                ("SYSLOG_IDENTIFIER", self.container_id[:12]),
                ("IMAGE_NAME", IMAGE),
                ("_COMM", "dockerd"),
            ]
        else:
            fields += [("SYSLOG_IDENTIFIER", "cron"), ("_SYSTEMD_UNIT", "cron.service"), ("_COMM", "cron")]
        data = b"".join(field(name, value.encode()) for name, value in fields) + field("MESSAGE", message)
        self.entries.append(data + b"\n")

    def export(self, path: Path) -> Path:
        path.write_bytes(b"".join(self.entries))
        return path


def sample(name: str) -> tuple[Journal, list[tuple[str, str]]]:
    """A journal with a plain, a multi-line, an invalid UTF-8, an empty and a service's entry."""
    journal = Journal(name)
    expected = []
    for message, priority, container in [
        (b"GET / 200", 6, True),
        (b"Traceback (most recent call last):\n  boom", 3, True),
        (b"caf\xe9", 6, True),
        (b"", 6, True),
        (b"(root) CMD (run-parts /etc/cron.hourly)", 6, False),
    ]:
        journal.add(message, priority, container)
        expected.append((message.decode("utf-8", "replace"), "stderr" if priority <= 3 else "stdout"))
    return journal, expected


def upload(logsite: Ingest, *args: str, token: str | None = None) -> subprocess.CompletedProcess[bytes]:
    url = f"http://logsite:{token or logsite.tokens['journal']}@127.0.0.1:{logsite.ports['journal']}"
    return subprocess.run([str(UPLOAD), f"--url={url}", *args], capture_output=True, timeout=120)


def stored(journal: Journal, count: int) -> list[Row]:
    return Store().wait(
        "l.attrs->>'dedup_key' LIKE %s", (f"journal:{journal.boot}:%",), lambda rows: len(rows) >= count
    )


def check(rows: list[Row], journal: Journal, expected: list[tuple[str, str]]) -> None:
    assert [(r.line, r.stream) for r in rows] == expected
    containers = {(r.tenant, r.container_id, r.name, r.image, r.host) for r in rows[:-1]}
    assert containers == {("e2e-journal", journal.container_id, journal.container_name, IMAGE, "node-1")}
    service = rows[-1]
    assert (service.container_id, service.name) == ("node-1", "")  # no container: filed under its host
    assert (service.attrs["SYSLOG_IDENTIFIER"], service.attrs["_SYSTEMD_UNIT"]) == ("cron", "cron.service")
    assert [r.level for r in rows] == [6, 3, 6, 6, 6]
    assert len({r.attrs["dedup_key"] for r in rows}) == len(rows)


def test_it_uploads_an_export_file_and_stores_a_resent_one_once(logsite: Ingest, tmp_path: Path):
    journal, expected = sample("web-export")
    export = journal.export(tmp_path / "entries.export")

    first = upload(logsite, str(export))
    assert first.returncode == 0, first.stderr
    check(stored(journal, len(expected)), journal, expected)

    again = upload(logsite, str(export))
    assert again.returncode == 0, again.stderr
    stats = logsite.proc.wait_stats(lambda s: s["deduplicated"] >= len(expected))
    assert stats["deduplicated"] == len(expected)
    check(Store().rows("l.attrs->>'dedup_key' LIKE %s", (f"journal:{journal.boot}:%",)), journal, expected)


def test_it_uploads_a_journal_file_without_following_and_stores_a_resent_one_once(
    logsite: Ingest, tmp_path: Path
):
    journal, expected = sample("web-file")
    made = subprocess.run(
        [str(REMOTE), f"--output={tmp_path / 'remote.journal'}", str(journal.export(tmp_path / "e.export"))],
        capture_output=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    before = logsite.proc.stats()["deduplicated"]

    for _ in range(2):
        sent = upload(logsite, f"--file={tmp_path / 'remote.journal'}", "--follow=no")
        assert sent.returncode == 0, sent.stderr
        rows = stored(journal, len(expected))

    # The journal file gives its entries cursors of its own: the keys are those, not the export's.
    assert all(f";b={journal.boot};" in r.attrs["dedup_key"] for r in rows)
    assert journal.seqnum_id not in rows[0].attrs["dedup_key"]
    stats = logsite.proc.wait_stats(lambda s: s["deduplicated"] >= before + len(expected))
    assert stats["deduplicated"] == before + len(expected)
    check(Store().rows("l.attrs->>'dedup_key' LIKE %s", (f"journal:{journal.boot}:%",)), journal, expected)


def test_it_refuses_an_upload_with_a_wrong_token(logsite: Ingest, tmp_path: Path):
    journal, _ = sample("web-refused")
    refused = upload(logsite, str(journal.export(tmp_path / "e.export")), token="lgs_wrong")
    assert refused.returncode != 0
    assert b"401" in refused.stderr
    assert Store().rows("l.attrs->>'dedup_key' LIKE %s", (f"journal:{journal.boot}:%",)) == []
