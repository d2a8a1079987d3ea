"""Forwarding targets for tests, pointed at a CLS stand-in or a syslog receiver."""

from forward.models import Target


def cls_target(standin, tenant, name: str = "cls-1", topic: str = "topic-1", **fields) -> Target:
    secret_id, secret_key = standin.credentials
    return Target.objects.create(
        name=name,
        kind=Target.Kind.CLS,
        tenant=tenant,
        cls_endpoint=standin.endpoint,
        cls_topic_id=topic,
        cls_secret_id=secret_id,
        cls_secret_key=secret_key,
        batch_wait_ms=fields.pop("batch_wait_ms", 0),
        **fields,
    )


def syslog_target(url: str, tenant, name: str = "drain-1", **fields) -> Target:
    return Target.objects.create(
        name=name, kind=Target.Kind.SYSLOG, tenant=tenant, syslog_url=url, batch_wait_ms=0, **fields
    )


def received_lines(standin, topic: str | None = None) -> list[str]:
    return [log.fields["log"] for log in standin.logs(topic)]
