"""Several ingest processes under one `manage.py ingest`: the supervisor.

One process runs Python on one core at a time (the GIL), so beyond a single core's worth of
lines ingest runs N copies of itself, each a complete ingest (receivers, pipeline, writer,
spool) under its own writer name. The kernel spreads the connections of HTTP-based drivers
over all of them (SO_REUSEPORT on one port), and so are syslog and gelf drivers bound to
`tcp://` only; a zmq SUB socket or a UDP port cannot be shared that way without splitting a
sender's stream, and fluentd remembers re-sent chunks per process, so those run in process 0.

The supervisor forwards SIGTERM/SIGINT (each child drains: what it acknowledged is committed or
spooled) and restarts a child that dies, so one crash does not take a port's share away.
"""

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from ingest.receivers.http_push import split_bind

log = logging.getLogger(__name__)

# Drivers whose receiver is an HTTP server: one request or connection is handled entirely by
# the process that accepted it, so any number of processes can share the port.
SHARED_KINDS = frozenset({"http", "plugin", "splunk", "journal"})
# Stream receivers whose connections are independent too, when bound to TCP alone (a UDP
# socket shared by processes would split a GELF sender's chunks). fluentd is not among them:
# its memory of stored chunks (for re-sends) is per process.
SHARED_WHEN_TCP_ONLY = frozenset({"syslog", "gelf"})
RESTART_DELAY_S = 1.0


def child_writer_name(base: str, index: int) -> str:
    """Process 0 keeps the base name, so a single-process installation keeps its spool."""
    return base if index == 0 else f"{base}-{index}"


def shares_port(kind: str, bind: str) -> bool:
    """Can several ingest processes serve this driver on one port? Port 0 cannot be shared."""
    try:
        _, port = split_bind(bind)
    except ValueError:
        return False  # the receiver itself reports the bad bind when it starts
    if port == 0:
        return False
    return kind in SHARED_KINDS or (kind in SHARED_WHEN_TCP_ONLY and bind.startswith("tcp://"))


def serves(kind: str, bind: str, index: int) -> bool:
    """Does ingest process `index` run this driver? Process 0 runs them all."""
    return index == 0 or shares_port(kind, bind)


class Supervisor:
    def __init__(self, count: int, base_name: str, extra_args: list[str]):
        self.count = count
        self.base_name = base_name
        self.extra_args = extra_args
        self.children: dict[int, subprocess.Popen] = {}
        self.stopping = False

    def command(self, index: int) -> list[str]:
        manage = Path(__file__).resolve().parents[1] / "manage.py"
        return [sys.executable, str(manage), "ingest", "--process", f"{index}/{self.count}", *self.extra_args]

    def start(self, index: int) -> None:
        self.children[index] = subprocess.Popen(self.command(index))
        log.info("ingest process %d/%d started (pid %d)", index, self.count, self.children[index].pid)

    def stop(self, signum=signal.SIGTERM, _frame=None) -> None:
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        for index in range(self.count):
            self.start(index)
        while True:
            for index, child in list(self.children.items()):
                code = child.poll()
                if code is None:
                    continue
                if self.stopping:
                    del self.children[index]
                    continue
                log.error("ingest process %d exited with %s; restarting it", index, code)
                time.sleep(RESTART_DELAY_S)
                if not self.stopping:
                    self.start(index)
            if self.stopping and not self.children:
                return 0
            time.sleep(0.2)
