"""Prometheus exposition of the ingest stats in Redis (prometheus-client, one registry per scrape).

The web process holds no counters of its own: every scrape reads the ingest processes'
snapshots (ingest/status.py), so any web replica answers the same. Counters are per ingest
process lifetime (they restart at 0 with the process, which Prometheus' rate() handles).

Who sees what (docs/admin.md, "Metrics"): a superuser gets every series; any other user gets
only the per-driver series of drivers bound to tenants they belong to, and none of the
process-wide ones, which add up all tenants' traffic.
"""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

_WRITER_COUNTERS = (
    ("accepted", "Lines accepted by the pipeline"),
    ("committed", "Rows committed to PostgreSQL"),
    ("spooled", "Rows fsynced to the spool while PostgreSQL was unavailable"),
    ("dropped", "Lines dropped because the queue was full"),
    ("quarantined", "Rows PostgreSQL refused, kept aside in the quarantine spool"),
    ("batches", "Writer batches"),
    ("multiline_merged", "Lines joined into the record before them by multi-line rules"),
    ("fanout_skipped", "Committed batches not published to the live tail (Redis behind)"),
)
_WRITER_GAUGES = (
    ("queued", "queue_lines", "Lines waiting for the writer"),
    ("held", "held_lines", "Lines held by multi-line grouping"),
    ("spool_bytes", "spool_bytes", "Bytes in the spool waiting for replay"),
)
_DRIVER_COUNTERS = (
    ("received", "lines_received", "Lines received"),
    ("bytes", "bytes_received", "Bytes received"),
    ("malformed", "malformed", "Malformed messages or requests"),
    ("dropped", "dropped", "Lines dropped by the receiver (queue full)"),
    ("tenant_label_refused", "tenant_label_refused", "logsite.tenant labels refused (tenant not allowed)"),
)


class IngestCollector:
    def __init__(self, snapshots: list[dict], drivers: dict[str, object], everything: bool, lags=None):
        """drivers: str(id) -> Driver the viewer may see (others are left out)."""
        self.snapshots = snapshots
        self.drivers = drivers
        self.everything = everything
        self.lags = lags

    def collect(self):
        if self.everything:
            yield from self._writer_metrics()
        yield from self._driver_metrics()
        if self.lags is not None:
            yield from self._lag_metrics()

    def _writer_metrics(self):
        up = GaugeMetricFamily(
            "logsite_ingest_up", "1 if the ingest process reported in the last 15 s", labels=["writer"]
        )
        age = GaugeMetricFamily(
            "logsite_ingest_stats_age_seconds", "Age of the process's last report", labels=["writer"]
        )
        db = GaugeMetricFamily(
            "logsite_ingest_db_up", "1 if the writer's PostgreSQL connection works", labels=["writer"]
        )
        gauges = {
            key: GaugeMetricFamily(f"logsite_ingest_{name}", text, labels=["writer"])
            for key, name, text in _WRITER_GAUGES
        }
        counters = {
            key: CounterMetricFamily(
                f"logsite_ingest_{key}_lines"
                if key not in ("batches", "fanout_skipped")
                else f"logsite_ingest_{key}",
                text,
                labels=["writer"],
            )
            for key, text in _WRITER_COUNTERS
        }
        for snap in self.snapshots:
            writer = str(snap.get("writer", "?"))
            up.add_metric([writer], 1 if snap["live"] else 0)
            age.add_metric([writer], snap["age"])
            db.add_metric([writer], 1 if snap.get("db_up") else 0)
            for key, family in gauges.items():
                family.add_metric([writer], float(snap.get(key, 0)))
            for key, family in counters.items():
                family.add_metric([writer], float(snap.get(key, 0)))
        yield up
        yield age
        yield db
        yield from gauges.values()
        yield from counters.values()

    def _driver_metrics(self):
        labels = ["writer", "driver", "kind", "tenant"]
        up = GaugeMetricFamily(
            "logsite_driver_up", "1 if the receiver is listening, 0 if it failed to start", labels=labels
        )
        counters = {
            key: CounterMetricFamily(f"logsite_driver_{name}", text, labels=labels)
            for key, name, text in _DRIVER_COUNTERS
        }
        for snap in self.snapshots:
            if not snap["live"]:
                continue
            writer = str(snap.get("writer", "?"))
            for driver_id, driver in self.drivers.items():
                values = [writer, driver.name, driver.kind, driver.tenant.slug if driver.tenant_id else ""]
                stats = snap.get("drivers", {}).get(driver_id)
                if stats is not None:
                    up.add_metric(values, 1)
                    for key, family in counters.items():
                        family.add_metric(values, float(stats.get(key, 0)))
                elif driver_id in snap.get("start_errors", {}):
                    up.add_metric(values, 0)
        yield up
        yield from counters.values()

    def _lag_metrics(self):
        lag = GaugeMetricFamily(
            "logsite_forward_lag_seconds", "Age of the oldest row not yet forwarded", labels=["target"]
        )
        pending = GaugeMetricFamily(
            "logsite_forward_pending_rows", "Rows not yet forwarded", labels=["target"]
        )
        for item in self.lags:
            if item.get("lag_seconds") is not None:
                lag.add_metric([str(item["name"])], float(item["lag_seconds"]))
            if item.get("pending_rows") is not None:
                pending.add_metric([str(item["name"])], float(item["pending_rows"]))
        yield lag
        yield pending


def exposition(collector: IngestCollector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
