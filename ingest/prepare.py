"""The stages every record passes between its receiver and the writer queue.

1. tenant override by container label (ingest/tenant_label.py), for drivers that allow it;
2. multi-line grouping (ingest/multiline.py) with the tenants' rules.
Both run on the ingest event loop (where receivers call offer/submit), never in the writer
thread, so they need no locking of their own. `Pipeline` calls them; the service keeps their
configuration current (drivers and rules, reloaded without a restart).
"""

import time

from ingest.multiline import Grouper
from ingest.multiline_rules import RuleBook, RuleSpec
from ingest.record import Record
from ingest.tenant_label import TenantLabels


class Preparer:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.tenant_labels = TenantLabels()
        self.rules = RuleBook()
        self.grouper = Grouper(self.rules.rule_for)

    @property
    def held(self) -> int:
        return self.grouper.held

    def feed(self, records: list[Record], flush_after: bool = False) -> list[Record]:
        self.tenant_labels.apply(records)
        if not self.rules.specs and not self.grouper.held:
            return records
        return self.grouper.feed(records, self.clock(), flush_after=flush_after)

    def expire(self) -> list[Record]:
        return self.grouper.expire(self.clock()) if self.grouper.held else []

    def flush_all(self) -> list[Record]:
        return self.grouper.flush_all()

    def rules_differ(self, specs: list[RuleSpec]) -> bool:
        return specs != self.rules.specs
