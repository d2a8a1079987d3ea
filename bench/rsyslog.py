"""A private rsyslogd (imtcp → ompgsql) for the comparison in bench/receivers.py.

Its own config, pidfile, work directory and loopback port; it never reads /etc/rsyslog.conf or
/etc/rsyslog.d and never touches the system's rsyslog. ompgsql writes one row per message
into `rsyslog_bench` with its default settings (one INSERT per message, batched in
transactions of the default dequeue batch size), which is how it is deployed.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

TABLE_SQL = """
DROP TABLE IF EXISTS rsyslog_bench;
CREATE TABLE rsyslog_bench (
    id        bigserial PRIMARY KEY,
    reported  timestamptz,
    host      text,
    tag       text,
    severity  smallint,
    msg       text
);
"""

CONFIG = """
global(workDirectory="{work}")
module(load="imtcp")
module(load="ompgsql")
template(name="pgrow" type="list" option.stdsql="on") {{
  constant(value="INSERT INTO rsyslog_bench (reported, host, tag, severity, msg) VALUES ('")
  property(name="timereported" dateFormat="pgsql")
  constant(value="', '")
  property(name="hostname")
  constant(value="', '")
  property(name="syslogtag")
  constant(value="', ")
  property(name="syslogseverity")
  constant(value=", '")
  property(name="msg")
  constant(value="')")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="pg")
ruleset(name="pg") {{
  action(type="ompgsql" server="{host}" port="{pgport}" user="{user}" pass="{password}" db="{db}"
         template="pgrow"{queue})
}}
"""


class Rsyslogd:
    def __init__(self, directory: Path, conninfo: str, port: int, batch: int = 0):
        self.batch = batch
        self.directory = directory
        self.conninfo = conninfo
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Rsyslogd:
        binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        if not Path(binary).exists() or not Path("/usr/lib/x86_64-linux-gnu/rsyslog/ompgsql.so").exists():
            raise RuntimeError("rsyslogd with ompgsql not found: apt-get install rsyslog rsyslog-pgsql")
        params = conninfo_to_dict(self.conninfo)
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(TABLE_SQL)
        work = self.directory / "work"
        work.mkdir(parents=True, exist_ok=True)
        config = self.directory / "rsyslog.conf"
        config.write_text(
            CONFIG.format(
                work=work,
                port=self.port,
                host=params.get("host", "127.0.0.1"),
                pgport=params.get("port", 5432),
                user=params.get("user", "postgres"),
                password=params.get("password", ""),
                db=params["dbname"],
                queue=self.queue(),
            )
        )
        log = open(self.directory / "rsyslogd.log", "wb")  # noqa: SIM115 - the child's for its lifetime
        self.proc = subprocess.Popen(
            [binary, "-n", "-f", str(config), "-i", str(self.directory / "rsyslogd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.directory / "rsyslogd.log").read_text()[-2000:]
                raise RuntimeError(f"rsyslogd exited: {log}")
            try:
                socket_probe(self.port)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("rsyslogd did not listen in time")

    def queue(self) -> str:
        """With a batch size: the action gets its own queue, and a transaction per that many rows."""
        if not self.batch:
            return ""
        return f' queue.type="LinkedList" queue.size="1000000" queue.dequeueBatchSize="{self.batch}"'

    def stored(self, conn: psycopg.Connection) -> int:
        return conn.execute("SELECT coalesce(max(id), 0) FROM rsyslog_bench").fetchone()[0]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def socket_probe(port: int) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
