"""The real Pipeline + BatchWriter in the test process, on the test database.

For tests that need the write path itself (normalisation as stored, spool replay, the writer's
error handling) without the cost of a `manage.py ingest` subprocess. Nothing is replaced: the
writer commits with binary COPY into the test database and spools to a real directory.
"""

import asyncio
from pathlib import Path

from ingest.normalize import Limits
from ingest.pipeline import Pipeline
from ingest.record import Record
from ingest.store.spool import Spool
from ingest.store.writer import BatchWriter, conninfo_from_settings

SUBMIT_TIMEOUT_S = 30  # a hung writer fails the test instead of hanging the run


class WriterHarness:
    def __init__(
        self,
        spool_dir: Path,
        *,
        batch_lines: int = 5000,
        batch_wait_s: float = 0.005,
        queue_limit: int = 100_000,
        max_line_bytes: int = 256 * 1024,
        max_ts_age_days: int = 30,
        conninfo: str | None = None,
        name: str = "test-inproc",
        on_commit=None,
    ):
        self.pipeline = Pipeline(queue_limit=queue_limit, batch_lines=batch_lines, batch_wait_s=batch_wait_s)
        self.spool = Spool(spool_dir, name)
        self.limits = Limits(max_line_bytes=max_line_bytes, max_ts_age_ns=max_ts_age_days * 86400 * 10**9)
        self.writer = BatchWriter(
            self.pipeline,
            conninfo or conninfo_from_settings(),
            self.spool,
            self.limits,
            name,
            on_commit=on_commit,
        )

    def __enter__(self) -> "WriterHarness":
        self.writer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.pipeline.close()
        self.writer.join(SUBMIT_TIMEOUT_S)

    def write(self, records: list[Record]) -> None:
        """Submits and returns once the writer reports the records durable (raises otherwise)."""
        asyncio.run(asyncio.wait_for(self.pipeline.submit(records), SUBMIT_TIMEOUT_S))
