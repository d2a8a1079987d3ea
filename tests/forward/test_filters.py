"""A target forwards only its tenant's lines, narrowed by service and container; lines it
does not forward still move its cursor, so its lag falls to zero."""

import pytest

from forward.filters import query_error
from forward.lag import forward_lag
from forward.models import Target
from tests.forward.runs import run_until_done
from tests.forward.targets import cls_target, received_lines
from tests.forward.writers import make_writer, records, write

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_forwards_only_its_tenant_service_and_container(actors, clean_logs, standin, tmp_path):
    everything = cls_target(standin, actors.tenant_a, name="all-a", topic="topic-1")
    narrow = cls_target(standin, actors.tenant_a, name="api-1", service="api", container="api-1*")
    writer = make_writer(tmp_path, "writer-1")
    write(writer, records("a-web", 20))
    write(writer, records("a-api", 20, service="api", name="api", containers=2))
    write(writer, records("b-api", 20, tenant="tenant-b", service="api", name="api"))
    for target in (everything, narrow):
        assert run_until_done(target).status == "caught_up"
    lines = received_lines(standin)
    assert sorted(lines) == sorted(
        [f"a-web {i}" for i in range(20)]
        + [f"a-api {i}" for i in range(20)]
        + [f"a-api {i}" for i in range(1, 20, 2)]
    )
    assert not any(line.startswith("b-") for line in lines)
    assert {row.name: row.lag_lines for row in forward_lag()} == {"all-a": 0, "api-1": 0}


def test_the_lag_counts_committed_lines_not_yet_forwarded(actors, clean_logs, standin, tmp_path):
    target = cls_target(standin, actors.tenant_a)
    write(make_writer(tmp_path, "writer-1"), records("x", 30))
    (row,) = forward_lag()
    assert (row.target_id, row.lag_lines) == (target.id, 30)
    assert row.lag_seconds >= 0
    run_until_done(target)
    (row,) = forward_lag()
    assert (row.lag_lines, row.lag_seconds, row.lines_sent) == (0, 0, 30)
    assert forward_lag(["tenant-b"]) == []


def test_a_query_is_checked_when_saved():
    assert query_error("level>=warn") is None
    assert query_error("  ") is None
    assert query_error('"unclosed').startswith("query: ")


def test_a_target_with_a_filter_it_cannot_apply_is_paused(actors, clean_logs, standin, tmp_path):
    target = cls_target(standin, actors.tenant_a, query='"unclosed')
    write(make_writer(tmp_path, "writer-1"), records("x", 3))
    assert run_until_done(target).status == "paused"
    target.refresh_from_db()
    assert target.paused
    assert target.pause_reason.startswith("query: ")
    assert received_lines(standin) == []
    assert isinstance(target, Target)


def test_a_query_in_the_search_language_selects_the_lines(actors, clean_logs, standin, tmp_path):
    target = cls_target(standin, actors.tenant_a, query='stream:stderr "line 1"')
    write(make_writer(tmp_path, "writer-1"), records("line", 20))
    assert run_until_done(target).status == "caught_up"
    # stderr lines are the odd ones; "line 1" matches line 1 and 11..19.
    assert received_lines(standin) == ["line 1", "line 11", "line 13", "line 15", "line 17", "line 19"]
