"""Loads the retention rules (policies, live pins, containers) from the database."""

from datetime import UTC, datetime

from django.conf import settings

from ingest.models import Container, Pin, RetentionPolicy
from ingest.retention.rules import ContainerInfo, PinRule, PolicyRule, Rules


def load_rules(now: datetime) -> Rules:
    policies = [
        PolicyRule(
            scope=p.scope,
            days=p.days,
            tenant=p.tenant.slug if p.tenant_id else None,
            service=p.service,
            container=p.container,
            label_key=p.label_key,
            label_value=p.label_value,
        )
        for p in RetentionPolicy.objects.select_related("tenant")
    ]
    pins = [
        PinRule(
            start=p.start,
            end=p.end,
            tenant=p.tenant.slug if p.tenant_id else None,
            service=p.service,
            container=p.container,
            reason=p.reason,
        )
        for p in Pin.objects.select_related("tenant").filter(expires_at__gt=now)
    ]
    containers = {
        ckey: ContainerInfo(ckey, tenant, service, cid, name, labels or {})
        for ckey, tenant, service, cid, name, labels in Container.objects.values_list(
            "id", "tenant", "service", "container_id", "name", "labels"
        ).iterator(chunk_size=5000)
    }
    return Rules(
        today=now.astimezone(UTC).date(),
        containers=containers,
        policies=policies,
        pins=pins,
        default_days=settings.LOGSITE_RETENTION_DAYS or None,
    )
