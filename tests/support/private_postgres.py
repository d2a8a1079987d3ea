"""A private PostgreSQL cluster for tests that stop and start the database under ingest.

The machine's shared Postgres serves other test runs and must never be stopped, so outage tests
get their own cluster: initdb into a temporary directory, its own port and socket directory,
migrated with `manage.py migrate` like a real install. initdb refuses to run as root, so when
the tests run as root the cluster belongs to the `postgres` user (via runuser).
"""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from ingest.models import hash_token
from tests.support.processes import REPO

PG_BIN = Path(os.environ.get("LOGSITE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
CLUSTER_USER = "postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    def __init__(self, root: Path, port: int, dbname: str = "logsite"):
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "run"
        self.log = root / "postgres.log"
        self.port = port
        self.dbname = dbname

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.dbname}"

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={self.dbname} connect_timeout=5"

    # --- lifecycle ---------------------------------------------------------------------------
    def _as_owner(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", CLUSTER_USER, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def init(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(CLUSTER_USER)
            for path in (self.root, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._as_owner(
            PG_BIN / "initdb",
            "-D",
            self.data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        # fsync off: the tests simulate a database crash (immediate stop), not an OS crash, and
        # the kernel keeps everything Postgres wrote; it keeps this cluster cheap on a shared box.
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=40"
        )
        self._as_owner(
            PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "120", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_owner(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "120", "stop")

    def is_running(self) -> bool:
        cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", CLUSTER_USER, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, check=False).returncode == 0

    def ensure_running(self) -> None:
        if not self.is_running():
            self.start()

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            if self.is_running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def migrate(self) -> None:
        with psycopg.connect(
            self.conninfo.replace(f"dbname={self.dbname}", "dbname=postgres"), autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{self.dbname}"')
        env = dict(os.environ, DATABASE_URL=self.url)
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"migrate on the private cluster failed:\n{result.stdout}{result.stderr}")

    # --- data --------------------------------------------------------------------------------
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def reset(self) -> None:
        """Empties what the write path fills, so each test starts from nothing."""
        self.query("TRUNCATE logs, log_batches, containers, ingest_driver, ingest_tenant CASCADE")

    def add_driver(self, kind: str, bind: str, tenant: str | None) -> tuple[int, str]:
        """A driver as the admin would save it; returns (driver id, clear token)."""
        tenant_id = None
        if tenant is not None:
            [(tenant_id,)] = self.query(
                "INSERT INTO ingest_tenant (slug, name, created_at) VALUES (%s, %s, now()) "
                "ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                (tenant, tenant),
            )
        token = "lgs_private_" + os.urandom(12).hex()
        [(driver_id,)] = self.query(
            "INSERT INTO ingest_driver (name, kind, bind, tenant_id, token_hash, token_hint, enabled, "
            "options, updated_at) VALUES (%s, %s, %s, %s, %s, %s, true, '{}', now()) RETURNING id",
            (f"{kind}-{os.urandom(4).hex()}", kind, bind, tenant_id, hash_token(token), token[:8]),
        )
        return driver_id, token


@pytest.fixture(scope="session")
def private_postgres():
    """One private cluster per test session; tests stop and start it at will."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL server binaries not found in {PG_BIN} (set LOGSITE_TEST_PG_BIN)")
    pg = PrivatePostgres(Path(tempfile.mkdtemp(prefix="logsite-pg-")), free_port())
    try:
        pg.init()
        pg.start()
        pg.migrate()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def private_db(private_postgres):
    """The private cluster, running and empty, for one test."""
    private_postgres.ensure_running()
    private_postgres.reset()
    return private_postgres
