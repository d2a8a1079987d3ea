from hypothesis import given, settings
from hypothesis import strategies as st

from driver.logentry import LogEntry, PartialLogEntryMetadata
from driver.partials import PartialAssembler
from tests.driver.dockerd_split import FRAGMENT, entries_for_line


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def assemble(entries, **kw):
    asm = PartialAssembler(kw.pop("max_line_bytes", 1 << 20), kw.pop("timeout_s", 5.0), **kw)
    out = []
    for e in entries:
        out.extend(asm.add(e))
    return asm, out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3 * FRAGMENT + 5) | st.sampled_from([FRAGMENT, 2 * FRAGMENT]), max_size=6))
def test_it_rebuilds_every_line_dockerd_split(lengths):
    lines = [bytes([65 + i % 26]) * n for i, n in enumerate(lengths)]
    entries = [e for i, line in enumerate(lines) for e in entries_for_line(line, 1000 + i)]
    asm, out = assemble(entries)
    assert [(o.line, o.time_nano, o.incomplete) for o in out] == [
        (line, 1000 + i, False) for i, line in enumerate(lines)
    ]
    assert asm.open_groups == 0


def test_it_joins_a_line_whose_last_fragment_is_empty():
    line = b"x" * (2 * FRAGMENT)
    entries = entries_for_line(line, 42)
    assert [len(e.line) for e in entries] == [FRAGMENT, FRAGMENT, 0]
    _, out = assemble(entries)
    assert len(out) == 1
    assert out[0].line == line
    assert out[0].time_nano == 42


def test_it_flushes_a_group_whose_last_fragment_never_comes_after_the_timeout():
    clock = Clock()
    entries = entries_for_line(b"y" * (FRAGMENT + 10), 5)[:-1]
    asm, out = assemble(entries, timeout_s=2.0, clock=clock)
    assert out == []
    clock.now = 1.0
    assert asm.expire() == []
    clock.now = 2.5
    (line,) = asm.expire()
    assert line.line == b"y" * FRAGMENT
    assert line.incomplete
    assert asm.open_groups == 0


def test_it_flushes_an_open_group_before_the_next_line_of_the_same_stream():
    head = entries_for_line(b"a" * (FRAGMENT + 1), 1)[:-1]
    _, out = assemble([*head, LogEntry(source="stdout", time_nano=2, line=b"next")])
    assert [(o.line[-1:], o.incomplete) for o in out] == [(b"a", True), (b"t", False)]
    assert out[1].line == b"next"


def test_it_keeps_other_streams_flowing_while_a_group_is_open():
    head = entries_for_line(b"a" * (FRAGMENT + 1), 1)
    _, out = assemble([head[0], LogEntry(source="stderr", line=b"err"), head[1]])
    assert [o.source for o in out] == ["stderr", "stdout"]
    assert len(out[1].line) == FRAGMENT + 1


def test_it_caps_the_joined_size_and_records_the_original_length():
    line = b"z" * (3 * FRAGMENT + 7)
    _, out = assemble(entries_for_line(line, 1), max_line_bytes=FRAGMENT + 100)
    assert out[0].line == line[: FRAGMENT + 100]
    assert out[0].truncated_from == len(line)


def test_it_flushes_everything_at_eof():
    head = entries_for_line(b"q" * (FRAGMENT + 3), 1)[:-1]
    asm, _out = assemble(head)
    (line,) = asm.flush_all()
    assert line.incomplete
    assert line.line == b"q" * FRAGMENT


def test_it_orders_fragments_by_ordinal():
    def frag(ordinal, data, last=False):
        meta = PartialLogEntryMetadata(id="g", ordinal=ordinal, last=last)
        return LogEntry(source="stdout", line=data, partial=True, partial_log_metadata=meta)

    _, out = assemble([frag(2, b"B"), frag(1, b"A"), frag(3, b"C", last=True)])
    assert out[0].line == b"ABC"
