"""Rows → upload requests: every request within every CLS limit, rows in order, none lost."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forward.sinks.cls_batch import ClsBatcher, ClsLimits
from forward.sinks.cls_encode import LogLimits, encode_row
from forward.sinks.row import ForwardRow
from tests.forward.support import decode_body, make_row


def _check_request(request, limits: ClsLimits) -> list:
    """Assert one request is within every limit; return its logs in order."""
    assert len(request.body) <= limits.max_body_bytes
    message = decode_body(request.body)
    assert 1 <= len(message.logGroupList) <= limits.max_groups_per_request
    assert request.groups == len(message.logGroupList)
    logs = []
    for group in message.logGroupList:
        assert 1 <= len(group.logs) <= limits.max_logs_per_group
        values = 0
        for log in group.logs:
            for c in log.contents:
                size = len(c.value.encode())
                assert size <= limits.max_value_bytes
                values += size
        assert values <= limits.max_group_value_bytes
        logs.extend(group.logs)
    assert request.rows == len(logs)
    return logs


SMALL_LIMITS = ClsLimits(
    max_groups_per_request=3,
    max_logs_per_group=4,
    max_value_bytes=300,
    max_group_value_bytes=700,
    max_body_bytes=2_000,
    max_log_bytes=650,
    max_key_chars=16,
    max_group_meta_bytes=100,
)

row_strategy = st.builds(
    make_row,
    i=st.integers(0, 10**12),
    # Mostly short lines, often long ones (ASCII and multi-byte) that press on the size limits.
    line=st.text(max_size=60) | st.builds(str.__mul__, st.sampled_from(["x", "é", "✓"]), st.integers(0, 400)),
    level=st.none() | st.integers(0, 7),
    # A few containers, so the encoder's per-container metadata cache is hit and invalidated.
    container_name=st.sampled_from(["web-1", "web-2", "db"]),
    labels=st.none() | st.dictionaries(st.sampled_from(["a", "b", "c"]), st.text(max_size=120), max_size=3),
    attrs=st.none()
    | st.dictionaries(
        st.text(max_size=20), st.integers() | st.text(max_size=120) | st.booleans(), max_size=3
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row_strategy, max_size=40), source=st.sampled_from(["", "node-1"]))
def test_it_splits_any_rows_into_requests_within_limits_keeping_order(rows, source):
    batcher = ClsBatcher(SMALL_LIMITS, source=source, tags={"env": "test"} if source else None)
    sent = []
    for request in batcher.requests(rows):
        sent.extend(_check_request(request, SMALL_LIMITS))
        for group in decode_body(request.body).logGroupList:
            assert group.source == source
            assert [(t.key, t.value) for t in group.logTags] == ([("env", "test")] if source else [])
    # The concatenation of all requests is the input, row for row, in order.
    log_limits = LogLimits(
        SMALL_LIMITS.max_value_bytes, SMALL_LIMITS.max_log_bytes, SMALL_LIMITS.max_key_chars
    )
    assert [log.SerializeToString() for log in sent] == [encode_row(row, log_limits).data for row in rows]


def test_it_respects_the_real_limits_on_counts_and_sizes():
    limits = ClsLimits()
    batcher = ClsBatcher(limits)
    # 101 000 tiny rows: 10 000 logs per group, at most 10 groups per request → 2 requests.
    requests_ = list(batcher.requests(ForwardRow(ts_ns=i, line="x") for i in range(101_000)))
    assert [r.groups for r in requests_] == [10, 1]
    assert sum(len(_check_request(r, limits)) for r in requests_) == 101_000
    # Typical rows (~200 bytes): the 6 MB body limit closes a request after 3 full groups.
    requests_ = list(batcher.requests(make_row(i) for i in range(35_000)))
    assert [r.groups for r in requests_] == [3, 1]
    assert all(len(r.body) > 5_900_000 for r in requests_[:-1])
    assert sum(len(_check_request(r, limits)) for r in requests_) == 35_000
    # ~1 MB lines: the 5 MB of values per group closes groups, the 6 MB body closes requests.
    big = [make_row(i, line=str(i % 10) * 999_000) for i in range(13)]
    requests_ = list(batcher.requests(big))
    assert [r.rows for r in requests_] == [6, 6, 1]  # 5 + 1 logs: a 6th fits the body, not the group
    assert [r.groups for r in requests_] == [2, 2, 1]
    for r in requests_:
        _check_request(r, limits)


def test_it_yields_nothing_for_no_rows():
    assert list(ClsBatcher().requests([])) == []


def test_it_refuses_group_metadata_that_leaves_no_room():
    with pytest.raises(ValueError, match="tags"):
        ClsBatcher(tags={"k": "v" * 70_000})
