"""Which multi-line rule applies to a record: the tenant's enabled rules, lowest position first.

Loaded from the database by the ingest process (with the drivers, on change or poll) and by
the admin preview. Selection is cached per container, because it runs for every line.
"""

import fnmatch
import re
from dataclasses import dataclass

from ingest.multiline import Rule
from ingest.record import Record

_CACHE_LIMIT = 50_000


@dataclass(frozen=True)
class RuleSpec:
    id: int
    tenant: str
    name: str
    match: str  # container / label / service / image
    pattern: str
    start_pattern: str
    max_lines: int
    max_bytes: int
    flush_timeout_ms: int

    @classmethod
    def from_model(cls, rule) -> "RuleSpec":
        return cls(
            id=rule.id,
            tenant=rule.tenant.slug,
            name=rule.name,
            match=rule.match,
            pattern=rule.pattern,
            start_pattern=rule.start_pattern,
            max_lines=rule.max_lines,
            max_bytes=rule.max_bytes,
            flush_timeout_ms=rule.flush_timeout_ms,
        )

    def compile(self) -> Rule:
        return Rule(
            id=self.id,
            name=self.name,
            start=re.compile(self.start_pattern),
            max_lines=self.max_lines,
            max_bytes=self.max_bytes,
            flush_timeout_s=self.flush_timeout_ms / 1000,
        )


class Selector:
    def __init__(self, spec: RuleSpec):
        self.match = spec.match
        if spec.match == "label":
            key, _, value = spec.pattern.partition("=")
            self.label = key.strip()
            self.glob = re.compile(fnmatch.translate(value.strip()))
        else:
            self.label = ""
            self.glob = re.compile(fnmatch.translate(spec.pattern.strip()))

    def selects(self, record: Record) -> bool:
        if self.match == "container":
            name = (record.container_name or "").lstrip("/")
            cid = record.container_id or ""
            return bool(
                (name and self.glob.match(name))
                or (cid and (self.glob.match(cid) or self.glob.match(cid[:12])))
            )
        if self.match == "service":
            return self.glob.match(record.service or "") is not None
        if self.match == "image":
            return self.glob.match(record.image or "") is not None
        if self.match == "label":
            labels = record.labels or {}
            return self.label in labels and self.glob.match(str(labels[self.label])) is not None
        return False


def load_rule_specs() -> list[RuleSpec]:
    from ingest.models import MultilineRule

    rules = MultilineRule.objects.filter(enabled=True).select_related("tenant").order_by("position", "id")
    return [RuleSpec.from_model(r) for r in rules]


class RuleBook:
    """rule_for(record) for the Grouper; replace the rules with `update`."""

    def __init__(self, specs: list[RuleSpec] | None = None):
        self.specs: list[RuleSpec] = []
        self._by_tenant: dict[str, list[tuple[Selector, Rule]]] = {}
        self._uses_labels: set[str] = set()
        self._cache: dict[tuple, Rule | None] = {}
        self.update(specs or [])

    def update(self, specs: list[RuleSpec]) -> bool:
        """Returns True when the rules changed."""
        if specs == self.specs:
            return False
        by_tenant: dict[str, list[tuple[Selector, Rule]]] = {}
        for spec in sorted(specs, key=lambda s: (s.tenant, s.id)):
            try:
                rule = spec.compile()
            except re.error:
                continue  # the admin form refuses these; a hand-edited row must not stop ingest
            by_tenant.setdefault(spec.tenant, []).append((Selector(spec), rule))
        order = {s.id: i for i, s in enumerate(specs)}
        for rules in by_tenant.values():
            rules.sort(key=lambda pair: order[pair[1].id])
        self.specs = list(specs)
        self._by_tenant = by_tenant
        self._uses_labels = {s.tenant for s in specs if s.match == "label"}
        self._cache.clear()
        return True

    def rule_for(self, record: Record) -> Rule | None:
        rules = self._by_tenant.get(record.tenant)
        if not rules:
            return None
        key = (record.tenant, record.container_id, record.container_name, record.service, record.image)
        if record.tenant in self._uses_labels and record.labels:
            key = (*key, tuple(sorted((str(k), str(v)) for k, v in record.labels.items())))
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = next((rule for selector, rule in rules if selector.selects(record)), None)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found
