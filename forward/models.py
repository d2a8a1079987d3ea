"""Forwarding targets (a CLS topic or a syslog drain) and each target's durable state.

Secrets (CLS SecretId/SecretKey, a TLS client key) are stored because the worker needs them in
clear to sign and connect, but the admin never renders them: it shows a hint and accepts a new
value to replace them (forward/forms.py).
"""

from django.core.exceptions import ValidationError
from django.db import models

from forward import template as line_template
from forward.filters import query_error
from ingest.models import Tenant

CLS_REGIONS = [
    "ap-beijing",
    "ap-guangzhou",
    "ap-shanghai",
    "ap-chengdu",
    "ap-nanjing",
    "ap-chongqing",
    "ap-hongkong",
    "na-siliconvalley",
    "na-ashburn",
    "ap-singapore",
    "ap-bangkok",
    "eu-frankfurt",
    "ap-tokyo",
    "ap-seoul",
    "ap-jakarta",
    "sa-saopaulo",
    "ap-shenzhen-fsi",
    "ap-shanghai-fsi",
    "ap-beijing-fsi",
    "ap-shanghai-adc",
]


def secret_hint(value: str) -> str:
    if not value:
        return ""
    return value[:4] + "…" + value[-2:] if len(value) > 10 else "…" + value[-1:]


class Target(models.Model):
    class Kind(models.TextChoices):
        CLS = "cls", "Tencent Cloud CLS"
        SYSLOG = "syslog", "syslog drain (RFC 5424)"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="forward_targets")
    service = models.CharField(max_length=128, blank=True, help_text="Only this service (exact); empty: all.")
    container = models.CharField(
        max_length=255,
        blank=True,
        help_text="Only containers whose name matches (* wildcards) or whose id starts with this.",
    )
    query = models.TextField(
        blank=True,
        help_text="A filter in the search language, applied to every line, e.g. level>=warn -healthcheck",
    )
    template = models.CharField(
        max_length=1000,
        blank=True,
        help_text="What is sent as the line, e.g. '{container_name}: {line}'. Empty: the line as stored. "
        "Fields: " + ", ".join(line_template.FIELDS),
    )
    enabled = models.BooleanField(default=True)
    paused = models.BooleanField(default=False, help_text="Set when the destination refused for good.")
    pause_reason = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)

    # --- batching ---
    batch_lines = models.PositiveIntegerField(default=20_000, help_text="At most this many lines per send.")
    batch_bytes = models.PositiveIntegerField(
        default=4_000_000, help_text="At most this many line bytes per send."
    )
    batch_wait_ms = models.PositiveIntegerField(
        default=500, help_text="Wait up to this long for a fuller batch when only a few lines are pending."
    )

    # --- CLS ---
    cls_region = models.CharField(
        max_length=32, blank=True, choices=[(r, r) for r in CLS_REGIONS], verbose_name="CLS region"
    )
    cls_endpoint = models.CharField(
        max_length=255,
        blank=True,
        verbose_name="CLS endpoint",
        help_text="https://host[:port]; empty: https://<region>.cls.tencentcs.com (the public endpoint).",
    )
    cls_topic_id = models.CharField(max_length=128, blank=True, verbose_name="CLS topic id")
    cls_secret_id = models.CharField(max_length=256, blank=True, editable=False)
    cls_secret_key = models.CharField(max_length=256, blank=True, editable=False)

    # --- syslog drain ---
    syslog_url = models.CharField(
        max_length=255,
        blank=True,
        verbose_name="syslog drain URL",
        help_text="tcp://host:port or tls://host:port",
    )
    syslog_max_bytes = models.PositiveIntegerField(
        default=8192, help_text="Longer messages are cut (the receiver's own limit; rsyslog's default is 8k)."
    )
    tls_ca = models.TextField(blank=True, verbose_name="TLS CA (PEM)", help_text="Empty: the system's CAs.")
    tls_verify = models.BooleanField(default=True, verbose_name="verify the server's certificate")
    tls_server_name = models.CharField(max_length=255, blank=True, help_text="Empty: the URL's host.")
    tls_client_cert = models.TextField(blank=True, verbose_name="TLS client certificate (PEM)")
    tls_client_key = models.TextField(blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def cls_url(self) -> str:
        return self.cls_endpoint or (
            f"https://{self.cls_region}.cls.tencentcs.com" if self.cls_region else ""
        )

    def secret_hints(self) -> dict[str, str]:
        return {
            "cls_secret_id": secret_hint(self.cls_secret_id),
            "cls_secret_key": secret_hint(self.cls_secret_key),
            "tls_client_key": "set" if self.tls_client_key else "",
        }

    def clean(self) -> None:
        errors: dict[str, str] = {}
        problem = line_template.template_error(self.template)
        if problem:
            errors["template"] = problem
        problem = query_error(self.query)
        if problem:
            errors["query"] = problem
        if self.kind == self.Kind.CLS:
            if not self.cls_url:
                errors["cls_region"] = "Choose a region or give an endpoint."
            elif not self.cls_url.startswith(("http://", "https://")):
                errors["cls_endpoint"] = (
                    "The endpoint must start with https:// (or http:// for a test stand-in)."
                )
            if not self.cls_topic_id:
                errors["cls_topic_id"] = "A CLS target needs a topic id."
        elif self.kind == self.Kind.SYSLOG:
            from forward.sinks.syslog import parse_drain_url

            try:
                parse_drain_url(self.syslog_url)
            except ValueError as e:
                errors["syslog_url"] = str(e)
            if self.syslog_max_bytes < 480:
                errors["syslog_max_bytes"] = "RFC 5424 receivers accept at least 480 bytes; use 480 or more."
        if errors:
            raise ValidationError(errors)


class ForwardState(models.Model):
    """Where a target is in the ledger, who is forwarding it now, and how it went.

    Position: every ledger batch ordered before (xid, batch_id) is forwarded, and so are the
    rows of batch `batch_id` with ids up to `row_id` (a batch is done when row_id reaches its
    last_id). forward/cursor.py explains why the ledger is read in xid order.
    """

    target = models.OneToOneField(Target, on_delete=models.CASCADE, primary_key=True, related_name="state")
    xid = models.BigIntegerField(default=0)
    batch_id = models.BigIntegerField(default=0)
    row_id = models.BigIntegerField(default=0)
    # A replay re-sends only lines at or after `replay_from` until the position passes
    # (replay_until_xid, replay_until_batch), the position it had when the replay started.
    replay_from = models.DateTimeField(null=True, blank=True)
    replay_until_xid = models.BigIntegerField(null=True, blank=True)
    replay_until_batch = models.BigIntegerField(null=True, blank=True)

    # Lease: one worker at a time (conditional update claim, see forward/lease.py).
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)

    lines_sent = models.BigIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_line_ts = models.DateTimeField(null=True, blank=True)
    caught_up_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Retryable failures in a row.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.target_id} at ({self.xid}, {self.batch_id}, {self.row_id})"
