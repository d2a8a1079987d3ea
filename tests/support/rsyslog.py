"""A private Debian `rsyslogd` for tests: its own config, pid file, work directory and loopback
port (chosen by rsyslog, read back from a port file), writing what it receives as JSON lines.

It never touches the system's rsyslog: no /etc/rsyslog.conf, no /dev/log, no default pid file.
Fails loudly when rsyslogd (or, for TLS, its gtls driver) is missing.
"""

import contextlib
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

RSYSLOGD = "/usr/sbin/rsyslogd"
GTLS_DRIVER = "lmnsd_gtls.so"

# One JSON object per received message; control characters are kept (not escaped as #012) on
# receive and escaped by JSON on output, so a test sees the message as sent.
CONFIG = """
global(workDirectory="{work}" maxMessageSize="64k" parser.escapeControlCharactersOnReceive="off"
       {tls_global})
module(load="imtcp" {tls_module})
input(type="imtcp" address="127.0.0.1" port="{port}" listenPortFileName="{port_file}")
template(name="json" type="list") {{
  constant(value="{{")
  property(outname="time" name="timereported" dateFormat="rfc3339" format="jsonf") constant(value=",")
  property(outname="host" name="hostname" format="jsonf") constant(value=",")
  property(outname="app" name="app-name" format="jsonf") constant(value=",")
  property(outname="procid" name="procid" format="jsonf") constant(value=",")
  property(outname="msgid" name="msgid" format="jsonf") constant(value=",")
  property(outname="severity" name="syslogseverity" format="jsonf") constant(value=",")
  property(outname="facility" name="syslogfacility" format="jsonf") constant(value=",")
  property(outname="protocol" name="protocol-version" format="jsonf") constant(value=",")
  property(outname="msg" name="msg" format="jsonf")
  constant(value="}}\\n")
}}
action(type="omfile" file="{out}" template="json")
"""


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost (openssl CLI)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is needed to make test certificates (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    p = {
        name: directory / name
        for name in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "san.ext")
    }
    p["san.ext"].write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        p["ca.key"],
        "-out",
        p["ca.pem"],
        "-days",
        "2",
        "-subj",
        "/CN=Logsite test CA",
    )
    run("req", *ec, "-keyout", p["server.key"], "-out", p["server.csr"], "-subj", "/CN=localhost")
    run(
        "x509",
        "-req",
        "-in",
        p["server.csr"],
        "-CA",
        p["ca.pem"],
        "-CAkey",
        p["ca.key"],
        "-CAcreateserial",
        "-out",
        p["server.pem"],
        "-days",
        "2",
        "-extfile",
        p["san.ext"],
    )
    return p


class Rsyslogd:
    def __init__(self, directory: Path, tls_certs: dict[str, Path] | None = None):
        if not Path(RSYSLOGD).exists():
            raise RuntimeError(f"{RSYSLOGD} is missing: apt-get install rsyslog")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        self.out = self.dir / "received.jsonl"
        self.port_file = self.dir / "port"
        self.pid_file = self.dir / "rsyslogd.pid"
        self.log_path = self.dir / "rsyslogd.log"
        tls_global = tls_module = ""
        if tls_certs is not None:
            if not list(Path("/usr/lib").glob(f"*/rsyslog/{GTLS_DRIVER}")):
                raise RuntimeError("rsyslog's TLS driver is missing: apt-get install rsyslog-gnutls")
            tls_global = (
                f'defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="{tls_certs["ca.pem"]}" '
                f'defaultNetstreamDriverCertFile="{tls_certs["server.pem"]}" '
                f'defaultNetstreamDriverKeyFile="{tls_certs["server.key"]}"'
            )
            tls_module = 'streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"'
        self.config = self.dir / "rsyslog.conf"
        self._tls = (tls_global, tls_module)
        self.proc: subprocess.Popen | None = None
        self.port = 0  # 0: rsyslog picks one; a restart keeps the port it had

    def _write_config(self) -> None:
        self.config.write_text(
            CONFIG.format(
                work=self.dir / "work",
                port=self.port,
                port_file=self.port_file,
                out=self.out,
                tls_global=self._tls[0],
                tls_module=self._tls[1],
            )
        )

    def start(self, timeout: float = 30) -> "Rsyslogd":
        self._write_config()
        self.port_file.unlink(missing_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.config), "-i", str(self.pid_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited with {self.proc.returncode}:\n{self.log_text()}")
            if self.port == 0:
                with contextlib.suppress(FileNotFoundError, ValueError):
                    self.port = int(self.port_file.read_text().strip())
            # rsyslog writes the port file only for port 0; a restart on a known port is ready
            # once it accepts connections.
            if self.port and self._listening():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"rsyslogd did not listen in {timeout}s:\n{self.log_text()}")

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def messages(self) -> list[dict]:
        with contextlib.suppress(FileNotFoundError):
            return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]
        return []

    def wait_messages(self, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        messages: list[dict] = []
        while time.monotonic() < deadline:
            messages = self.messages()
            if len(messages) >= count:
                return messages
            time.sleep(0.1)
        raise AssertionError(f"rsyslogd wrote {len(messages)} of {count} messages:\n{self.log_text()}")

    def log_text(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""
