"""The windows a search walks: they tile the range in order, grow, and stop when told."""

import itertools
from datetime import UTC, datetime, timedelta

from search import walk

LO = datetime(2026, 1, 1, tzinfo=UTC)
HI = LO + timedelta(days=7)


def drive(steps, found_per_window):
    seen, found, need = [], 0, 100
    window = next(steps, None)
    while window is not None:
        seen.append(window)
        found += found_per_window(window)
        need = 100 - found
        try:
            window = steps.send((found, need))
        except StopIteration:
            break
    return seen


def test_windows_tile_the_range_newest_first_without_overlap():
    seen = drive(walk.windows(LO, HI, True), lambda w: 0)
    assert seen[0] == (HI - walk.FIRST, HI)
    assert seen[-1][0] == LO
    for newer, older in itertools.pairwise(seen):
        assert older[1] == newer[0]
    # Nothing found: each window GROW_EMPTY times the last, so a week takes a handful.
    assert len(seen) <= 10


def test_windows_tile_the_range_oldest_first():
    seen = drive(walk.windows(LO, HI, False), lambda w: 0)
    assert seen[0] == (LO, LO + walk.FIRST)
    assert seen[-1][1] == HI
    for older, newer in itertools.pairwise(seen):
        assert newer[0] == older[1]


def test_the_walk_stops_once_the_page_is_full():
    seen = drive(walk.windows(LO, HI, True), lambda w: 100)
    assert len(seen) == 1


def test_the_first_window_reaches_from_now_to_the_end_of_the_range():
    now = HI - timedelta(days=2)
    seen = drive(walk.windows(LO, HI, True, now), lambda w: 0)
    assert seen[0] == (now - walk.FIRST, HI)
    assert seen[1][1] == now - walk.FIRST


def test_a_seen_rate_sizes_the_next_window():
    # 10 hits in the first 10 s: the remaining 90 need about 90 s more (with spare, and at
    # least twice the last window).
    width = walk.next_width(walk.FIRST, walk.FIRST, 10, 90)
    assert walk.FIRST * 9 <= width <= walk.FIRST * 9 * walk.SPARE
    assert walk.next_width(walk.FIRST, walk.FIRST, 99, 1) == walk.FIRST * 2
    assert walk.next_width(walk.FIRST, walk.FIRST, 1, 99) == walk.FIRST * walk.GROW_MAX


def test_split_cuts_a_window_at_the_edges_inside_it_in_reading_order():
    hour = timedelta(hours=1)
    edges = [LO - hour, LO + hour, LO + 2 * hour, LO + 3 * hour]
    window = (LO, LO + 2.5 * hour)
    assert walk.split(window, edges, False) == [
        (LO, LO + hour),
        (LO + hour, LO + 2 * hour),
        (LO + 2 * hour, LO + 2.5 * hour),
    ]
    assert walk.split(window, edges, True) == walk.split(window, edges, False)[::-1]
    assert walk.split(window, [], True) == [window]


def test_a_window_reaches_to_the_edge_of_an_indexed_span_while_nothing_matched():
    day = timedelta(days=1)
    spans = [(LO + n * day, LO + (n + 1) * day) for n in range(7)]
    seen = drive(walk.windows(LO, HI, True, spans=spans), lambda w: 0)
    # The first window is the usual small one (a common term stops there); after it each
    # window ends at a day's start, so a rare term reads each indexed day in one query.
    assert seen[0] == (HI - walk.FIRST, HI)
    assert [start for start, _ in seen[1:]] == [LO + n * day for n in range(6, -1, -1)]
    seen = drive(walk.windows(LO, HI, False, spans=spans), lambda w: 0)
    assert [end for _, end in seen[1:]] == [LO + n * day for n in range(1, 8)]


def test_a_window_stops_short_of_a_span_edge_that_would_hold_more_than_the_page():
    day = timedelta(days=1)
    spans = [(LO, HI)]
    # One hit a second: reaching to LO would fetch far more than the 100 rows a page needs.
    seen = drive(walk.windows(LO, HI, True, spans=spans), lambda w: int((w[1] - w[0]).total_seconds()))
    assert seen[0] == (HI - walk.FIRST, HI)
    assert len(seen) == 2
    assert seen[1][0] > HI - day


def test_covered_asks_whether_spans_cover_all_of_a_window():
    hour = timedelta(hours=1)
    spans = [(LO, LO + hour), (LO + hour, LO + 3 * hour), (LO + 4 * hour, LO + 5 * hour)]
    assert walk.covered((LO, LO + 3 * hour), spans)
    assert walk.covered((LO + 0.5 * hour, LO + 2 * hour), spans)
    assert not walk.covered((LO + 2 * hour, LO + 4.5 * hour), spans)
    assert not walk.covered((LO - hour, LO + hour), spans)
    assert not walk.covered((LO, LO + hour), [])


def test_the_first_window_reaches_to_a_span_edge_only_if_that_at_most_doubles_it():
    hour, minute = timedelta(hours=1), timedelta(minutes=1)
    spans = [(HI - hour, HI)]
    assert next(walk.windows(LO, HI, True, first=40 * minute, spans=spans)) == (HI - hour, HI)
    assert next(walk.windows(LO, HI, True, first=20 * minute, spans=spans)) == (HI - 20 * minute, HI)
    assert next(walk.windows(LO, HI, False, first=40 * minute, spans=[(LO, LO + hour)])) == (LO, LO + hour)
