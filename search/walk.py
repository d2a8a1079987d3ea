"""Time windows for reading a search newest first (or oldest first) and stopping at a page.

A common term has its first 100 hits in the newest seconds of data; reading a whole day of
hits to sort them costs hundreds of ms (100k+ rows). A rare term has none there; reading it
window by window of fixed size would cost one trigram index scan per window. So the windows
grow: by GROW_EMPTY while nothing matched, else to what the rate seen so far says the rest of
the page needs (with room to spare, at most GROW_MAX times the last). The windows tile the
range without overlap, so each row is read at most once and the pages come out in order.
"""

from datetime import datetime, timedelta
from itertools import pairwise

FIRST = timedelta(seconds=10)
FIRST_ROWS = 2000
GROW_EMPTY = 4
GROW_MAX = 64
SPARE = 1.5


def next_width(width: timedelta, covered: timedelta, found: int, need: int) -> timedelta:
    if found == 0:
        return width * GROW_EMPTY
    wanted = covered * (need / found) * SPARE
    return min(max(wanted, width * 2), width * GROW_MAX)


def first_width(rows_per_s: float | None) -> timedelta:
    """About FIRST_ROWS lines' worth of time at the containers' rate (FIRST when unknown): a
    firehose of 200 containers and one quiet container both start with a window that costs
    a few ms to read."""
    if not rows_per_s:
        return FIRST
    return min(max(timedelta(seconds=FIRST_ROWS / rows_per_s), timedelta(seconds=1)), timedelta(days=1))


def windows(
    lo: datetime,
    hi: datetime,
    newest_first: bool,
    now: datetime | None = None,
    first: timedelta = FIRST,
    spans: list[tuple[datetime, datetime]] = (),  # type: ignore[assignment]
):
    """Yields [start, end) windows tiling [lo, hi); send() each (rows found so far, rows still
    needed). Newest first with `now`, the first window runs from `now - FIRST` to `hi`, so the
    (empty) days ahead and lines stamped in the future cost one window, not a walk.

    `spans` are the [lo, hi) stretches one trigram index answers (a sealed day, a hot day's
    block): a window whose far edge falls inside one reaches to the span's edge when the hits
    seen so far say the extension holds no more than the rows still needed (the first window:
    when that at most doubles it). A query on an index costs about the same whatever its width
    (mostly planning, ~0.3 ms a leaf), so a rare term reads each indexed span once instead of
    in 4x-growing slices."""
    width, covered, found, need = first, timedelta(0), None, 0
    first = newest_first and now is not None and lo < now < hi
    while lo < hi:
        if newest_first:
            start = max(lo, (now if first else hi) - width)
            snapped = max(lo, _span_start(start, spans))
            if _cheap(start - snapped, width, covered, found, need):
                start = snapped
            covered += (now if first else hi) - start
            end, hi, first = hi, start, False
        else:
            start, end = lo, min(hi, lo + width)
            snapped = min(hi, _span_end(end, spans))
            if _cheap(snapped - end, width, covered, found, need):
                end = snapped
            covered += end - start
            lo = end
        reply = yield start, end
        if reply is None:
            return
        found, need = reply
        if need <= 0:
            return
        width = next_width(width, covered, found, need)


def _cheap(extension: timedelta, width: timedelta, covered: timedelta, found: int | None, need: int) -> bool:
    """Before anything was read (the first window), an extension up to the window's own width."""
    if found is None:
        return extension <= width
    return found == 0 or found * (extension / covered) <= need


def _span_start(at: datetime, spans) -> datetime:
    return next((lo for lo, hi in spans if lo < at < hi), at)


def _span_end(at: datetime, spans) -> datetime:
    return next((hi for lo, hi in spans if lo < at < hi), at)


def split(window: tuple[datetime, datetime], edges: list[datetime], newest_first: bool) -> list:
    """`window` cut at every edge strictly inside it, in reading order. The hot days' partial
    trigram indexes (ingest/store/hot_index.py) serve only a query whose time bounds lie
    within their block, which the planner proves from the bounds."""
    start, end = window
    cuts = [start, *(e for e in edges if start < e < end), end]
    pieces = list(pairwise(cuts))
    return pieces[::-1] if newest_first else pieces


def covered(window: tuple[datetime, datetime], spans) -> bool:
    """Whether the union of `spans` covers all of `window`."""
    at, end = window
    for lo, hi in sorted(spans):
        if lo > at:
            break
        at = max(at, hi)
        if at >= end:
            return True
    return at >= end
