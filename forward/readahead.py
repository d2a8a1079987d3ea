"""Read the next chunk while the current one is being sent.

A forwarding run spends its wall time in two waits that do not depend on each other: Postgres
producing the next rows and the destination answering for the current ones (psycopg and the
HTTP client both release the GIL while they wait). When a chunk was cut by the batch limits
(more rows are pending), the next one is read on a second connection in a helper thread,
starting where the current chunk ends. If the send fails part-way the read-ahead is dropped and
reading restarts from the cursor, so it never changes what is sent, only when it is read.
"""

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg

from forward.cursor import Position
from forward.rows import Chunk, RowReader


class ReadAhead:
    def __init__(self, conninfo: str, make_reader):
        self._conninfo = conninfo
        self._make_reader = make_reader  # cursor -> RowReader
        self._pool: ThreadPoolExecutor | None = None
        self._conn: psycopg.Connection | None = None
        self._reader: RowReader | None = None
        self._future: Future | None = None
        self._start: Position | None = None

    def _read(self, position: Position, args: tuple) -> Chunk:
        if self._reader is None:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
            self._reader = self._make_reader(self._conn.cursor())
        return self._reader.read(position, *args)

    def start(self, position: Position, *args) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="forward-readahead")
        self.drop()
        self._future = self._pool.submit(self._read, position, args)
        self._start = position

    def take(self, position: Position) -> Chunk | None:
        """The chunk read ahead from `position`, or None when there is none for it."""
        future, start = self._future, self._start
        self._future = self._start = None
        if future is None:
            return None
        chunk = future.result()  # a read error surfaces here, as it would have inline
        return chunk if start == position else None

    def drop(self) -> None:
        if self._future is not None:
            self._future.cancel()
            # A read nobody wants any more: its error does not matter.
            with contextlib.suppress(Exception):
                self._future.result()
        self._future = self._start = None

    def close(self) -> None:
        self.drop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
