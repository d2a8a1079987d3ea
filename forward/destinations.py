"""Build a target's sink, and keep one per target per worker process.

Celery's prefork pool forks workers; clients are built lazily inside the worker, so each
process gets its own HTTP session or syslog connection (never shared across a fork). A sink is
rebuilt when any setting it was built from changes.
"""

import hashlib
import os

from forward.models import Target
from forward.sinks.cls import ClsClient, ClsSink
from forward.sinks.cls_batch import ClsBatcher
from forward.sinks.errors import SinkFinalError
from forward.sinks.syslog import Rfc5424, SyslogSink, tls_context

_sinks: dict[int, tuple[str, int, object]] = {}


SINK_FIELDS = (
    "kind",
    "cls_region",
    "cls_endpoint",
    "cls_topic_id",
    "cls_secret_id",
    "cls_secret_key",
    "syslog_url",
    "syslog_max_bytes",
    "tls_ca",
    "tls_verify",
    "tls_server_name",
    "tls_client_cert",
    "tls_client_key",
)


def _fingerprint(target: Target) -> str:
    # Every setting the sink is built from (not updated_at: a queryset update() keeps it).
    values = "\0".join(str(getattr(target, name)) for name in SINK_FIELDS)
    return hashlib.sha256(values.encode()).hexdigest()


def build_sink(target: Target):
    if target.kind == Target.Kind.CLS:
        if not (target.cls_secret_id and target.cls_secret_key):
            raise SinkFinalError("the CLS SecretId and SecretKey are not set")
        try:
            client = ClsClient(target.cls_url, target.cls_secret_id, target.cls_secret_key)
        except ValueError as e:
            raise SinkFinalError(str(e)) from e
        return ClsSink(client, target.cls_topic_id, ClsBatcher())
    if target.kind == Target.Kind.SYSLOG:
        try:
            context = None
            if target.syslog_url.startswith(("tls://", "syslog-tls://")):
                context = tls_context(
                    target.tls_ca, target.tls_verify, target.tls_client_cert, target.tls_client_key
                )
            return SyslogSink(
                target.syslog_url,
                formatter=Rfc5424(max_bytes=target.syslog_max_bytes),
                context=context,
                server_name=target.tls_server_name,
            )
        except ValueError as e:
            raise SinkFinalError(str(e)) from e
    raise SinkFinalError(f"unknown target kind {target.kind!r}")


def sink_for(target: Target):
    """The cached sink of this process for the target, rebuilt when its settings changed."""
    fingerprint = _fingerprint(target)
    cached = _sinks.get(target.pk)
    if cached is not None and cached[0] == fingerprint and cached[1] == os.getpid():
        return cached[2]
    if cached is not None:
        close_sink(cached[2])
    sink = build_sink(target)
    _sinks[target.pk] = (fingerprint, os.getpid(), sink)
    return sink


def close_sink(sink) -> None:
    closer = getattr(sink, "close", None) or getattr(getattr(sink, "client", None), "close", None)
    if closer is not None:
        closer()


def forget(target_id: int) -> None:
    cached = _sinks.pop(target_id, None)
    if cached is not None:
        close_sink(cached[2])
