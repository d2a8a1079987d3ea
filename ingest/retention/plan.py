"""What retention does to each past day: drop it, delete some containers' rows, or nothing.

The same decision serves the run (ingest/retention/apply.py, which decides each day again just
before acting on it) and the dry run on the storage page.
"""

from dataclasses import dataclass, field
from datetime import date

from ingest.retention.rules import Rules, empty_day_removable, plan_day
from ingest.store.partitions import day_tables
from ingest.store.presence import present_ckeys


@dataclass
class DayAction:
    day: date
    table: str
    action: str  # "drop", "delete" or "keep"
    present: set[int] = field(default_factory=set)
    remove: set[int] = field(default_factory=set)


def decide(cur, rules: Rules, day: date, table: str, max_ts_age_days: int) -> DayAction:
    present = present_ckeys(cur, table)
    if not present:
        action = "drop" if empty_day_removable(rules, day, max_ts_age_days) else "keep"
        return DayAction(day, table, action)
    plan = plan_day(rules, day, present)
    action = "drop" if plan.drop else "delete" if plan.delete else "keep"
    return DayAction(day, table, action, plan.present, plan.remove)


def past_days(cur, rules: Rules) -> list[tuple[date, str, str]]:
    """(day, table, state) of every day table before today, oldest first."""
    return [(day, name, state) for day, (name, state) in sorted(day_tables(cur).items()) if day < rules.today]


def dry_run(cur, rules: Rules, max_ts_age_days: int) -> list[DayAction]:
    """What a retention run would do now, without doing it."""
    actions = []
    for day, table, state in past_days(cur, rules):
        if state == "attached":
            action = decide(cur, rules, day, table, max_ts_age_days)
        else:  # left over by an interrupted drop: finished by the next run
            present = present_ckeys(cur, table)
            action = DayAction(day, table, "drop", present, set(present))
        if action.action != "keep":
            actions.append(action)
    return actions
