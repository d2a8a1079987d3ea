"""Tenant override by container label, for drivers whose admin allowed it.

Resolution order for a line's tenant (docs/admin.md "Tenancy"):
1. the receiver's answer: the driver's bound tenant, else what the wire says (zmq frames,
   the `tenant` key of an HTTP push record), else "default";
2. then, only if the driver's option `tenant_label` is on, the container label
   `logsite.tenant` replaces it — and only with a tenant named in `tenant_label_allow`
   (empty = any, which only a superuser can configure). A refused label leaves the tenant
   as it was and is counted per driver.
"""

from django.utils.text import slugify

from ingest.driver_options import TENANT_LABEL, tenant_label_allow
from ingest.record import Record


class TenantLabels:
    def __init__(self):
        # driver id -> allowed slugs (None = any); only drivers with the option on are here
        self._drivers: dict[int, frozenset[str] | None] = {}
        self.refused: dict[int, int] = {}

    def update(self, drivers) -> None:
        """drivers: iterable of DriverConfig."""
        table = {}
        for driver in drivers:
            if driver.options.get("tenant_label"):
                allowed = tenant_label_allow(driver.options)
                table[driver.id] = frozenset(allowed) if allowed else None
        self._drivers = table

    def apply(self, records: list[Record]) -> None:
        if not self._drivers:
            return
        for record in records:
            if record.driver_id not in self._drivers or not record.labels:
                continue
            wanted = record.labels.get(TENANT_LABEL)
            if not wanted:
                continue
            allowed = self._drivers[record.driver_id]
            wanted = str(wanted)
            if slugify(wanted) == wanted and len(wanted) <= 128 and (allowed is None or wanted in allowed):
                record.tenant = wanted
            else:
                self.refused[record.driver_id] = self.refused.get(record.driver_id, 0) + 1
