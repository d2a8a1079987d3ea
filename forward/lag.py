"""How far behind each target is: for the status page, the admin and /metrics.

Lines: rows committed to the ledger after the target's cursor, counted before the target's
own tenant/service/query filter (the ledger does not know tenants), so for a filtered target it
is an upper bound; it drops to 0 once the cursor passes them, filtered or not. Seconds: the age
of the oldest such batch (0 when there is none). Committed rows above the horizon count too:
they are stored and not yet forwarded.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import connection

LAG_SQL = """
SELECT t.id, t.name, t.kind, tn.slug, t.enabled, t.paused, t.pause_reason,
       s.lines_sent, s.last_sent_at, s.last_error, s.last_error_at, s.failures, s.next_attempt_at,
       COALESCE(sum(b.rows - CASE WHEN b.id = s.batch_id
                                  THEN GREATEST(LEAST(s.row_id - b.first_id + 1, b.rows), 0)
                                  ELSE 0 END), 0)::bigint,
       COALESCE(extract(epoch FROM now() - min(b.committed_at)), 0)::float8
  FROM forward_target t
  JOIN ingest_tenant tn ON tn.id = t.tenant_id
  JOIN forward_forwardstate s ON s.target_id = t.id
  LEFT JOIN log_batches b
    ON (b.xid, b.id) >= (s.xid::text::xid8, s.batch_id)
   AND NOT (b.id = s.batch_id AND s.row_id >= b.last_id)
 {where}
 GROUP BY t.id, tn.slug, s.target_id
 ORDER BY t.name
"""


@dataclass
class TargetLag:
    target_id: int
    name: str
    kind: str
    tenant: str
    enabled: bool
    paused: bool
    pause_reason: str
    lines_sent: int
    last_sent_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    failures: int
    next_attempt_at: datetime | None
    lag_lines: int
    lag_seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def forward_lag(tenants: list[str] | None = None) -> list[TargetLag]:
    """Per-target lag, all targets or those of the given tenant slugs (one query)."""
    where, params = "", []
    if tenants is not None:
        where, params = "WHERE tn.slug = ANY(%s)", [list(tenants)]
    with connection.cursor() as cur:
        cur.execute(LAG_SQL.format(where=where), params)
        return [TargetLag(*row) for row in cur.fetchall()]
