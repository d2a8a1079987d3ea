"""A real ingest process for the whole of an e2e module, and reading back what it stored.

The `ingest` fixture of tests/conftest.py is per test (its database is flushed after each); the
real-sender modules instead start one ingest process with every driver they need and tell the
tests' rows apart by container name, so each module pays for one process start, not one per case.
Such a module marks its tests `django_db` (not transactional, so nothing is flushed between
them): pytest-django creates the test database only when some collected test asks for it.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection

from ingest.models import Driver, Tenant
from tests.base import make_driver
from tests.support.processes import IngestProcess, test_database_url

ROW_SQL = (
    "SELECT c.tenant, c.container_id, c.name, c.image, c.host, l.id, l.ts, l.stream, l.level, l.line, "
    "l.attrs FROM logs l JOIN containers c ON c.id = l.ckey WHERE {where} ORDER BY l.id"
)
STREAMS = {1: "stdout", 2: "stderr"}


def free_port() -> int:
    """A port free for both TCP and UDP on loopback (the gelf and syslog drivers bind both)."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both TCP and UDP")


def require_test_database() -> None:
    """These helpers truncate tables: make sure they never run against a real database."""
    test_name = settings.DATABASES["default"]["TEST"]["NAME"]
    if connection.settings_dict["NAME"] != test_name:
        raise RuntimeError(
            f"not on the test database {test_name!r} but {connection.settings_dict['NAME']!r}: "
            "mark the module's tests django_db so that pytest-django creates it"
        )


@dataclass
class Row:
    tenant: str
    container_id: str
    name: str
    image: str
    host: str
    id: int
    ts: object
    stream: str
    level: int | None
    line: str
    attrs: dict = field(default_factory=dict)


class Store:
    """Reads `logs` of the test database from outside Django's test transaction machinery."""

    def __init__(self) -> None:
        require_test_database()
        self.conninfo = test_database_url()

    def rows(self, where: str, params: tuple = ()) -> list[Row]:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            found = conn.execute(ROW_SQL.format(where=where), params).fetchall()
        rows = []
        for tenant, cid, name, image, host, row_id, ts, stream, level, line, attrs in found:
            if isinstance(attrs, str):
                attrs = json.loads(attrs)
            stream = STREAMS.get(stream, "?")
            rows.append(Row(tenant, cid, name, image, host, row_id, ts, stream, level, line, attrs or {}))
        return rows

    def wait(
        self, where: str, params: tuple, done: Callable[[list[Row]], bool], timeout: float = 90
    ) -> list[Row]:
        """Polls until `done(rows)`; a bound on waiting, never a speed assertion."""
        deadline = time.monotonic() + timeout
        rows: list[Row] = []
        while time.monotonic() < deadline:
            rows = self.rows(where, params)
            if done(rows):
                return rows
            time.sleep(0.2)
        shown = [(r.stream, r.line[:50], len(r.line)) for r in rows]
        raise AssertionError(f"rows for {params} never complete after {timeout}s; have {shown}")

    def truncate(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute("TRUNCATE logs, log_batches, containers, log_dedup_keys CASCADE")


class Ingest:
    """Drivers saved in the test database and one `manage.py ingest` serving all of them."""

    def __init__(self, directory: Path, tenant_slug: str, writer: str):
        require_test_database()
        self.directory = directory
        self.tenant, _ = Tenant.objects.get_or_create(slug=tenant_slug, defaults={"name": tenant_slug})
        self.writer = writer
        self.drivers: dict[str, Driver] = {}
        self.tokens: dict[str, str] = {}
        self.ports: dict[str, int] = {}
        self.proc: IngestProcess | None = None

    def add(self, key: str, kind: str, bind: str | None = None, **options) -> int:
        port = free_port()
        driver, token = make_driver(kind, bind or f"127.0.0.1:{port}", tenant=self.tenant, **options)
        self.drivers[key], self.tokens[key], self.ports[key] = driver, token, port
        return port

    def start(self, **env) -> IngestProcess:
        self.proc = IngestProcess(self.directory, writer=self.writer, **env)
        return self.proc.start(wait_for_drivers=[d.id for d in self.drivers.values()], timeout=120)

    def stats(self, key: str, predicate: Callable[[dict], bool], timeout: float = 60) -> dict:
        assert self.proc is not None
        driver_id = str(self.drivers[key].id)
        stats = self.proc.wait_stats(lambda s: predicate(s["drivers"].get(driver_id, {})), timeout=timeout)
        return stats["drivers"][driver_id]

    def stop(self) -> None:
        """Stops the process and removes what it stored and the drivers, for the next module."""
        if self.proc is not None:
            self.proc.stop()
        Store().truncate()
        Driver.objects.filter(id__in=[d.id for d in self.drivers.values()]).delete()
        self.tenant.delete()
