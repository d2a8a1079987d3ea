"""Read the stored lines of ledger batches for one target, as sink rows with their positions.

Each batch is read by its id range (BRIN on id) and its ts range (partition pruning; the ledger
keeps ts_min/ts_max for exactly this), joined with `containers` for the target's tenant,
service and container conditions. Container metadata comes from a small per-run cache rather
than the join, so a row costs only its own columns.

A `Chunk` remembers, for every row, where the cursor may move once that row (and all before
it) is acknowledged; batches whose rows were all filtered out still move the cursor.
"""

import json
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate

from psycopg import sql
from psycopg.types.json import JsonbBinaryLoader

from forward import cursor as ledger
from forward.cursor import LedgerBatch, Position
from forward.sinks.row import ForwardRow
from ingest.store.schema import STREAM_NAMES

# The writer stores ts_min/ts_max through a float conversion (µs → double seconds →
# to_timestamp), which is off by well under 1 µs for today's dates and under 0.1 ms even at
# year 9999 (tests/forward/test_rows.py checks the writer's own SQL). The slack covers that and
# nothing more: every millisecond of it makes each batch's index scan (ckey, ts, id) walk that
# much more of the container's neighbouring lines, and at 1 s it cost Postgres 4x the CPU per
# forwarded line.
TS_SLACK = timedelta(milliseconds=1)
LEDGER_PAGE = 500

ROWS_SQL = """
SELECT l.id, l.ckey, (extract(epoch FROM l.ts) * 1000000)::int8 * 1000 + l.ts_ns, l.stream, l.level,
       l.line, l.attrs
  FROM logs l JOIN containers c ON c.id = l.ckey
 WHERE l.id > %(after)s AND l.id <= %(last)s
   AND l.ts >= %(ts_min)s AND l.ts <= %(ts_max)s
   AND {conditions}
 ORDER BY l.id
 LIMIT %(limit)s
"""

CONTAINERS_SQL = (
    "SELECT id, tenant, service, container_id, name, image, host, labels FROM containers WHERE id = ANY(%s)"
)


@dataclass
class _Segment:
    """What was read of one batch: rows[start:end] matched (their ids in `ids`), and the scan
    reached id `scan_end`; `complete` when it reached the batch's end."""

    batch: LedgerBatch
    start: int
    end: int
    ids: list[int]
    scan_end: int
    complete: bool

    @property
    def position(self) -> Position:
        if self.complete:
            return self.batch.done
        return Position(self.batch.xid, self.batch.id, self.scan_end)


@dataclass
class Chunk:
    rows: list[ForwardRow] = field(default_factory=list)
    nbytes: int = 0
    segments: list[_Segment] = field(default_factory=list)
    start: Position | None = None
    oldest_age_s: float = 0.0  # age of the oldest batch read (for batching by time)
    more: bool = False  # pending rows remain beyond this chunk

    @property
    def end(self) -> Position:
        return self.position_after(len(self.rows))

    def position_after(self, sent: int) -> Position:
        """Where the cursor may move once the first `sent` rows are acknowledged."""
        position = self.start
        for seg in self.segments:
            if sent >= seg.end:
                position = seg.position
                if not seg.complete:
                    break
                continue
            if sent > seg.start:
                return Position(seg.batch.xid, seg.batch.id, seg.ids[sent - seg.start - 1])
            break
        return position


class RowReader:
    """Reads rows for one target; one instance per forwarding run (its container cache)."""

    def __init__(self, cur, tenant: str, conditions: sql.Composable, params: dict, matcher=None):
        self.cur = cur
        # Rows are fetched in binary, where jsonb is parsed by psycopg (Django's connection
        # registers a text-only loader that would hand attrs over as a string).
        cur.adapters.register_loader("jsonb", JsonbBinaryLoader)
        self.query = sql.SQL(ROWS_SQL).format(conditions=conditions)
        self.params = params
        self.matcher = matcher
        self.tenant = tenant
        self._containers: dict[int, tuple] = {}

    def read(
        self,
        position: Position,
        max_rows: int,
        max_bytes: int,
        min_ts: datetime | None = None,
        min_ts_until: Position | None = None,
    ) -> Chunk:
        """Rows after `position`, whole batches where possible, up to max_rows/max_bytes.

        min_ts (a replay): in batches up to `min_ts_until`, rows older than it are passed over.
        """
        chunk = Chunk(start=position)
        batches = ledger.pending_batches(self.cur, position, LEDGER_PAGE)
        chunk.more = len(batches) == LEDGER_PAGE
        if batches:
            chunk.oldest_age_s = batches[0].age_s
        for batch in batches:
            if len(chunk.rows) >= max_rows or chunk.nbytes >= max_bytes:
                chunk.more = True
                break
            after = batch.first_id - 1
            if (batch.xid, batch.id) == (position.xid, position.batch_id):
                after = max(after, position.row_id)
            cutoff = None
            if min_ts is not None and (min_ts_until is None or batch.done <= min_ts_until):
                cutoff = min_ts
            if not self._read_batch(chunk, batch, after, max_rows - len(chunk.rows), max_bytes, cutoff):
                chunk.more = True
                break
        return chunk

    def _read_batch(self, chunk: Chunk, batch: LedgerBatch, after: int, room: int, max_bytes: int, cutoff):
        """Appends the batch's matching rows (ids > after); True when it read to the batch's end."""
        ts_min = batch.ts_min - TS_SLACK
        if cutoff is not None and cutoff > ts_min:
            ts_min = cutoff
        params = dict(self.params)
        params.update(
            after=after, last=batch.last_id, ts_min=ts_min, ts_max=batch.ts_max + TS_SLACK, limit=room
        )
        # Binary: the ints arrive as ints (no text parsing), a quarter less client CPU per row.
        self.cur.execute(self.query, params, binary=True)
        fetched = self.cur.fetchall()
        complete = len(fetched) < room
        missing = {r[1] for r in fetched if r[1] not in self._containers}
        if missing:
            self._load_containers(missing)
        # Whole-list operations rather than one Python loop doing everything per row: this is
        # the hot path of forwarding (bench/forward.py).
        containers, names = self._containers, STREAM_NAMES
        made = [
            ForwardRow(ts_ns, line, names.get(stream, "unknown"), level, *containers[ckey], attrs)
            for _, ckey, ts_ns, stream, level, line, attrs in fetched
        ]
        if self.matcher is None:
            keep = range(len(made))
        else:
            keep = [i for i, row in enumerate(made) if self.matcher(row)]
        # The byte budget: rows are taken up to and including the one that reaches it; the rest
        # of the batch is read next time.
        totals = list(accumulate((len(made[i].line) for i in keep), initial=chunk.nbytes))
        taken = bisect_left(totals, max_bytes, lo=1)
        if taken < len(totals):
            keep = keep[:taken]
            last = keep[-1]
            complete = complete and last == len(fetched) - 1
            scan_end = fetched[last][0]
        else:
            scan_end = fetched[-1][0] if fetched else after
        start = len(chunk.rows)
        chunk.rows.extend([made[i] for i in keep])
        chunk.nbytes = totals[len(keep)]
        ids = [fetched[i][0] for i in keep]
        chunk.segments.append(_Segment(batch, start, len(chunk.rows), ids, scan_end, complete))
        return complete

    def _load_containers(self, ckeys: set[int]) -> None:
        self.cur.execute(CONTAINERS_SQL, (list(ckeys),))
        for ckey, tenant, service, cid, name, image, host, labels in self.cur.fetchall():
            if isinstance(labels, str):
                labels = json.loads(labels)
            self._containers[ckey] = (tenant, service, cid, name, image, host, labels or None)
