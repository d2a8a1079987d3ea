"""Lines and bytes per container and per driver over time, for the status page and /metrics.

Write side (ingest): the writer thread counts every committed batch per container key and per
driver (one pass over the batch's rows; bench/container_rates.py measures it), and the event
loop adds the counts to per-minute Redis hashes every couple of seconds:
    logsite:rates:<minute epoch>   field "c:<ckey>:n" / "c:<ckey>:b" (lines / bytes of line text),
                                   "d:<driver id>:n" / ":b"; kept 62 minutes
    logsite:seen                   field "c:<ckey>" / "d:<driver id>" -> Unix time of the last flush
                                   that counted it
Several ingest processes add into the same hashes. Why not count rows in `logs` instead:
docs/decisions/0007-container-rates.md.

Read side (web): `read_rates` sums the buckets: the 1-minute rate is the current minute plus the
overlapping share of the previous one, the 1-hour rate likewise over 61 buckets.
"""

import threading
import time
from dataclasses import dataclass

BUCKET_S = 60
KEEP_S = 62 * 60
RATES_KEY = "logsite:rates:{minute}"
SEEN_KEY = "logsite:seen"
SEEN_KEEP_S = 7 * 86400
_PRUNE_EVERY_S = 3600


def container_field(ckey: int) -> str:
    return f"c:{ckey}"


def driver_field(driver_id: int) -> str:
    return f"d:{driver_id}"


class RateCounter:
    """Counts on the writer thread, flushes from the event loop."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}
        self._next_prune = 0.0

    def count(self, committed) -> None:
        batch = committed.batch
        n = [0] * len(batch.metas)
        b = [0] * len(batch.metas)
        for row in batch.rows:
            idx = row[0]
            n[idx] += 1
            b[idx] += len(row[6])
        with self._lock:
            counts = self._counts
            for idx, meta in enumerate(batch.metas):
                if not n[idx]:
                    continue
                fields = [container_field(committed.ckeys[idx])]
                if meta.driver_id is not None:
                    fields.append(driver_field(meta.driver_id))
                for name in fields:
                    slot = counts.get(name)
                    if slot is None:
                        counts[name] = [n[idx], b[idx]]
                    else:
                        slot[0] += n[idx]
                        slot[1] += b[idx]

    def take(self) -> dict[str, list[int]]:
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts

    def put_back(self, counts: dict[str, list[int]]) -> None:
        with self._lock:
            for name, (n, b) in counts.items():
                slot = self._counts.setdefault(name, [0, 0])
                slot[0] += n
                slot[1] += b

    async def flush(self, redis, now: float | None = None) -> None:
        counts = self.take()
        if not counts:
            return
        now = time.time() if now is None else now
        key = RATES_KEY.format(minute=int(now // BUCKET_S) * BUCKET_S)
        pipe = redis.pipeline(transaction=False)
        for name, (n, b) in counts.items():
            pipe.hincrby(key, f"{name}:n", n)
            pipe.hincrby(key, f"{name}:b", b)
        pipe.expire(key, KEEP_S)
        pipe.hset(SEEN_KEY, mapping=dict.fromkeys(counts, f"{now:.3f}"))
        try:
            await pipe.execute()
        except Exception:
            self.put_back(counts)  # Redis away: count them in the next flush instead
            raise
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY_S
            await prune_seen(redis, now)


async def prune_seen(redis, now: float) -> None:
    """Forget containers not seen for a week, so the hash does not grow forever."""
    seen = await redis.hgetall(SEEN_KEY)
    old = [k for k, v in seen.items() if now - float(v) > SEEN_KEEP_S]
    if old:
        await redis.hdel(SEEN_KEY, *old)


@dataclass(frozen=True)
class Rates:
    lines_1m: float = 0.0
    lines_1h: float = 0.0
    bytes_1m: float = 0.0
    bytes_1h: float = 0.0
    last_seen: float | None = None

    @property
    def per_s_1m(self) -> float:
        return self.lines_1m / 60

    @property
    def per_s_1h(self) -> float:
        return self.lines_1h / 3600


def read_rates(redis, fields: list[str], now: float | None = None) -> dict[str, Rates]:
    """Rates of the given fields (container_field / driver_field), with a sync Redis client."""
    if not fields:
        return {}
    now = time.time() if now is None else now
    current = int(now // BUCKET_S) * BUCKET_S
    share = 1 - (now - current) / BUCKET_S  # of the oldest bucket that overlaps the window
    names = [f"{f}:{x}" for f in fields for x in ("n", "b")]
    pipe = redis.pipeline(transaction=False)
    for i in range(61):
        pipe.hmget(RATES_KEY.format(minute=current - i * BUCKET_S), names)
    pipe.hmget(SEEN_KEY, fields)
    *buckets, seen = pipe.execute()
    out = {}
    for j, name in enumerate(fields):
        per_bucket = [(int(bk[2 * j] or 0), int(bk[2 * j + 1] or 0)) for bk in buckets]
        n1m = per_bucket[0][0] + per_bucket[1][0] * share
        b1m = per_bucket[0][1] + per_bucket[1][1] * share
        n1h = sum(n for n, _ in per_bucket[:60]) + per_bucket[60][0] * share
        b1h = sum(b for _, b in per_bucket[:60]) + per_bucket[60][1] * share
        out[name] = Rates(n1m, n1h, b1m, b1h, float(seen[j]) if seen[j] else None)
    return out
