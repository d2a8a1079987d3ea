"""What the ingest status page and /metrics show about forwarding (ingest/status.py,
`forwarding_lags`): one dict per target of the given tenants."""

from forward.lag import forward_lag


def lags(tenants: list[str]) -> list[dict]:
    return [
        {
            "name": row.name,
            "tenant": row.tenant,
            "lag_seconds": row.lag_seconds,
            "pending_rows": row.lag_lines,
            "lines_sent": row.lines_sent,
            "paused": row.paused,
            "failures": row.failures,
        }
        for row in forward_lag(tenants)
    ]
