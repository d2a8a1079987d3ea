"""Per-container bookkeeping that makes the tail gap-free and duplicate-free.

Fan-out is best effort (a publish can fail, Redis can drop a slow subscriber), the store is
the truth. So every line the socket considers (live or from the store) is remembered by id,
and a periodic sweep asks the store for ids above a per-container `floor` and sends the ones
not yet seen.

Ids come from a sequence reserved per writer batch inside the committing transaction, so per
container they grow in commit order for one writer; with several writers a smaller id can
commit a moment after a larger one. The floor therefore only advances to the largest id a
sweep saw at least `settle_s` ago: a transaction that held a smaller id has had that long to
commit. Ids at or below the floor are forgotten and treated as already seen.
"""

from collections import Counter, deque
from dataclasses import dataclass, field

from ingest.store.schema import ID_BLOCK


@dataclass
class _Container:
    floor: int  # the sweep reads ids > floor
    prune_below: int  # ids <= this count as seen (forgotten)
    # writer batch (block of ID_BLOCK ids) -> ids taken in it: pruning and counting per batch
    # cost one step per batch, not one per line (65,000 lines in the window at 10k lines/s)
    seen: dict[int, set[int]] = field(default_factory=dict)
    observed: deque = field(default_factory=deque)  # (monotonic time, max id in store)
    last_sent: int = 0


class TailCursor:
    def __init__(self, settle_s: float = 5.0):
        self.settle_s = settle_s
        self._by_ckey: dict[int, _Container] = {}

    def watch(self, ckey: int, floor: int, prune_below: int = 0) -> None:
        if ckey not in self._by_ckey:
            self._by_ckey[ckey] = _Container(floor=floor, prune_below=min(prune_below, floor))

    def watched(self, ckey: int) -> bool:
        return ckey in self._by_ckey

    def ckeys(self) -> list[int]:
        return list(self._by_ckey)

    def take(self, ckey: int, row_id: int) -> bool:
        """True (and remembered) the first time a watched container's line id is offered."""
        state = self._by_ckey.get(ckey)
        if state is None or row_id <= state.prune_below:
            return False
        ids = state.seen.setdefault(_block(row_id), set())
        if row_id in ids:
            return False
        ids.add(row_id)
        state.last_sent = max(state.last_sent, row_id)
        return True

    def taken_by_block(self) -> Counter:
        """(ckey, block) -> how many ids above the floor were taken, per writer batch (a block
        of ID_BLOCK ids). Every id taken is a committed line, so taken before the store is
        read these are never more than the store holds; an equal count means none is missing."""
        counts: Counter = Counter()
        for ckey, state in self._by_ckey.items():
            floor, floor_block = state.floor, _block(state.floor)
            for block, ids in state.seen.items():
                if block > floor_block:
                    counts[(ckey, block)] = len(ids)
                elif block == floor_block and (n := sum(1 for i in ids if i > floor)):
                    counts[(ckey, block)] = n
        return counts

    def floors(self) -> dict[int, int]:
        return {ckey: state.floor for ckey, state in self._by_ckey.items()}

    def unseen(self, ckey: int, ids: list[int]) -> list[int]:
        state = self._by_ckey.get(ckey)
        if state is None:
            return []
        seen = state.seen
        return [i for i in ids if i > state.prune_below and i not in seen.get(_block(i), ())]

    def observed(self, ckey: int, max_id: int, now: float) -> None:
        state = self._by_ckey.get(ckey)
        if state is not None and max_id > state.floor:
            state.observed.append((now, max_id))

    def settle(self, now: float) -> None:
        for state in self._by_ckey.values():
            advanced = state.floor
            while state.observed and now - state.observed[0][0] >= self.settle_s:
                advanced = max(advanced, state.observed.popleft()[1])
            if advanced > state.floor:
                state.floor = advanced
                state.prune_below = max(state.prune_below, advanced)
                cut = _block(advanced)
                for block in [b for b in state.seen if b <= cut]:
                    ids = state.seen.pop(block)
                    kept = {i for i in ids if i > advanced} if block == cut else None
                    if kept:
                        state.seen[block] = kept

    def held(self) -> int:
        """How many ids are remembered: about settle_s + a sweep's worth of lines."""
        return sum(len(ids) for state in self._by_ckey.values() for ids in state.seen.values())

    def last_ids(self) -> dict[int, int]:
        """The resume point a client would send: the newest id considered per container."""
        return {ckey: max(s.last_sent, s.prune_below) for ckey, s in self._by_ckey.items()}


def _block(row_id: int) -> int:
    """The writer batch an id belongs to: one nextval() reserves ids 1 + k * ID_BLOCK ... ."""
    return (row_id - 1) // ID_BLOCK
