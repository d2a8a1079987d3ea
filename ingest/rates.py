"""Lines and bytes per container and per driver over time, for the status page and /metrics.

Write side (ingest): the writer thread counts every committed batch per container key and per
driver (one pass over the batch's rows; bench/container_rates.py measures it), and the event
loop adds the counts to Redis hashes every couple of seconds, in two bucket sizes:
    logsite:rates:60:<start epoch>    1-minute buckets, kept 3 minutes   (for the 1-minute rate)
    logsite:rates:300:<start epoch>   5-minute buckets, kept 70 minutes  (for the 1-hour rate)
        fields "c:<ckey>:n" / "c:<ckey>:b" (lines / bytes of line text), "d:<driver id>:n" / ":b"
    logsite:seen    field "c:<ckey>" / "d:<driver id>" -> Unix time of the last flush that counted it
Several ingest processes add into the same hashes. Why not count rows in `logs` instead:
docs/decisions/0004-container-rates.md.

Read side (web): `read_rates` sums the buckets that overlap the window, the oldest one by its
overlapping share: 2 one-minute buckets for the minute, 13 five-minute buckets for the hour.
"""

import threading
import time
from dataclasses import dataclass

# (bucket seconds, buckets summed for the window, seconds kept)
MINUTE = (60, 2, 3 * 60)
HOUR = (300, 13, 70 * 60)
RATES_KEY = "logsite:rates:{size}:{start}"
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
        pipe = redis.pipeline(transaction=False)
        for size, _count, keep in (MINUTE, HOUR):
            key = RATES_KEY.format(size=size, start=int(now // size) * size)
            for name, (n, b) in counts.items():
                pipe.hincrby(key, f"{name}:n", n)
                pipe.hincrby(key, f"{name}:b", b)
            pipe.expire(key, keep)
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
    names = [f"{f}:{x}" for f in fields for x in ("n", "b")]
    pipe = redis.pipeline(transaction=False)
    for size, count, _keep in (MINUTE, HOUR):
        current = int(now // size) * size
        for i in range(count):
            pipe.hmget(RATES_KEY.format(size=size, start=current - i * size), names)
    pipe.hmget(SEEN_KEY, fields)
    replies = pipe.execute()
    minute, hour, seen = replies[: MINUTE[1]], replies[MINUTE[1] : -1], replies[-1]
    share_minute = 1 - (now % MINUTE[0]) / MINUTE[0]
    share_hour = 1 - (now % HOUR[0]) / HOUR[0]
    out = {}
    for j, name in enumerate(fields):
        n1m, b1m = _window(minute, j, share_minute)
        n1h, b1h = _window(hour, j, share_hour)
        out[name] = Rates(n1m, n1h, b1m, b1h, float(seen[j]) if seen[j] else None)
    return out


def _window(buckets: list, j: int, share_of_oldest: float) -> tuple[float, float]:
    """Lines and bytes of field j over buckets (newest first), the oldest weighted by its share."""
    lines = sum(int(bk[2 * j] or 0) for bk in buckets[:-1]) + int(buckets[-1][2 * j] or 0) * share_of_oldest
    nbytes = (
        sum(int(bk[2 * j + 1] or 0) for bk in buckets[:-1])
        + int(buckets[-1][2 * j + 1] or 0) * share_of_oldest
    )
    return lines, nbytes
