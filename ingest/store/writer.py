"""The single batching writer: the only place log rows are committed.

One thread per ingest process: take a batch from the pipeline, normalise it, COPY it into
`logs` with a ledger row in one transaction, acknowledge the senders, then hand the committed
rows to fan-out. When Postgres is unreachable, batches are fsynced to the spool instead (and
acknowledged); while the spool holds anything, new batches are spooled too so that order per
container is kept, and a replay drains it once Postgres answers again.
"""

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

import psycopg

from ingest.normalize import Batch, Limits, normalize_batch
from ingest.pipeline import Pipeline
from ingest.store import dedup, partitions
from ingest.store.containers import ContainerKeys
from ingest.store.copy import COPY_SQL, encode_rows
from ingest.store.schema import ID_BLOCK
from ingest.store.spool import Spool

log = logging.getLogger(__name__)

LEDGER_SQL = (
    "INSERT INTO log_batches (writer, first_id, last_id, rows, ts_min, ts_max, spool_ref) VALUES "
    "(%s, %s, %s, %s, to_timestamp(%s::double precision / 1e6), to_timestamp(%s::double precision / 1e6), %s)"
)
RECONNECT_EVERY_S = 1.0
DDL_LOCK_TIMEOUT_MS = 100


class CommittedBatch:
    """What fan-out needs after commit: rows with their ids and container keys."""

    __slots__ = ("batch", "ckeys", "first_id")

    def __init__(self, batch: Batch, ckeys: list[int], first_id: int):
        self.batch = batch
        self.ckeys = ckeys
        self.first_id = first_id


def default_writer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class BatchWriter:
    """Consumes batches from a Pipeline; `batch_size`/wait are declared on the pipeline."""

    def __init__(
        self,
        pipeline: Pipeline,
        conninfo: str,
        spool: Spool,
        limits: Limits,
        name: str,
        on_commit: Callable[[CommittedBatch], None] | None = None,
    ):
        self.pipeline = pipeline
        self.conninfo = conninfo
        self.spool = spool
        self.limits = limits
        self.name = name
        self.on_commit = on_commit
        self._conn: psycopg.Connection | None = None
        self._keys = ContainerKeys()
        self._days: set[date] = set()
        self._next_connect = 0.0
        self._thread: threading.Thread | None = None
        self.db_up = False

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="logsite-writer", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def run(self) -> None:
        while True:
            records, start = self.pipeline.take()
            if not records:
                if self.pipeline.closed:
                    break
                self._replay_guarded()
                continue
            try:
                batch = normalize_batch(records, self.limits)
                self.consume_batch(batch, start, start + len(records))
            except Exception as e:
                # An unexpected failure must cost this batch an error answer (senders retry),
                # never the thread: without it nothing would ever be acknowledged again.
                log.exception("batch of %d lines failed", len(records))
                self.pipeline.finished(start, start + len(records), error=f"{type(e).__name__}: {e}")
        self._replay_guarded()
        self.spool.close()
        if self._conn is not None:
            self._conn.close()

    # --- one batch ---------------------------------------------------------------------------
    def consume_batch(self, batch: Batch, start: int, end: int) -> None:
        committed = None
        if batch.ref is None:
            batch.ref = f"{self.name}:{uuid.uuid4().hex}"
        if not self.spool.has_pending() or self._replay_if_possible():
            committed = self._try_commit(batch)
        if committed is None:
            try:
                self.spool.append(batch)
            except OSError as e:
                log.error("cannot spool %d lines: %s", len(batch.rows), e)
                self.pipeline.finished(start, end, error=f"database down and spool failed: {e}")
                return
            self.pipeline.counters.spooled += len(batch.rows)
        elif committed.ckeys:
            self.pipeline.counters.committed += len(committed.batch.rows)
        self.pipeline.counters.batches += 1
        self.pipeline.finished(start, end)
        if committed is not None:
            self._fan_out(committed)

    def _fan_out(self, committed: CommittedBatch) -> None:
        if not committed.ckeys or self.on_commit is None:
            return
        try:
            self.on_commit(committed)
        except Exception:
            log.exception("fan-out failed after commit (rows are stored)")

    def _try_commit(self, batch: Batch) -> CommittedBatch | None:
        conn = self._connection()
        if conn is None:
            return None
        try:
            return self._commit_recreating_days(conn, batch, batch.ref, first_attempt=True)
        except psycopg.OperationalError as e:
            log.warning("database unavailable (%s); spooling", e)
            self._drop_connection()
            return None
        except psycopg.Error:
            # Not an outage: Postgres refused this data. Retrying would refuse it forever and a
            # sender would re-send it forever, so it is kept aside durably and counted instead.
            log.exception("batch of %d lines refused by Postgres; quarantined", len(batch.rows))
            self.quarantine(batch)
            return CommittedBatch(batch, [], 0)

    def quarantine(self, batch: Batch) -> None:
        Spool(self.spool.directory / "quarantine", self.name).append(batch)
        self.pipeline.counters.quarantined += len(batch.rows)

    def _commit_recreating_days(
        self, conn, batch: Batch, spool_ref: str | None, first_attempt: bool = False
    ) -> CommittedBatch:
        try:
            return self._commit(conn, batch, spool_ref, first_attempt)
        except psycopg.errors.CheckViolation:
            # `logs` has no CHECK but its partition bounds: a late line for a day that
            # retention dropped after this writer cached it. Forget the cache so the day is
            # created again (ingest/store/day_drop.py), and retry once.
            self._days.clear()
            self._keys.forget()
            return self._commit(conn, batch, spool_ref, first_attempt)

    def _commit(
        self, conn: psycopg.Connection, batch: Batch, spool_ref: str | None, first_attempt: bool = False
    ) -> CommittedBatch:
        try:
            with conn.cursor() as cur:
                self._ensure_partitions(conn, min(r[1] for r in batch.rows), max(r[1] for r in batch.rows))
                with conn.transaction():
                    # A batch seen before (spooled after a failed or unanswered COMMIT) may be
                    # stored already; its first attempt cannot be.
                    if spool_ref is not None and not first_attempt:
                        cur.execute("SELECT 1 FROM log_batches WHERE spool_ref = %s", (spool_ref,))
                        if cur.fetchone():
                            return CommittedBatch(batch, [], 0)  # replayed before a crash; keep once
                    batch, copies = dedup.claim(cur, batch)
                    if not batch.rows:
                        committed = CommittedBatch(batch, [], 0)
                    else:
                        committed = self._insert(cur, batch, spool_ref)
        except BaseException:
            # The transaction rolled back, and with it any container or tenant row first
            # inserted in it: their cached keys would make later rows point at nothing.
            self._keys.forget()
            raise
        self.pipeline.counters.deduplicated += copies
        return committed

    def _insert(self, cur, batch: Batch, spool_ref: str | None) -> CommittedBatch:
        """Rows and their ledger entry, inside the caller's transaction."""
        ts_min = min(r[1] for r in batch.rows)
        ts_max = max(r[1] for r in batch.rows)
        ckeys = self._keys.resolve(cur, batch.metas)
        first_id = self._reserve_ids(cur, len(batch.rows))
        with cur.copy(COPY_SQL) as copy:
            copy.write(encode_rows(batch.rows, ckeys, first_id))
        cur.execute(
            LEDGER_SQL,
            (
                self.name,
                first_id,
                first_id + len(batch.rows) - 1,
                len(batch.rows),
                ts_min // 1000,
                ts_max // 1000,
                spool_ref,
            ),
        )
        return CommittedBatch(batch, ckeys, first_id)

    def _reserve_ids(self, cur, count: int) -> int:
        if count > ID_BLOCK:
            raise ValueError(f"batch of {count} rows exceeds the id block of {ID_BLOCK}")
        cur.execute("SELECT nextval('logs_id_seq')")
        return cur.fetchone()[0]

    def _ensure_partitions(self, conn, ts_min_ns: int, ts_max_ns: int) -> None:
        first = datetime.fromtimestamp(ts_min_ns / 1e9, UTC).date()
        last = datetime.fromtimestamp(ts_max_ns / 1e9, UTC).date()
        day = first
        while day <= last:
            if day not in self._days:
                with conn.transaction(), conn.cursor() as cur:
                    # Never queue behind DDL on `logs` (retention dropping this very day): the
                    # timeout fails the batch into the spool, and the replay creates the day.
                    cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{DDL_LOCK_TIMEOUT_MS}ms",))
                    partitions.ensure_day(cur, day)
                self._days.add(day)
            day = date.fromordinal(day.toordinal() + 1)

    # --- spool replay ------------------------------------------------------------------------
    def _replay_guarded(self) -> None:
        try:
            self._replay_if_possible()
        except Exception:
            log.exception("spool replay failed; the spool is kept for the next attempt")

    def _replay_if_possible(self) -> bool:
        """Drains the spool into Postgres; True when the spool is empty afterwards."""
        if not self.spool.has_pending():
            return True
        conn = self._connection()
        if conn is None:
            return False

        def apply(batch: Batch, ref: str) -> None:
            try:
                committed = self._commit_recreating_days(conn, batch, ref)
            except psycopg.OperationalError:
                raise
            except psycopg.Error:
                log.exception("spooled batch %s refused by Postgres; quarantined", ref)
                self.quarantine(batch)
                return
            self._fan_out(committed)

        try:
            replayed = self.spool.replay(apply)
        except psycopg.OperationalError as e:
            log.warning("spool replay interrupted: %s", e)
            self._drop_connection()
            return False
        if replayed:
            log.info("replayed %d spooled batches", replayed)
        return True

    # --- connection --------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection | None:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        now = time.monotonic()
        if now < self._next_connect:
            return None
        self._next_connect = now + RECONNECT_EVERY_S
        try:
            self._conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError as e:
            if self.db_up:
                log.warning("database unreachable: %s", e)
            self.db_up = False
            return None
        self.db_up = True
        self._keys.forget()
        self._days.clear()
        return self._conn

    def _drop_connection(self) -> None:
        self.db_up = False
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection is already broken
                self._conn.close()
        self._conn = None


def conninfo_from_settings() -> str:
    from django.conf import settings
    from psycopg.conninfo import make_conninfo

    db = settings.DATABASES["default"]
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }
    params.update(db.get("OPTIONS") or {})
    return make_conninfo(**{k: v for k, v in params.items() if v})
