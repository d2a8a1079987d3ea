import asyncio
import re
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.multiline import Grouper, Rule
from ingest.multiline_rules import RuleBook, RuleSpec
from ingest.pipeline import Pipeline
from ingest.prepare import Preparer
from ingest.record import Record

START = re.compile(r"\d{4}-\d\d-\d\d ")


def rule(max_lines=100, max_bytes=10_000, timeout=1.0) -> Rule:
    return Rule(1, "r", START, max_lines, max_bytes, timeout)


def rec(line, cid="c1", stream="stdout", tenant="t") -> Record:
    return Record(line=line, tenant=tenant, container_id=cid, stream=stream)


def lines_of(records):
    return [str(r.line) for r in records]


def test_it_appends_continuation_lines_to_the_record_before_them():
    g = Grouper(lambda r: rule())
    out = g.feed(
        [
            rec("2026-01-01 boom"),
            rec("Traceback (most recent call last):"),
            rec('  File "x.py"'),
            rec("2026-01-01 ok"),
        ],
        now=0,
    )
    assert lines_of(out) == ['2026-01-01 boom\nTraceback (most recent call last):\n  File "x.py"']
    assert out[0].attrs == {"_multiline_lines": 3}
    assert g.held == 1
    assert lines_of(g.flush_all()) == ["2026-01-01 ok"]
    assert g.held == 0


def test_it_flushes_a_quiet_group_after_the_timeout_only():
    g = Grouper(lambda r: rule(timeout=1.0))
    assert g.feed([rec("2026-01-01 a"), rec("  b")], now=10.0) == []
    assert g.expire(10.9) == []
    assert lines_of(g.expire(11.0)) == ["2026-01-01 a\n  b"]


def test_it_closes_groups_at_the_line_and_byte_limits_and_on_a_stream_change():
    g = Grouper(lambda r: rule(max_lines=2, max_bytes=25))
    out = g.feed(
        [rec("2026-01-01 a"), rec(" 1"), rec(" 2"), rec(" 3" * 20), rec(" 4", stream="stderr")], now=0
    )
    assert lines_of(out) == ["2026-01-01 a\n 1", " 2", " 3" * 20]
    assert lines_of(g.flush_all()) == [" 4"]


def test_it_leaves_containers_without_a_rule_alone_and_keeps_containers_apart():
    g = Grouper(lambda r: rule() if r.container_id == "java" else None)
    out = g.feed([rec("2026-01-01 x", "java"), rec("plain", "other"), rec("\tat A.b", "java")], now=0)
    assert lines_of(out) == ["plain"]
    assert lines_of(g.flush_all()) == ["2026-01-01 x\n\tat A.b"]


def test_flush_after_holds_nothing_of_the_fed_records():
    g = Grouper(lambda r: rule())
    g.feed([rec("2026-01-01 held", "a")], now=0)
    out = g.feed([rec("  continues", "a"), rec("2026-01-01 b", "b")], now=0, flush_after=True)
    assert lines_of(out) == ["2026-01-01 held\n  continues", "2026-01-01 b"]
    assert g.held == 0


def test_it_joins_bytes_lines_as_bytes():
    g = Grouper(lambda r: rule())
    g.feed([rec(b"2026-01-01 \xff"), rec("  \u00e9")], now=0)
    assert g.flush_all()[0].line == b"2026-01-01 \xff\n  \xc3\xa9"


def test_the_rule_book_picks_the_first_matching_rule_of_the_tenant():
    def spec(id, match, pattern, tenant="t"):
        return RuleSpec(id, tenant, f"r{id}", match, pattern, r"\S", 10, 1000, 1000)

    book = RuleBook(
        [spec(1, "label", "app=api*"), spec(2, "container", "web-*"), spec(3, "image", "*", tenant="u")]
    )
    by_label = Record(line="", tenant="t", container_name="/x", labels={"app": "api-v2"})
    by_name = Record(line="", tenant="t", container_name="web-1")
    assert book.rule_for(by_label).id == 1
    assert book.rule_for(by_name).id == 2
    assert book.rule_for(Record(line="", tenant="t", container_name="db-1")) is None
    assert book.rule_for(Record(line="", tenant="u", image="nginx")).id == 3


starts = st.sampled_from(["2026-01-01 start", "2026-01-01 x"])
continuations = st.sampled_from(["  at x", "\tat A.b(A.java:1)", "Caused by: y", "", "é" * 30])
records = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]), st.sampled_from(["stdout", "stderr"]), starts | continuations
    ),
    max_size=60,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(records, st.integers(1, 5), st.integers(20, 200), st.lists(st.booleans(), max_size=60))
def test_it_never_loses_or_reorders_a_containers_lines(items, max_lines, max_bytes, flushes):
    g = Grouper(lambda r: None if r.container_id == "c" else rule(max_lines, max_bytes, timeout=5))
    out = []
    for i, (cid, stream, line) in enumerate(items):
        flush_after = flushes[i] if i < len(flushes) else False
        out += g.feed([rec(line, cid, stream)], now=i, flush_after=flush_after)
        out += g.expire(i)
    out += g.flush_all()
    assert g.held == 0
    for cid in "abc":
        sent = [(s, line) for c, s, line in items if c == cid]
        got = [(r.stream, part) for r in out if r.container_id == cid for part in str(r.line).split("\n")]
        assert got == sent
    for r in out:
        parts = str(r.line).split("\n")
        assert len(parts) <= max_lines
        if len(parts) > 1:
            assert len(str(r.line).encode()) <= max_bytes


def test_a_submit_is_acknowledged_only_once_its_grouped_records_are_taken_and_durable():
    prepare = Preparer()
    prepare.rules.update([RuleSpec(1, "t", "r", "container", "*", r"\d{4}-", 100, 10_000, 60_000)])
    pipeline = Pipeline(queue_limit=100, batch_lines=10, batch_wait_s=0.01, prepare=prepare)
    taken = []

    def writer():
        while True:
            batch, start = pipeline.take(idle_timeout=0.05)
            if batch:
                taken.append(batch)
                pipeline.finished(start, start + len(batch))
            elif pipeline.closed:
                return

    async def scenario():
        # An offered start line is held (the next line may continue it) ...
        assert pipeline.offer(rec("2026-01-01 offered"))
        assert prepare.held == 1
        # ... a submitted continuation joins it, and the submit returns only when that joined
        # record is durable: nothing of a submit is left held.
        await asyncio.wait_for(pipeline.submit([rec("  continued"), rec("2026-01-01 next")]), 10)
        assert prepare.held == 0
        assert [lines_of(b) for b in taken] == [["2026-01-01 offered\n  continued", "2026-01-01 next"]]
        assert pipeline.counters.accepted == 3

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        asyncio.run(scenario())
    finally:
        pipeline.close()
        thread.join(10)


def test_held_lines_count_against_the_queue_and_are_written_on_close():
    prepare = Preparer()
    prepare.rules.update([RuleSpec(1, "t", "r", "container", "*", r"\d{4}-", 100, 10_000, 60_000)])
    pipeline = Pipeline(queue_limit=3, batch_lines=10, batch_wait_s=0.01, prepare=prepare)
    assert pipeline.offer_many([rec("2026-01-01 a"), rec(" b"), rec(" c"), rec(" d")]) == 1
    assert pipeline.counters.dropped_by_container == {("t", "c1"): 1}
    assert pipeline.pending() == 0
    assert prepare.held == 3
    pipeline.close()
    batch, _ = pipeline.take(idle_timeout=0.01)
    assert lines_of(batch) == ["2026-01-01 a\n b\n c"]
