"""Which container keeps which day: retention policies and pins as pure functions.

Unit of retention is the whole UTC day. A day D of a container whose effective retention is
N days expires once D < today - N (so N full days before today are always kept, plus today).
The effective retention is decided by the most specific scope with a matching policy —
container > label > service > tenant > global — and among several matching policies of that
scope the longest wins. Without any matching policy the global default applies
(LOGSITE_RETENTION_DAYS; 0 keeps forever). A pin that is not expired keeps every day its time
range touches, for every container it matches, whatever the policies say.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

SPECIFICITY = {"global": 0, "tenant": 1, "service": 2, "label": 3, "container": 4}


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    ckey: int
    tenant: str
    service: str = ""
    container_id: str = ""
    name: str = ""
    labels: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class PolicyRule:
    scope: str
    days: int
    tenant: str | None = None
    service: str = ""
    container: str = ""
    label_key: str = ""
    label_value: str = ""


@dataclass(frozen=True, slots=True)
class PinRule:
    start: datetime
    end: datetime
    tenant: str | None = None
    service: str = ""
    container: str = ""
    reason: str = ""


def container_matches(value: str, c: ContainerInfo) -> bool:
    """A container is named by its id (full or the 12-character short form) or its name."""
    value = value.strip()
    if not value:
        return False
    if value == c.container_id or value.lstrip("/") == c.name:
        return True
    # Docker passes 64-hex ids, zmq-logger stores 12: either may be the prefix of the other.
    if len(value) >= 12 and len(c.container_id) >= 12:
        return c.container_id.startswith(value) or value.startswith(c.container_id)
    return False


def policy_matches(p: PolicyRule, c: ContainerInfo) -> bool:
    if p.tenant is not None and p.tenant != c.tenant:
        return False
    if p.scope == "global":
        return True
    if p.scope == "tenant":
        return p.tenant is not None
    if p.scope == "service":
        return p.service == c.service
    if p.scope == "label":
        return p.label_key in c.labels and str(c.labels[p.label_key]) == p.label_value
    if p.scope == "container":
        return container_matches(p.container, c)
    return False


def retention_days(c: ContainerInfo, policies: Iterable[PolicyRule], default_days: int | None) -> int | None:
    """Days kept for container `c`; None keeps forever."""
    best_level, best = -1, None
    for p in policies:
        if not policy_matches(p, c):
            continue
        level = SPECIFICITY[p.scope]
        if level > best_level:
            best_level, best = level, p.days
        elif level == best_level:
            best = max(best, p.days)
    if best_level < 0:
        return default_days
    return best


def pin_matches(pin: PinRule, c: ContainerInfo) -> bool:
    if pin.tenant is not None and pin.tenant != c.tenant:
        return False
    if pin.service and pin.service != c.service:
        return False
    return not pin.container or container_matches(pin.container, c)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def pin_covers(pin: PinRule, c: ContainerInfo, day: date) -> bool:
    start, end = day_bounds(day)
    return pin.start < end and pin.end > start and pin_matches(pin, c)


def day_expired(day: date, days: int | None, today: date) -> bool:
    return days is not None and day < today - timedelta(days=days)


@dataclass
class Rules:
    """Everything retention decides from, loaded once per decision."""

    today: date
    containers: dict[int, ContainerInfo]
    policies: list[PolicyRule]
    pins: list[PinRule]  # only pins that have not expired
    default_days: int | None
    _days: dict[int, int | None] = field(default_factory=dict, repr=False)

    def info(self, ckey: int) -> ContainerInfo:
        # A key without a containers row (should not happen) is judged by the global rules.
        return self.containers.get(ckey) or ContainerInfo(ckey=ckey, tenant="")

    def days_for(self, ckey: int) -> int | None:
        if ckey not in self._days:
            self._days[ckey] = retention_days(self.info(ckey), self.policies, self.default_days)
        return self._days[ckey]

    def pinned(self, ckey: int, day: date) -> bool:
        info = self.info(ckey)
        return any(pin_covers(pin, info, day) for pin in self.pins)

    def removable(self, ckey: int, day: date) -> bool:
        return day_expired(day, self.days_for(ckey), self.today) and not self.pinned(ckey, day)

    def longest_days(self) -> int | None:
        """The longest retention any container (or a new one) can have; None = forever."""
        candidates = [self.default_days, *(p.days for p in self.policies)]
        return None if any(d is None for d in candidates) else max(candidates)


@dataclass
class DayPlan:
    day: date
    present: set[int]
    remove: set[int]  # containers whose rows of this day go

    @property
    def drop(self) -> bool:
        """Every container with rows this day goes: drop the whole partition."""
        return bool(self.present) and self.remove == self.present

    @property
    def delete(self) -> bool:
        return bool(self.remove) and not self.drop


def plan_day(rules: Rules, day: date, present: set[int]) -> DayPlan:
    return DayPlan(day=day, present=set(present), remove={k for k in present if rules.removable(k, day)})


def empty_day_removable(rules: Rules, day: date, max_ts_age_days: int) -> bool:
    """An empty past day can go once no line can land in it any more (the pipeline replaces
    older timestamps) or once any line landing in it would be expired at once."""
    if day >= rules.today:
        return False
    if day < rules.today - timedelta(days=max_ts_age_days + 1):
        return True
    if any(pin.start < day_bounds(day)[1] and pin.end > day_bounds(day)[0] for pin in rules.pins):
        return False
    return day_expired(day, rules.longest_days(), rules.today)


def describe_policy(p) -> str:
    tenant = getattr(p.tenant, "slug", p.tenant) if p.tenant else None
    what = {
        "global": "everything",
        "tenant": f"tenant {tenant}",
        "service": f"service {p.service}",
        "label": f"label {p.label_key}={p.label_value}",
        "container": f"container {p.container}",
    }.get(p.scope, p.scope)
    if tenant and p.scope != "tenant":
        what += f" in {tenant}"
    return f"{what}: {p.days} days"


def policy_errors(p) -> dict[str, str]:
    """Field errors for a policy whose scope lacks what it needs (or carries what it ignores)."""
    errors = {}
    needs = {"tenant": "tenant", "service": "service", "label": "label_key", "container": "container"}
    need = needs.get(p.scope)
    if need == "tenant" and not p.tenant_id:
        errors["tenant"] = "A tenant policy needs a tenant."
    elif need and need != "tenant" and not getattr(p, need).strip():
        errors[need] = f"A {p.scope} policy needs this field."
    if p.scope == "global" and p.tenant_id:
        errors["tenant"] = "A global policy applies to every tenant; choose the tenant scope instead."
    for name in ("service", "container", "label_key"):
        if needs.get(p.scope) != name and getattr(p, name).strip():
            errors[name] = f"Not used by a {p.scope} policy; leave it empty."
    if p.scope != "label" and p.label_value:
        errors["label_value"] = f"Not used by a {p.scope} policy; leave it empty."
    return errors
