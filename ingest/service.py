"""The ingest process: every enabled driver's receiver, the pipeline and the single writer.

Lifecycle (run by `manage.py ingest`):
- start the writer thread, then a receiver per enabled driver;
- every LOGSITE_DRIVER_POLL_SECONDS (or at once on a Redis notification) re-read the drivers
  and the multi-line rules, start, stop or restart receivers whose configuration changed and
  hand the rules and tenant-label settings to the pipeline's Preparer — no restart needed;
- flush multi-line groups whose timeout passed;
- publish counters to Redis for the status page and /metrics (ingest/rates.py for the
  per-container counts);
- on SIGTERM/SIGINT: stop the receivers (no new input), let the writer commit or spool
  everything already accepted, then exit. Nothing acknowledged is lost.
"""

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import time
from pathlib import Path

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections

from ingest import fanout
from ingest.multiline_rules import load_rule_specs
from ingest.normalize import Limits
from ingest.notify import DRIVERS_CHANGED_CHANNEL
from ingest.pipeline import Pipeline
from ingest.prepare import Preparer
from ingest.processes import child_writer_name, serves, shares_port
from ingest.rates import RateCounter
from ingest.receivers.base import DriverConfig, Receiver
from ingest.receivers.registry import build_receiver
from ingest.store.spool import Spool
from ingest.store.writer import BatchWriter, conninfo_from_settings

log = logging.getLogger(__name__)


STATS_KEY = "logsite:ingest:{writer}"
STATS_TTL_S = 60
MAX_INFLIGHT_FANOUT = 64


def writer_name() -> str:
    return settings.LOGSITE_WRITER_NAME or socket.gethostname()


def load_drivers() -> dict[int, DriverConfig]:
    from ingest.models import Driver

    close_old_connections()
    drivers = Driver.objects.filter(enabled=True).select_related("tenant")
    return {d.id: DriverConfig.from_model(d) for d in drivers}


def load_config():
    """(enabled drivers, enabled multi-line rules), read together on every reload."""
    drivers = load_drivers()
    return drivers, load_rule_specs()


class IngestService:
    def __init__(
        self, only_driver_ids: set[int] | None = None, process_index: int = 0, process_count: int = 1
    ):
        self.name = child_writer_name(writer_name(), process_index)
        self.only = only_driver_ids
        self.process_index = process_index
        self.process_count = process_count
        self.prepare = Preparer()
        self.pipeline = Pipeline(
            queue_limit=settings.LOGSITE_QUEUE_LINES,
            batch_lines=settings.LOGSITE_BATCH_LINES,
            batch_wait_s=settings.LOGSITE_BATCH_WAIT_MS / 1000,
            prepare=self.prepare,
            batch_bytes=settings.LOGSITE_BATCH_BYTES,
        )
        self.rates = RateCounter()
        spool_dir = Path(settings.LOGSITE_SPOOL_DIR) / self.name
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._spool_lock = _lock_directory(spool_dir)
        self.spool = Spool(spool_dir, self.name)
        self.limits = Limits(
            max_line_bytes=settings.LOGSITE_MAX_LINE_BYTES,
            max_ts_age_ns=settings.LOGSITE_MAX_TS_AGE_DAYS * 86400 * 10**9,
        )
        self.receivers: dict[int, Receiver] = {}
        self.start_errors: dict[int, str] = {}
        self._stopping = asyncio.Event()
        self._reload = asyncio.Event()
        self._inflight = 0
        self.fanout_skipped = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        self.channel_layer = get_channel_layer()
        self._publish_lock = asyncio.Lock()
        self.writer = BatchWriter(
            self.pipeline,
            conninfo_from_settings(),
            self.spool,
            self.limits,
            self.name,
            on_commit=self._on_commit,
        )
        self.writer.start()
        self.redis = aioredis.from_url(settings.REDIS_URL)
        tasks = [
            asyncio.create_task(self._watch_drivers()),
            asyncio.create_task(self._listen_for_changes()),
            asyncio.create_task(self._publish_stats()),
            asyncio.create_task(self._flush_groups()),
        ]
        log.info("ingest %s started (pid %d)", self.name, os.getpid())
        await self._stopping.wait()
        log.info(
            "ingest %s stopping: closing receivers, draining %d queued lines",
            self.name,
            self.pipeline.pending(),
        )
        for task in tasks:
            task.cancel()
        for receiver in list(self.receivers.values()):
            await self._stop_receiver(receiver)
        self.pipeline.close()
        await loop.run_in_executor(None, self.writer.join)
        # Give in-flight fan-out a moment; the rows are committed either way.
        for _ in range(50):
            if self._inflight == 0:
                break
            await asyncio.sleep(0.02)
        await self._write_stats()
        await self.redis.aclose()
        log.info(
            "ingest %s stopped: %d committed, %d spooled, %d dropped",
            self.name,
            self.pipeline.counters.committed,
            self.pipeline.counters.spooled,
            self.pipeline.counters.dropped,
        )

    # --- drivers -----------------------------------------------------------------------------
    async def _watch_drivers(self) -> None:
        while True:
            try:
                drivers, rules = await sync_to_async(load_config, thread_sensitive=False)()
                await self.apply_drivers(drivers)
                self.apply_rules(rules)
                await self._write_stats()  # so waiters (status page, tests) see new drivers at once
            except Exception:
                log.exception("cannot load drivers; keeping the current receivers")
            self._reload.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload.wait(), timeout=settings.LOGSITE_DRIVER_POLL_SECONDS)

    async def _listen_for_changes(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(DRIVERS_CHANGED_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._reload.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis away: the periodic poll still applies changes
                log.debug("driver change notifications unavailable: %s", e)
                await asyncio.sleep(5)

    def apply_rules(self, rules) -> None:
        if self.prepare.rules_differ(rules):
            # Groups opened under the old rules are written as they are; new lines meet the new rules.
            self.pipeline.flush_held()
            self.prepare.rules.update(rules)
            log.info("multi-line rules: %d enabled", len(rules))

    async def _flush_groups(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            self.pipeline.flush_expired()

    async def apply_drivers(self, wanted: dict[int, DriverConfig]) -> None:
        if self.only is not None:
            wanted = {k: v for k, v in wanted.items() if k in self.only}
        if self.process_count > 1:
            index = self.process_index
            wanted = {k: v for k, v in wanted.items() if serves(v.kind, v.bind, index)}
        self.prepare.tenant_labels.update(wanted.values())
        for driver_id, receiver in list(self.receivers.items()):
            if wanted.get(driver_id) != receiver.driver:
                await self._stop_receiver(receiver)
                del self.receivers[driver_id]
        for driver_id, config in wanted.items():
            if driver_id in self.receivers:
                continue
            try:
                receiver = build_receiver(config, self.pipeline)
                # Every process binds a shared driver's port; the kernel spreads connections.
                receiver.reuse_port = self.process_count > 1 and shares_port(config.kind, config.bind)
                await receiver.start()
            except Exception as e:
                message = f"{type(e).__name__}: {e}"
                if self.start_errors.get(driver_id) != message:
                    log.error(
                        "driver %s (%s) on %s cannot start: %s",
                        config.name,
                        config.kind,
                        config.bind,
                        message,
                    )
                self.start_errors[driver_id] = message
                continue
            self.start_errors.pop(driver_id, None)
            self.receivers[driver_id] = receiver
            log.info("driver %s (%s) listening on %s", config.name, config.kind, config.bind)

    async def _stop_receiver(self, receiver: Receiver) -> None:
        try:
            await receiver.stop()
        except Exception:
            log.exception("stopping driver %s failed", receiver.driver.name)

    # --- fan-out -----------------------------------------------------------------------------
    def _on_commit(self, committed) -> None:
        """Called in the writer thread after commit; fan-out runs on the event loop."""
        self.rates.count(committed)  # before any skip: the status counts every committed row
        if self._inflight >= MAX_INFLIGHT_FANOUT:
            # Redis is behind: skipping is safe because clients refill id gaps from the store.
            self.fanout_skipped += 1
            return
        self._inflight += 1
        future = asyncio.run_coroutine_threadsafe(self._publish_in_order(committed), self.loop)
        future.add_done_callback(self._fanout_done)

    async def _publish_in_order(self, committed) -> None:
        # One batch at a time, in commit order (asyncio.Lock wakes waiters first in, first out):
        # concurrent group_sends overtake one another, and a tail client that resumes after the
        # last id it holds would take an earlier batch arriving late for lines it already has.
        async with self._publish_lock:
            await fanout.publish(self.channel_layer, committed)

    def _fanout_done(self, _future) -> None:
        self._inflight -= 1

    # --- stats -------------------------------------------------------------------------------
    def stats(self) -> dict:
        c = self.pipeline.counters
        return {
            "writer": self.name,
            "pid": os.getpid(),
            "process": [self.process_index, self.process_count],
            "at": time.time(),
            "db_up": self.writer.db_up,
            "queued": self.pipeline.pending(),
            "accepted": c.accepted,
            "committed": c.committed,
            "spooled": c.spooled,
            "quarantined": c.quarantined,
            "deduplicated": c.deduplicated,
            "dropped": c.dropped,
            "batches": c.batches,
            "spool_bytes": self.spool.depth_bytes(),
            "fanout_skipped": self.fanout_skipped,
            "held": self.prepare.held,
            "multiline_rules": len(self.prepare.rules.specs),
            "multiline_merged": self.prepare.grouper.merged_lines,
            "dropped_by_container": [[t, cid, n] for (t, cid), n in c.dropped_by_container.items()],
            "drivers": {
                str(r.driver.id): {
                    "name": r.driver.name,
                    "kind": r.driver.kind,
                    **r.stats.as_dict(),
                    "tenant_label_refused": self.prepare.tenant_labels.refused.get(r.driver.id, 0),
                }
                for r in self.receivers.values()
            },
            "start_errors": {str(k): v for k, v in self.start_errors.items()},
        }

    async def _write_stats(self) -> None:
        try:
            await self.redis.set(STATS_KEY.format(writer=self.name), json.dumps(self.stats()), ex=STATS_TTL_S)
            await self.rates.flush(self.redis)
        except Exception as e:
            log.debug("cannot publish ingest stats: %s", e)

    async def _publish_stats(self) -> None:
        while True:
            await self._write_stats()
            await asyncio.sleep(2)


def _lock_directory(directory: Path):
    """Two ingest processes with the same writer name would interleave one spool: refuse."""
    handle = open(directory / ".lock", "w")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(
            f"another ingest process already uses {directory}; give each process its own LOGSITE_WRITER_NAME"
        ) from None
    return handle
