"""TailCursor's bookkeeping, without a socket: what the sweep compares with the store."""

from ingest.store.schema import ID_BLOCK
from search.tail.cursor import TailCursor


def test_it_counts_taken_ids_above_the_floor_per_container_and_writer_batch():
    cursor = TailCursor()
    cursor.watch(7, floor=3)
    cursor.watch(8, floor=0)
    first, second = 1, 1 + ID_BLOCK  # the first ids of two writer batches
    for row_id in (first + 1, first + 3, first + 4, second, second + 9):
        assert cursor.take(7, row_id)
    assert cursor.take(8, second + 1)
    assert not cursor.take(7, first + 4)  # a line already taken is not taken twice
    assert cursor.taken_by_block() == {(7, 0): 2, (7, 1): 2, (8, 1): 1}  # id 2 is under the floor


def test_taken_counts_follow_the_floor_when_it_settles():
    cursor = TailCursor(settle_s=5)
    cursor.watch(7, floor=0)
    for row_id in range(1, 11):
        cursor.take(7, row_id)
    cursor.observed(7, 6, now=100.0)
    cursor.settle(now=104.0)
    assert cursor.taken_by_block() == {(7, 0): 10}  # not settled yet
    cursor.settle(now=105.0)
    assert cursor.floors() == {7: 6}
    assert cursor.taken_by_block() == {(7, 0): 4}
    assert not cursor.take(7, 5)  # at or under the floor: treated as already sent


def test_settling_forgets_whole_batches_under_the_floor_and_keeps_the_rest():
    cursor = TailCursor(settle_s=0)
    cursor.watch(7, floor=0)
    ids = [1, 2, 1 + ID_BLOCK, 2 + ID_BLOCK, 3 + ID_BLOCK, 1 + 2 * ID_BLOCK]
    for row_id in ids:
        cursor.take(7, row_id)
    cursor.observed(7, 2 + ID_BLOCK, now=1.0)
    cursor.settle(now=1.0)
    assert cursor.held() == 2  # 3 + ID_BLOCK and 1 + 2 * ID_BLOCK: the rest is under the floor
    assert cursor.taken_by_block() == {(7, 1): 1, (7, 2): 1}
    assert cursor.unseen(7, [*ids, 4 + ID_BLOCK]) == [4 + ID_BLOCK]
    assert not cursor.take(7, 3 + ID_BLOCK)
    assert cursor.take(7, 4 + ID_BLOCK)
