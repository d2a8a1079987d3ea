"""A COMMIT whose answer never arrives: the batch is stored, but the writer cannot know it.

A TCP proxy between the writer and Postgres passes the COMMIT of the first batch (the server
commits it) and then cuts the connection before the answer comes back. The writer spools the
batch as not stored; the replay must find it in the ledger by the batch's ref and store nothing
twice.
"""

import socket
import threading
import time

import pytest
from django.db import connection

from ingest.record import Record
from tests.conftest import log_rows
from tests.support.writer import WriterHarness

pytestmark = pytest.mark.django_db(transaction=True)


class CommitCuttingProxy:
    """Forwards to Postgres; the first COMMIT after a COPY reaches the server, its answer doesn't."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed = True
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            state = {"copied": False, "cut": False}
            threading.Thread(target=self._client_to_server, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(server, client, state), daemon=True).start()

    def _client_to_server(self, client, server, state) -> None:
        while data := _recv(client):
            if b"COPY logs" in data:
                state["copied"] = True
            server.sendall(data)
            if self.armed and state["copied"] and b"COMMIT\x00" in data:
                self.armed = False
                state["cut"] = True
                time.sleep(0.5)  # the server commits; its answer is not passed on
                self.cuts += 1
                for sock in (client, server):
                    sock.close()
                return

    def _server_to_client(self, server, client, state) -> None:
        while not state["cut"] and (data := _recv(server)):
            if state["cut"]:
                return
            try:
                client.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()


def _recv(sock) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def test_it_does_not_store_a_batch_twice_when_the_commit_answer_is_lost(tmp_path, clean_logs):
    settings_dict = connection.settings_dict
    proxy = CommitCuttingProxy((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432)))
    conninfo = f"host=127.0.0.1 port={proxy.port} dbname={settings_dict['NAME']} user={settings_dict['USER']}"
    try:
        with WriterHarness(tmp_path / "spool", conninfo=conninfo) as store:
            store.write([Record(line=f"line {i}", container_id="c1") for i in range(50)])
            assert proxy.cuts == 1
            assert store.pipeline.counters.spooled == 50  # acknowledged from the spool
            deadline = time.monotonic() + 30
            while store.spool.has_pending() and time.monotonic() < deadline:
                time.sleep(0.1)  # the writer reconnects (once a second at most) and replays
            assert not store.spool.has_pending()
            store.write([Record(line="after", container_id="c1")])
    finally:
        proxy.close()
    lines = [r["line"] for r in log_rows()]
    assert lines == [f"line {i}" for i in range(50)] + ["after"]
