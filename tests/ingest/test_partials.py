"""PartialAssembler: Docker's split lines put back together, nothing lost, memory bounded."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.partials import INCOMPLETE, PARTIAL, SPLIT, PartialAssembler
from ingest.record import Record


def fragment(line: bytes, group="g1", ordinal=None, last=False, cid="c1", stream="stdout", ts=None, **attrs):
    mark = {"id": group, "ordinal": ordinal, "last": last}
    return Record(line=line, ts_ns=ts, container_id=cid, stream=stream, attrs={**attrs, PARTIAL: mark})


def test_it_passes_whole_lines_straight_through():
    record = Record(line="x", container_id="c1")
    assert PartialAssembler().feed(record, now=0) == [record]


def test_it_joins_fragments_in_ordinal_order_with_the_first_fragments_time():
    assembler = PartialAssembler()
    assert assembler.feed(fragment(b"b", ordinal=2, ts=20, team="blue"), now=0) == []
    assert assembler.feed(fragment("a", ordinal=1, ts=10), now=0) == []
    (whole,) = assembler.feed(fragment(b"c", ordinal=3, last=True, ts=30), now=0)
    assert whole.line == b"abc"
    # The group's record is the first to arrive (Docker stamps every fragment alike).
    assert whole.ts_ns == 20
    assert whole.attrs == {"team": "blue"}
    assert assembler.completed == 1
    assert len(assembler) == 0


def test_it_keeps_groups_of_different_containers_and_streams_apart():
    assembler = PartialAssembler()
    assembler.feed(fragment(b"1", ordinal=1, cid="a"), now=0)
    assembler.feed(fragment(b"x", ordinal=1, cid="b"), now=0)
    assembler.feed(fragment(b"e", ordinal=1, cid="a", stream="stderr"), now=0)
    (a,) = assembler.feed(fragment(b"2", ordinal=2, cid="a", last=True), now=0)
    (b,) = assembler.feed(fragment(b"y", ordinal=2, cid="b", last=True), now=0)
    assert (a.line, b.line) == (b"12", b"xy")
    assert len(assembler) == 1


def test_it_emits_a_group_whose_last_fragment_never_comes():
    assembler = PartialAssembler(timeout_s=5)
    assembler.feed(fragment(b"half", ordinal=1), now=100)
    assert assembler.expire(104.9) == []
    (record,) = assembler.expire(105)
    assert record.line == b"half"
    assert record.attrs == {PARTIAL: INCOMPLETE}
    assert assembler.expired == 1


def test_it_measures_the_timeout_from_the_latest_fragment():
    assembler = PartialAssembler(timeout_s=5)
    for i in range(10):
        assert assembler.feed(fragment(b"x", ordinal=i + 1), now=float(i * 3)) == []
    (whole,) = assembler.feed(fragment(b"end", ordinal=11, last=True), now=31)
    assert whole.line == b"x" * 10 + b"end"


def test_it_splits_a_line_larger_than_the_cap_without_losing_bytes():
    assembler = PartialAssembler(max_line_bytes=10)
    out = []
    for i in range(5):
        out += assembler.feed(fragment(b"%d" % i * 4, ordinal=i + 1, last=i == 4), now=0)
    assert [r.line for r in out] == [b"00001111", b"22223333", b"4444"]
    assert [r.attrs for r in out] == [{PARTIAL: SPLIT}, {PARTIAL: SPLIT}, None]
    assert assembler.split == 2


def test_it_bounds_the_number_of_open_groups():
    assembler = PartialAssembler(max_groups=3)
    out = []
    for i in range(5):
        out += assembler.feed(fragment(b"%d" % i, group=f"g{i}", ordinal=1), now=i)
    assert [r.line for r in out] == [b"0", b"1"]
    assert assembler.evicted == 2
    assert len(assembler) == 3
    assert [r.line for r in assembler.flush()] == [b"2", b"3", b"4"]


def test_it_closes_an_unmarked_old_style_group_with_the_next_whole_line():
    assembler = PartialAssembler()
    assert assembler.feed(fragment(b"a", group=""), now=0) == []
    assert assembler.feed(fragment(b"b", group=""), now=0) == []
    (whole,) = assembler.feed(Record(line="c", container_id="c1"), now=0)
    assert whole.line == b"abc"


@given(st.binary(max_size=3000), st.integers(1, 500), st.randoms(use_true_random=False), st.booleans())
@settings(max_examples=200, deadline=None)
def test_it_returns_exactly_the_line_that_was_split(line, size, rnd, shuffle):
    pieces = [line[i : i + size] for i in range(0, len(line), size)] or [b""]
    fragments = [fragment(p, ordinal=i + 1, last=i == len(pieces) - 1) for i, p in enumerate(pieces)]
    last = fragments.pop()
    if shuffle:
        rnd.shuffle(fragments)
    assembler = PartialAssembler(max_line_bytes=10**6)
    out = [r for f in [*fragments, last] for r in assembler.feed(f, now=0)]
    assert [r.line for r in out] == [line]
