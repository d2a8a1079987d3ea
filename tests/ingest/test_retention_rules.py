"""The retention rules against an independent, deliberately plain reading of docs/retention.md."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.models import RetentionPolicy
from ingest.retention.rules import ContainerInfo, PinRule, PolicyRule, Rules, plan_day

TODAY = date(2024, 3, 10)
IDS = ["a" * 64, "b" * 64, "c" * 12]
NAMES = ["web-1", "db-1", "job"]

containers = st.builds(
    lambda ckey, tenant, service, i, env: ContainerInfo(
        ckey=ckey,
        tenant=tenant,
        service=service,
        container_id=IDS[i],
        name=NAMES[i],
        labels={} if env is None else {"env": env},
    ),
    ckey=st.integers(1, 1000),
    tenant=st.sampled_from(["a", "b"]),
    service=st.sampled_from(["web", "db"]),
    i=st.integers(0, 2),
    env=st.sampled_from([None, "prod", "dev"]),
)
container_refs = st.sampled_from([*IDS, *NAMES, IDS[0][:12], "nope"])
policies = st.one_of(
    st.builds(PolicyRule, scope=st.just("global"), days=st.integers(0, 40)),
    st.builds(
        PolicyRule, scope=st.just("tenant"), days=st.integers(0, 40), tenant=st.sampled_from(["a", "b"])
    ),
    st.builds(
        PolicyRule,
        scope=st.just("service"),
        days=st.integers(0, 40),
        tenant=st.sampled_from([None, "a", "b"]),
        service=st.sampled_from(["web", "db"]),
    ),
    st.builds(
        PolicyRule,
        scope=st.just("label"),
        days=st.integers(0, 40),
        tenant=st.sampled_from([None, "a"]),
        label_key=st.just("env"),
        label_value=st.sampled_from(["prod", "dev"]),
    ),
    st.builds(
        PolicyRule,
        scope=st.just("container"),
        days=st.integers(0, 40),
        tenant=st.sampled_from([None, "b"]),
        container=container_refs,
    ),
)


@st.composite
def pins(draw):
    start = datetime(2024, 1, 20, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 50 * 24)))
    return PinRule(
        start=start,
        end=start + timedelta(hours=draw(st.integers(1, 72))),
        tenant=draw(st.sampled_from([None, "a", "b"])),
        service=draw(st.sampled_from(["", "web"])),
        container=draw(st.sampled_from(["", *NAMES, IDS[1]])),
    )


def oracle_days(c: ContainerInfo, all_policies, default):
    def applies(p):
        if p.tenant is not None and p.tenant != c.tenant:
            return False
        if p.scope == "service":
            return p.service == c.service
        if p.scope == "label":
            return c.labels.get(p.label_key) == p.label_value
        if p.scope == "container":
            return p.container in (c.container_id, c.name, c.container_id[:12]) or (
                len(p.container) >= 12 and p.container.startswith(c.container_id)
            )
        return True

    for scope in ("container", "label", "service", "tenant", "global"):
        days = [p.days for p in all_policies if p.scope == scope and applies(p)]
        if days:
            return max(days)
    return default


def oracle_removed(c, day, all_policies, all_pins, default) -> bool:
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    day_end = day_start + timedelta(days=1)
    for pin in all_pins:
        scope_ok = (
            (pin.tenant is None or pin.tenant == c.tenant)
            and (not pin.service or pin.service == c.service)
            and (not pin.container or pin.container in (c.container_id, c.name))
        )
        if scope_ok and pin.start < day_end and pin.end > day_start:
            return False
    days = oracle_days(c, all_policies, default)
    return days is not None and (TODAY - day).days > days


@settings(max_examples=300, deadline=None)
@given(
    st.lists(containers, min_size=1, max_size=6, unique_by=lambda c: c.ckey),
    st.lists(policies, max_size=6),
    st.lists(pins(), max_size=3),
    st.sampled_from([None, 7, 30]),
    st.integers(0, 50),
)
def test_it_removes_what_a_plain_reading_of_the_rules_removes(cs, ps, pns, default, age):
    rules = Rules(
        today=TODAY, containers={c.ckey: c for c in cs}, policies=ps, pins=pns, default_days=default
    )
    day = TODAY - timedelta(days=age)
    expected = {c.ckey for c in cs if oracle_removed(c, day, ps, pns, default)}

    plan = plan_day(rules, day, {c.ckey for c in cs})

    assert plan.remove == expected
    assert plan.drop == (expected == {c.ckey for c in cs})
    assert plan.delete == (bool(expected) and not plan.drop)


def test_it_keeps_today_and_n_whole_days_before_it():
    c = ContainerInfo(1, "a")
    rules = Rules(TODAY, {1: c}, [PolicyRule("global", 7)], [], None)
    assert [age for age in range(10) if rules.removable(1, TODAY - timedelta(days=age))] == [8, 9]
    forever = Rules(TODAY, {1: c}, [], [], None)
    assert not forever.removable(1, TODAY - timedelta(days=10_000))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scope": "tenant"}, "tenant"),
        ({"scope": "service"}, "service"),
        ({"scope": "label"}, "label_key"),
        ({"scope": "container"}, "container"),
        ({"scope": "global", "service": "web"}, "service"),
        ({"scope": "service", "service": "web", "container": "x"}, "container"),
        ({"scope": "tenant", "label_value": "x"}, "label_value"),
    ],
)
def test_it_refuses_a_policy_that_misses_or_ignores_a_field(fields, field):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        RetentionPolicy(days=3, **fields).clean()
    assert field in error.value.message_dict
