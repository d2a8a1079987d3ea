"""Trigram indexes for the hot (unsealed) days, block by block, once a block's rows have cooled.

The day being written has no full trigram index: it makes inserts ~8x dearer (sealing.py).
A *partial* GIN index whose predicate a row does not match costs an insert only the check of
its predicate (measured by bench/hot_index.py: 8 such indexes per leaf +3-5% backend CPU per
COPY row, 11 of them +11%, 23 +19-28%, one the rows match 8.3-8.9x), and new rows carry the
current time, which no completed block's predicate matches. So each hot leaf gets one partial
index per completed time block, `WHERE ts >= block start AND ts < block end`:

- block lengths come in levels, finest first (default 15, 60 and 360 minutes, each a multiple
  of the one before); a block is due once it ended `delay` ago (late lines that arrive
  afterwards are inserted into it like any index entry: a few rows, not the stream);
- a day is tiled with the coarsest blocks that have ended, the rest of it with the next finer
  level, and so on; once a coarser block is built, the finer ones it covers are dropped. A
  leaf thus carries at most 24h / coarsest + the sum of (ratio - 1) over the finer levels
  indexes (3 + 5 + 3 = 11 by default), which keeps the insert cost bounded, and the newest
  lines go without an index for at most the finest length plus `delay`;
- sealing builds the full-day index and then drops the day's blocks (sealing.py).

Each row is indexed once per level (then once more by sealing): the build rate bounds the
ingest rate the blocks keep up with (bench/hot_index.py, docs/retention.md).

The search cuts its time windows at block edges (search/walk.py: split) so the planner can
prove a block's predicate from the window's bounds and use its index; an invalid index (being
built, or a build that was interrupted) is never used by the planner, so the search is
correct whatever state the blocks are in. Every build is CREATE INDEX CONCURRENTLY: SHARE
UPDATE EXCLUSIVE on one leaf, which the writer's COPY does not wait for. Each step is
idempotent; an interrupted build leaves an invalid index that the next run drops and builds
again. The newest blocks are built first: the search reads newest first.
"""

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from psycopg import sql

from ingest.store import trgm_index
from ingest.store.partitions import leaf_names, partition_name

# `{leaf}_trgm_HHMM_HHMM`: the block's first and last minute of the UTC day (2400 = midnight).
_NAME = re.compile(r"^logs_p(\d{8})_h\d+_trgm_(\d{2})(\d{2})_(\d{2})(\d{2})$")
MINUTES_PER_DAY = 1440


@dataclass(frozen=True, order=True)
class Block:
    day: date
    start: int  # minutes after midnight UTC
    end: int

    @property
    def lo(self) -> datetime:
        return datetime.combine(self.day, datetime.min.time(), UTC) + timedelta(minutes=self.start)

    @property
    def hi(self) -> datetime:
        return datetime.combine(self.day, datetime.min.time(), UTC) + timedelta(minutes=self.end)

    def covers(self, other: "Block") -> bool:
        return self.day == other.day and self.start <= other.start and other.end <= self.end

    def index_name(self, leaf: str) -> str:
        return f"{leaf}_trgm_{_hhmm(self.start)}_{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}{minutes % 60:02d}"


def parse_index_name(name: str) -> tuple[str, Block] | None:
    """(leaf, block) of a block index's name; None for any other name."""
    m = _NAME.match(name)
    if m is None:
        return None
    day = datetime.strptime(m.group(1), "%Y%m%d").date()
    start = int(m.group(2)) * 60 + int(m.group(3))
    end = int(m.group(4)) * 60 + int(m.group(5))
    return name[: name.index("_trgm_")], Block(day, start, end)


def check_sizes(sizes: list[int]) -> None:
    """Block lengths in minutes, finest first: each divides a day and the next."""
    if not sizes:
        raise ValueError("no block lengths given")
    for finer, size in zip([None, *sizes], sizes, strict=False):
        if size <= 0 or MINUTES_PER_DAY % size:
            raise ValueError(f"a block length ({size}) must divide a day (e.g. 15, 30, 60, 120, 360 minutes)")
        if finer is not None and (size <= finer or size % finer):
            raise ValueError(f"each block length must be a multiple of the one before ({finer}, {size})")


def wanted_blocks(day: date, now: datetime, sizes: list[int], delay: timedelta) -> list[Block]:
    """The blocks `day` should have indexed at `now`, newest first: the coarsest blocks that
    ended `delay` ago, and within each that has not, the next finer level's, and so on."""
    check_sizes(sizes)
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    cooled = (now - delay - midnight) // timedelta(minutes=1)
    blocks = []

    def tile(start: int, end: int, level: int) -> None:
        size = sizes[level]
        for at in range(start, end, size):
            if at + size <= cooled:
                blocks.append(Block(day, at, at + size))
            elif level > 0 and at < cooled:
                tile(at, at + size, level - 1)

    tile(0, MINUTES_PER_DAY, len(sizes) - 1)
    return sorted(blocks, reverse=True)


def day_indexes(cur, day: date) -> dict[tuple[str, Block], bool]:
    """The block indexes on the leaves of `day`: (leaf, block) -> valid."""
    cur.execute(
        "SELECT i.relname, x.indisvalid FROM pg_inherits h "
        "JOIN pg_index x ON x.indrelid = h.inhrelid JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE h.inhparent = to_regclass(%s) AND x.indpred IS NOT NULL",
        (partition_name(day),),
    )
    found = {}
    for name, valid in cur.fetchall():
        parsed = parse_index_name(name)
        if parsed is not None:
            found[parsed] = valid
    return found


def index_day(conn, day: date, now: datetime, sizes: list[int], delay: timedelta) -> dict:
    """Builds the blocks `day` lacks and drops the ones a valid merged block replaced.
    `conn` must be in autocommit (CREATE INDEX CONCURRENTLY)."""
    built, dropped, started = [], 0, time.monotonic()
    with conn.cursor() as cur:
        leaves = leaf_names(cur, partition_name(day))
        existing = day_indexes(cur, day)
        for block in wanted_blocks(day, now, sizes, delay):
            fresh = 0
            for leaf in leaves:
                fresh += ensure_block_index(cur, leaf, block, existing.get((leaf, block)))
                existing[(leaf, block)] = True
            if fresh:
                built.append(f"{_hhmm(block.start)}-{_hhmm(block.end)}")
        # A smaller block goes once a valid block on the same leaf covers it (a search
        # planned meanwhile uses either: DROP INDEX CONCURRENTLY waits for it to finish).
        # An invalid one that is not wanted any more is what an interrupted build left.
        for (leaf, block), valid in sorted(existing.items()):
            replaced = any(
                ok and other != block and other.covers(block)
                for (other_leaf, other), ok in existing.items()
                if other_leaf == leaf
            )
            if replaced or not valid:
                trgm_index.drop(cur, block.index_name(leaf))
                dropped += 1
    return {
        "day": day.isoformat(),
        "blocks_built": built,
        "indexes_dropped": dropped,
        "seconds": round(time.monotonic() - started, 1),
    }


def ensure_block_index(cur, leaf: str, block: Block, valid: bool | None) -> bool:
    """True when the index was (re)built."""
    where = sql.SQL("ts >= {} AND ts < {}").format(sql.Literal(block.lo), sql.Literal(block.hi))
    return trgm_index.ensure(cur, block.index_name(leaf), leaf, valid, where)


def drop_leaf_blocks(cur, leaf: str) -> int:
    """Drops every block index of `leaf` (sealing, once the leaf's full index is valid)."""
    cur.execute(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = to_regclass(%s) AND x.indpred IS NOT NULL",
        (leaf,),
    )
    names = [name for (name,) in cur.fetchall() if parse_index_name(name) is not None]
    for name in names:
        trgm_index.drop(cur, name)
    return len(names)


# The valid block indexes (a search reads them with its extent, in the same round trip): what
# the planner goes by. A LIKE over pg_class costs ~0.3 ms; a join through pg_inherits 3x more.
VALID_BLOCKS_SQL = (
    "SELECT array_agg(c.relname::text) FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid "
    "WHERE c.relname LIKE %(block_names)s AND x.indisvalid "
    "AND c.relnamespace = current_schema()::regnamespace"
)
BLOCK_NAMES = r"logs\_p%\_trgm\_%"


def block_spans(names: list[str] | None, sealed: set[date]) -> list[tuple[datetime, datetime]]:
    """[lo, hi) of every block among the index `names` on a day not in `sealed`, for the
    search to cut its windows at (search/walk.py)."""
    spans = set()
    for name in names or ():
        parsed = parse_index_name(name)
        if parsed is not None and parsed[1].day not in sealed:
            spans.add((parsed[1].lo, parsed[1].hi))
    return sorted(spans)


def indexed_spans(cur) -> list[tuple[datetime, datetime]]:
    cur.execute("SELECT array_agg(day) FROM log_partitions WHERE sealed_at IS NOT NULL")
    sealed = set(cur.fetchone()[0] or ())
    cur.execute(VALID_BLOCKS_SQL, {"block_names": BLOCK_NAMES})
    return block_spans(cur.fetchone()[0], sealed)


def days_to_index(cur, today: date, hot_days: int) -> list[date]:
    """The unsealed days of the hot window, newest first (older unsealed days are sealing's)."""
    cur.execute(
        "SELECT day FROM log_partitions WHERE sealed_at IS NULL AND day BETWEEN %s AND %s ORDER BY day DESC",
        (today - timedelta(days=hot_days), today),
    )
    return [row[0] for row in cur.fetchall()]
