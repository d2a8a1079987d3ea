"""Configuration and metadata of the write path.

Log rows themselves live in the partitioned `logs` table, which Django does not manage
(see ingest/store/schema.py); `Container` is the small table every label/name/image filter
resolves through before touching `logs`.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class Tenant(models.Model):
    slug = models.SlugField(max_length=128, unique=True, allow_unicode=False)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer"
        ADMIN = "admin"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Driver(models.Model):
    """One configured ingest endpoint; `manage.py ingest` starts a listener per enabled driver."""

    class Kind(models.TextChoices):
        ZMQ = "zmq", "zmq-logger (ZeroMQ SUB)"
        HTTP = "http", "HTTP push (JSON / NDJSON)"
        GELF = "gelf", "GELF (UDP/TCP)"
        FLUENTD = "fluentd", "fluentd forward"
        SYSLOG = "syslog", "syslog (UDP/TCP)"
        SPLUNK = "splunk", "Splunk HEC"
        JOURNAL = "journal", "systemd-journal-upload"
        PLUGIN = "plugin", "Logsite Docker plugin"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # e.g. tcp://0.0.0.0:6362 (zmq), 0.0.0.0:8514 (http), udp://0.0.0.0:12201
    bind = models.CharField(max_length=255)
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="Tenant for lines from this driver. zmq frames carry their own tenant when left empty.",
    )
    # Only the hash is stored; the clear token is shown once when generated.
    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    token_hint = models.CharField(max_length=12, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    options = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def set_new_token(self) -> str:
        token = "lgs_" + secrets.token_urlsafe(32)
        self.token_hash = hash_token(token)
        self.token_hint = token[:8] + "…"
        return token

    def token_matches(self, token: str) -> bool:
        return bool(self.token_hash) and secrets.compare_digest(self.token_hash, hash_token(token))


class Container(models.Model):
    """One row per (tenant, container id). `id` is the container key that partitions `logs`."""

    tenant = models.CharField(max_length=128)
    service = models.CharField(max_length=128, blank=True, default="")
    container_id = models.CharField(max_length=128)
    name = models.CharField(max_length=255, blank=True, default="")
    image = models.CharField(max_length=512, blank=True, default="")
    host = models.CharField(max_length=255, blank=True, default="")
    labels = models.JSONField(default=dict, blank=True)
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.SET_NULL)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        db_table = "containers"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "container_id"], name="containers_tenant_cid"),
        ]
        indexes = [
            models.Index(fields=["tenant", "service"]),
            models.Index(fields=["name"]),
            models.Index(fields=["image"]),
        ]

    def __str__(self) -> str:
        return self.name or self.container_id[:12]


def _check_regex(value: str) -> None:
    import re

    from django.core.exceptions import ValidationError

    try:
        re.compile(value)
    except re.error as e:
        raise ValidationError(f"not a valid regular expression: {e}") from None


class MultilineRule(models.Model):
    """Joins continuation lines (stack traces) of matching containers into one record.

    Applied by ingest/multiline.py before the writer; see docs/admin.md "Multi-line".
    """

    class Match(models.TextChoices):
        CONTAINER = "container", "container name or id"
        LABEL = "label", "container label key=value"
        SERVICE = "service", "service"
        IMAGE = "image", "image"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="multiline_rules")
    name = models.CharField(max_length=100)
    match = models.CharField(max_length=16, choices=Match.choices, default=Match.CONTAINER)
    pattern = models.CharField(
        max_length=255,
        help_text="Glob (* and ?) on the field chosen above; for a label: key=value-glob, e.g. "
        "com.docker.compose.service=api*",
    )
    start_pattern = models.CharField(
        max_length=500,
        validators=[_check_regex],
        help_text="Python regular expression matched at the start of a line: a line that matches "
        "starts a new record, any other line is appended to the record before it. "
        "Only the first 512 characters of a line are examined.",
    )
    max_lines = models.PositiveIntegerField(
        default=500, validators=[MinValueValidator(1), MaxValueValidator(100_000)]
    )
    max_bytes = models.PositiveIntegerField(
        default=64 * 1024,
        validators=[MinValueValidator(256), MaxValueValidator(16 * 1024 * 1024)],
        help_text="A record reaching this size is closed; the next line starts a new one.",
    )
    flush_timeout_ms = models.PositiveIntegerField(
        default=1000,
        validators=[MinValueValidator(10), MaxValueValidator(60_000)],
        help_text="A record with no new line for this long is written.",
    )
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=100, help_text="Rules are tried lowest first.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__slug", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="multiline_rule_tenant_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant.slug})"

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.match == self.Match.LABEL and "=" not in (self.pattern or ""):
            raise ValidationError({"pattern": "A label pattern is key=value-glob, e.g. app=api*"})


def _default_pin_expiry():
    return timezone.now() + timedelta(days=90)


class RetentionPolicy(models.Model):
    """How many days of a scope's lines are kept. The most specific matching scope decides
    (container > label > service > tenant > global); see docs/retention.md."""

    class Scope(models.TextChoices):
        GLOBAL = "global"
        TENANT = "tenant"
        SERVICE = "service"
        LABEL = "label"
        CONTAINER = "container"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text="Required for the tenant scope; optional narrowing for service, label and container.",
    )
    service = models.CharField(max_length=128, blank=True, default="")
    container = models.CharField(
        max_length=255, blank=True, default="", help_text="Container id (full or 12-character) or name."
    )
    label_key = models.CharField(max_length=255, blank=True, default="")
    label_value = models.CharField(max_length=1024, blank=True, default="")
    days = models.PositiveIntegerField(help_text="Whole UTC days kept before today.")
    note = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        from ingest.retention.rules import describe_policy

        return describe_policy(self)

    def clean(self):
        from ingest.retention.rules import policy_errors

        errors = policy_errors(self)
        if errors:
            raise ValidationError(errors)


class Pin(models.Model):
    """Keeps lines past every retention policy, e.g. for an incident. An empty scope pins every
    container (of the tenant, when one is given) in the time range."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE)
    service = models.CharField(max_length=128, blank=True, default="")
    container = models.CharField(
        max_length=255, blank=True, default="", help_text="Container id (full or 12-character) or name."
    )
    start = models.DateTimeField(help_text="Lines from this time on are kept.")
    end = models.DateTimeField(help_text="…up to (not including) this time.")
    reason = models.CharField(max_length=500)
    expires_at = models.DateTimeField(default=_default_pin_expiry, help_text="The pin stops applying then.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"pin {self.reason[:60]}"

    def clean(self):
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": "The end must be after the start."})


class MaintenanceRun(models.Model):
    """One run of a maintenance task, so operators (and tests) see what it did and when."""

    task = models.CharField(max_length=64)
    task_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["task", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.task} at {self.started_at:%Y-%m-%d %H:%M:%S}"
